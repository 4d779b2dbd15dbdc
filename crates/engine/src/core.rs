//! The engine core on its own thread: schedule, run one batch, sample, update, repeat.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use hearth_model::{BatchSpan, LogitsWanted, Model};
use rayon::prelude::*;
use hearth_tokenizer::Tokenizer;

use crate::config::KvPlan;
use crate::generate::FinishReason;
use crate::kv::storage::PagedBatch;
use crate::kv::{BlockPool, PagedKv};
use crate::metrics::EngineMetrics;
use crate::request::Request;
use crate::sched::{SchedConfig, Scheduler, StepPlan};

/// All state of the engine; owned by the engine thread.
pub struct EngineCore {
    model: Arc<Model>,
    tokenizer: Arc<Tokenizer>,
    pool: BlockPool,
    kv: PagedKv,
    sched: Scheduler<Request>,
    metrics: Arc<EngineMetrics>,
}

impl EngineCore {
    pub fn new(
        model: Arc<Model>,
        tokenizer: Arc<Tokenizer>,
        plan: &KvPlan,
        sched: SchedConfig,
        prefix_caching: bool,
        metrics: Arc<EngineMetrics>,
    ) -> Self {
        let kv = PagedKv::new(model.config(), plan.num_blocks, plan.block_size);
        EngineCore {
            pool: BlockPool::new(plan.num_blocks, prefix_caching),
            kv,
            sched: Scheduler::new(sched),
            model,
            tokenizer,
            metrics,
        }
    }

    pub fn add(&mut self, request: Request) {
        self.sched.add(request);
        self.publish_gauges();
    }

    pub fn is_idle(&self) -> bool {
        self.sched.is_idle()
    }

    /// Aborts a request wherever it is; its blocks are free when this returns.
    pub fn abort(&mut self, id: u64) {
        if let Some(mut request) = self.sched.abort(id, &mut self.pool) {
            request.processor.abort(&self.tokenizer);
            request.emit_finished(FinishReason::Abort, &self.metrics);
        }
        self.publish_gauges();
    }

    /// Cancels everything (shutdown without draining).
    pub fn abort_all(&mut self) {
        for mut request in self.sched.drain_all(&mut self.pool) {
            request.processor.abort(&self.tokenizer);
            request.emit_finished(FinishReason::Abort, &self.metrics);
        }
        self.publish_gauges();
    }

    /// One engine iteration. Returns false when there was nothing to run.
    pub fn step(&mut self) -> bool {
        let plan = self.sched.schedule(&mut self.pool);
        self.metrics.num_preemptions.fetch_add(plan.preempted.len() as u64, Relaxed);
        if plan.scheduled.is_empty() {
            self.publish_gauges();
            return false;
        }
        match self.execute(&plan) {
            Ok(logits) => {
                self.sched.complete(&plan, &mut self.pool);
                self.sample_all(&plan, logits);
            }
            Err(message) => {
                for s in &plan.scheduled {
                    let request = &mut self.sched.running_mut()[s.index];
                    request.emit_error(message.clone());
                    request.disconnected = true;
                }
            }
        }
        self.retire_finished();
        self.publish_gauges();
        true
    }

    /// Flattens the plan into one batch and runs the model over the paged cache.
    fn execute(&mut self, plan: &StepPlan) -> Result<Vec<Vec<f32>>, String> {
        let running = self.sched.running();
        let mut spans = Vec::with_capacity(plan.scheduled.len());
        let mut tables = Vec::with_capacity(plan.scheduled.len());
        for s in &plan.scheduled {
            let seq = &running[s.index].seq;
            let (start, end) = (seq.num_computed, seq.num_computed + s.num_tokens);
            let logits = if end == seq.tokens.len() { LogitsWanted::Last } else { LogitsWanted::None };
            spans.push(BatchSpan { tokens: &seq.tokens[start..end], start, logits });
            tables.push(seq.block_table.as_slice());
            if start < seq.prompt_len {
                let computed = end.min(seq.prompt_len) - start;
                self.metrics.prompt_tokens_computed.fetch_add(computed as u64, Relaxed);
            }
        }
        let mut batch = PagedBatch { kv: &mut self.kv, tables };
        self.model.forward_batch(&spans, &mut batch).map_err(|e| format!("model error: {e}"))
    }

    fn sample_all(&mut self, plan: &StepPlan, logits: Vec<Vec<f32>>) {
        let running = self.sched.running_mut();
        prepare_grammar_masks(running, plan, &logits);
        for (s, mut row) in plan.scheduled.iter().zip(logits) {
            let request = &mut running[s.index];
            if row.is_empty() || request.is_done() {
                continue; // a prefill chunk that is not the last, or a client already gone
            }
            match request.processor.on_logits(&self.tokenizer, &mut row) {
                Ok(event) => request.emit_token(event, &self.metrics),
                Err(message) => {
                    request.emit_error(message);
                    request.disconnected = true;
                }
            }
        }
    }

    fn retire_finished(&mut self) {
        let finished = self.sched.finish_where(&mut self.pool, |r| r.is_done());
        for mut request in finished {
            let reason = match request.processor.finish_reason() {
                Some(reason) => reason,
                None => {
                    // the client went away mid-generation
                    request.processor.abort(&self.tokenizer);
                    FinishReason::Abort
                }
            };
            request.emit_finished(reason, &self.metrics);
        }
    }

    fn publish_gauges(&self) {
        let m = &self.metrics;
        m.num_running.store(self.sched.running().len() as u64, Relaxed);
        m.num_waiting.store(self.sched.num_waiting() as u64, Relaxed);
        m.kv_usage_ppm.store((self.pool.usage() * 1e6) as u64, Relaxed);
        let stats = self.pool.stats();
        m.prefix_queries.store(stats.prefix_queries, Relaxed);
        m.prefix_hits.store(stats.prefix_hits, Relaxed);
    }
}

/// Computes the grammar masks of this step's constrained requests, in parallel when there are
/// several (the cores are idle between forward passes).
fn prepare_grammar_masks(running: &mut [Request], plan: &StepPlan, logits: &[Vec<f32>]) {
    let mut sampling = vec![false; running.len()];
    for (s, row) in plan.scheduled.iter().zip(logits) {
        sampling[s.index] = !row.is_empty();
    }
    let constrained =
        running.iter().zip(&sampling).filter(|(r, &sampled)| sampled && r.processor.needs_mask()).count();
    let prepare = |(request, &sampled): (&mut Request, &bool)| {
        if sampled && !request.is_done() {
            request.processor.prepare_mask();
        }
    };
    match constrained {
        0 => {}
        1 => running.iter_mut().zip(&sampling).for_each(prepare),
        _ => running.par_iter_mut().zip(&sampling).for_each(prepare),
    }
}
