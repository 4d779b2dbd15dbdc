//! The async face of the engine: a thread that owns the core, and handles that submit
//! requests and stream their events. Dropping a stream aborts its request.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use hearth_tokenizer::Tokenizer;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

use crate::bundle::ModelBundle;
use crate::config::{ConfigError, EngineConfig, KvPlan};
use crate::core::{EngineCore, Speculation};
use crate::decode::TokenProcessor;
use crate::generate::{budget, GenerateError, MaxTokensPolicy};
use crate::metrics::EngineMetrics;
use crate::request::{EngineEvent, EngineRequest, Request};
use crate::sched::SchedConfig;

enum Command {
    Submit(Box<Request>),
    Abort(u64),
    /// Stop after finishing in-flight requests (`drain`) or cancelling them.
    Shutdown { drain: bool },
}

/// Facts about the running engine that request handling needs.
#[derive(Debug, Clone)]
pub struct EngineInfo {
    pub plan: KvPlan,
    pub vocab_size: usize,
    pub model_bytes: usize,
    pub max_num_seqs: usize,
    pub max_tokens_policy: MaxTokensPolicy,
}

/// A running engine. Cheap to share behind an `Arc`.
pub struct EngineHandle {
    commands: Mutex<Sender<Command>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    next_id: AtomicU64,
    info: EngineInfo,
    tokenizer: Arc<Tokenizer>,
    metrics: Arc<EngineMetrics>,
}

/// The events of one request. Dropping it aborts the request.
pub struct RequestStream {
    id: u64,
    events: UnboundedReceiver<EngineEvent>,
    commands: Sender<Command>,
}

impl RequestStream {
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The next event; None after the stream has ended.
    pub async fn next(&mut self) -> Option<EngineEvent> {
        self.events.recv().await
    }

    /// The next event, blocking the calling (non-async) thread.
    pub fn next_blocking(&mut self) -> Option<EngineEvent> {
        self.events.blocking_recv()
    }
}

impl Drop for RequestStream {
    fn drop(&mut self) {
        // A finished request is already gone; the engine ignores unknown ids.
        let _ = self.commands.send(Command::Abort(self.id));
    }
}

impl EngineHandle {
    /// Sizes the KV cache, logs the plan, and starts the engine thread.
    pub fn spawn(bundle: &ModelBundle, config: &EngineConfig) -> Result<Self, ConfigError> {
        let model = bundle.model.clone();
        let plan = config.plan(model.config())?;
        let info = EngineInfo {
            plan: plan.clone(),
            vocab_size: model.config().vocab_size,
            model_bytes: model.weight_bytes(),
            max_num_seqs: config.max_num_seqs,
            max_tokens_policy: config.max_tokens_policy,
        };
        tracing::info!("{}", model.describe());
        log_startup(&info);
        let metrics = Arc::new(EngineMetrics::default());
        let sched = SchedConfig {
            max_num_batched_tokens: config.max_num_batched_tokens,
            max_num_seqs: config.max_num_seqs,
            block_size: config.block_size,
        };
        let mut core = EngineCore::new(model, bundle.tokenizer.clone(), &plan, sched, config.prefix_caching, metrics.clone());
        core.pace_steps(config.max_step_seconds);
        if let Some(spec) = config.speculative {
            log_speculation(core.enable_speculation(spec));
        }
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("hearth-engine".into())
            .spawn(move || run_engine(core, rx))
            .expect("cannot start the engine thread");
        Ok(EngineHandle {
            commands: Mutex::new(tx),
            thread: Mutex::new(Some(thread)),
            next_id: AtomicU64::new(1),
            info,
            tokenizer: bundle.tokenizer.clone(),
            metrics,
        })
    }

    pub fn info(&self) -> &EngineInfo {
        &self.info
    }

    pub fn metrics(&self) -> &Arc<EngineMetrics> {
        &self.metrics
    }

    pub fn tokenizer(&self) -> &Arc<Tokenizer> {
        &self.tokenizer
    }

    /// Validates and queues a request; its events arrive on the returned stream.
    pub fn submit(&self, request: EngineRequest) -> Result<RequestStream, GenerateError> {
        if request.prompt.is_empty() {
            return Err(GenerateError::EmptyPrompt);
        }
        request.sampling.validate(self.info.vocab_size).map_err(GenerateError::InvalidParams)?;
        if let Some(&bad) = request.prompt.iter().find(|&&t| t as usize >= self.info.vocab_size) {
            return Err(GenerateError::InvalidParams(format!("token id {bad} is not in the vocabulary")));
        }
        let limit = self.info.plan.max_model_len;
        let budget = budget(request.prompt.len(), request.stop.max_tokens, limit, self.info.max_tokens_policy)?;
        let max_new = budget.max_new;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        if let Some(asked) = budget.cut_from {
            tracing::info!(
                request = id,
                "max_tokens {asked} is more than the {max_new} tokens the {limit}-token context has left after the {}-token prompt: generating at most {max_new} (finish reason length; --strict-max-tokens refuses such requests)",
                request.prompt.len()
            );
        }
        let processor = TokenProcessor::new(&self.tokenizer, &request.prompt, request.sampling, &request.stop, max_new)
            .with_constraint(request.constraint);
        let (events_tx, events_rx) = unbounded_channel();
        let commands = self.commands.lock().expect("engine command lock").clone();
        let internal = Request::new(id, processor, request.prompt, events_tx).without_speculation(request.no_speculation);
        commands
            .send(Command::Submit(Box::new(internal)))
            .map_err(|_| GenerateError::EngineStopped)?;
        Ok(RequestStream { id, events: events_rx, commands })
    }

    /// Aborts a request by id (its stream gets a final `abort` event).
    pub fn abort(&self, id: u64) {
        let _ = self.commands.lock().expect("engine command lock").send(Command::Abort(id));
    }

    /// Stops the engine: `drain` finishes in-flight requests first, otherwise they are
    /// cancelled. Waits for the engine thread.
    pub fn shutdown(&self, drain: bool) {
        let _ = self.commands.lock().expect("engine command lock").send(Command::Shutdown { drain });
        if let Some(thread) = self.thread.lock().expect("engine thread lock").take() {
            let _ = thread.join();
        }
    }

    /// True while the engine thread runs.
    pub fn is_running(&self) -> bool {
        self.thread.lock().map(|t| t.as_ref().is_some_and(|h| !h.is_finished())).unwrap_or(false)
    }
}

impl Drop for EngineHandle {
    fn drop(&mut self) {
        self.shutdown(false);
    }
}

fn log_startup(info: &EngineInfo) {
    let plan = &info.plan;
    tracing::info!(
        "model weights: {:.2} GiB; KV cache: {:.2} GiB = {} blocks of {} tokens = {} tokens",
        info.model_bytes as f64 / (1u64 << 30) as f64,
        plan.kv_bytes as f64 / (1u64 << 30) as f64,
        plan.num_blocks,
        plan.block_size,
        plan.token_capacity()
    );
    tracing::info!(
        "maximum concurrency for {} tokens per request: {:.2}x (max-num-seqs {})",
        plan.max_model_len,
        plan.max_concurrency(),
        info.max_num_seqs
    );
}

fn log_speculation(speculation: &Speculation) {
    let c = &speculation.config;
    let policy = match c.always_draft {
        true => "every draft verified".to_string(),
        false => {
            let costs: Vec<String> =
                speculation.cost.points().iter().map(|(n, s)| format!("{n}: {:.1} ms", s * 1e3)).collect();
            format!("drafts sized by the measured step time per token count ({})", costs.join(", "))
        }
    };
    tracing::info!(
        "speculative decoding: n-gram {}..{} tokens, up to {} drafted per step; {policy}",
        c.ngram_min,
        c.ngram_max,
        c.num_speculative_tokens
    );
}

fn run_engine(mut core: EngineCore, commands: Receiver<Command>) {
    let mut draining = false;
    loop {
        if core.is_idle() {
            if draining {
                break;
            }
            match commands.recv() {
                Ok(cmd) => draining |= apply(&mut core, cmd),
                Err(_) => break,
            }
        }
        while let Ok(cmd) = commands.try_recv() {
            draining |= apply(&mut core, cmd);
        }
        if !core.step() && !core.is_idle() {
            // nothing could be scheduled yet: wait for a command instead of spinning
            if let Ok(cmd) = commands.recv_timeout(std::time::Duration::from_millis(1)) {
                draining |= apply(&mut core, cmd);
            }
        }
    }
    core.abort_all();
}

/// Applies one command; true when it asks to stop after draining.
fn apply(core: &mut EngineCore, cmd: Command) -> bool {
    match cmd {
        Command::Submit(request) => core.add(*request),
        Command::Abort(id) => core.abort(id),
        Command::Shutdown { drain: true } => return true,
        Command::Shutdown { drain: false } => {
            core.abort_all();
            return true;
        }
    }
    false
}
