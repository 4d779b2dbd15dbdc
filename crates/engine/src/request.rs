//! One request inside the engine: scheduler state, token processing, its event channel and
//! its timings.

use std::time::Instant;

use tokio::sync::mpsc::UnboundedSender;

use crate::constrain::TokenConstraint;
use crate::decode::TokenProcessor;
use crate::generate::{FinishReason, StopConditions, TokenEvent};
use crate::metrics::EngineMetrics;
use crate::sample::SamplingParams;
use crate::sched::{Schedulable, SeqState};
use crate::spec::Acceptance;
use hearth_tokenizer::Tokenizer;

/// What a client asks the engine for.
#[derive(Debug, Default)]
pub struct EngineRequest {
    pub prompt: Vec<u32>,
    pub sampling: SamplingParams,
    pub stop: StopConditions,
    /// A compiled grammar the output must follow.
    pub constraint: Option<TokenConstraint>,
    /// Decode without drafted tokens even where the engine speculates.
    pub no_speculation: bool,
}

/// How a request ended, with its token counts (OpenAI usage).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub reason: FinishReason,
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    /// Prompt tokens whose keys and values came from the prefix cache.
    pub cached_tokens: usize,
    /// The stop string that ended the output, if one did.
    pub stop_string: Option<String>,
}

/// What a request's stream yields.
#[derive(Debug, Clone)]
pub enum EngineEvent {
    Token(TokenEvent),
    Finished(Finished),
    Error(String),
}

/// A request as the engine thread holds it.
pub struct Request {
    pub(crate) seq: SeqState,
    pub(crate) processor: TokenProcessor,
    events: UnboundedSender<EngineEvent>,
    arrival: Instant,
    last_token: Option<Instant>,
    /// The client went away (its stream was dropped).
    pub(crate) disconnected: bool,
    /// Whether this request may get drafted tokens.
    speculates: bool,
    /// How its drafts fared so far.
    pub(crate) acceptance: Acceptance,
}

impl Schedulable for Request {
    fn seq(&self) -> &SeqState {
        &self.seq
    }
    fn seq_mut(&mut self) -> &mut SeqState {
        &mut self.seq
    }
}

impl Request {
    pub(crate) fn new(id: u64, processor: TokenProcessor, prompt: Vec<u32>, events: UnboundedSender<EngineEvent>) -> Self {
        Request {
            seq: SeqState::new(id, prompt),
            processor,
            events,
            arrival: Instant::now(),
            last_token: None,
            disconnected: false,
            speculates: true,
            acceptance: Acceptance::default(),
        }
    }

    /// Keeps this request free of drafted tokens.
    pub(crate) fn without_speculation(mut self, off: bool) -> Self {
        self.speculates &= !off;
        self
    }

    /// How many drafted tokens this request could verify now (0 while prefilling): one fewer
    /// than it may still generate, since a step always emits one token of its own.
    pub(crate) fn draft_room(&self, most: usize) -> usize {
        if !self.speculates || self.is_done() || self.seq.pending() != 1 {
            return 0;
        }
        self.processor.remaining().saturating_sub(1).min(most)
    }

    /// Samples from a step's logits: one row, or with a draft one row per position, taken in
    /// order while the sampled token equals the drafted one. Each sampled token is exactly
    /// what decoding without the draft would have sampled there (same logits, same sampler
    /// calls), so greedy output is unchanged and sampled output keeps its distribution.
    pub(crate) fn sample_rows(&mut self, tokenizer: &Tokenizer, logits: &mut [f32], vocab: usize, metrics: &EngineMetrics) {
        let draft = std::mem::take(&mut self.seq.draft);
        let mut accepted = 0;
        for (position, row) in logits.chunks_exact_mut(vocab).enumerate() {
            let event = match self.processor.on_logits(tokenizer, row) {
                Ok(event) => event,
                Err(message) => {
                    self.emit_error(message);
                    self.disconnected = true;
                    break;
                }
            };
            let token = event.sampled.token;
            self.emit_token(event, metrics);
            if self.is_done() || draft.get(position) != Some(&token) {
                break;
            }
            accepted += 1;
        }
        if !draft.is_empty() {
            metrics.spec.record(draft.len(), accepted);
            if !self.is_done() {
                self.acceptance.record(draft.len(), accepted);
            }
        }
        self.seq.draft = draft;
        self.seq.draft_accepted = accepted;
    }

    pub fn id(&self) -> u64 {
        self.seq.id
    }

    pub(crate) fn is_done(&self) -> bool {
        self.disconnected || self.processor.finish_reason().is_some()
    }

    /// Sends a token event and records latencies.
    pub(crate) fn emit_token(&mut self, event: TokenEvent, metrics: &EngineMetrics) {
        let now = Instant::now();
        match self.last_token {
            None => metrics.time_to_first_token.observe((now - self.arrival).as_secs_f64()),
            Some(prev) => metrics.inter_token_latency.observe((now - prev).as_secs_f64()),
        }
        self.last_token = Some(now);
        self.seq.tokens.push(event.sampled.token);
        if self.events.send(EngineEvent::Token(event)).is_err() {
            self.disconnected = true;
        }
    }

    /// Sends the final event and records the request's totals.
    pub(crate) fn emit_finished(&mut self, reason: FinishReason, metrics: &EngineMetrics) {
        use std::sync::atomic::Ordering::Relaxed;
        let finished = Finished {
            reason,
            prompt_tokens: self.seq.prompt_len,
            completion_tokens: self.processor.generated().len(),
            cached_tokens: self.seq.cached_tokens,
            stop_string: self.processor.matched_stop().map(str::to_string),
        };
        metrics.e2e_latency.observe(self.arrival.elapsed().as_secs_f64());
        metrics.prompt_tokens.fetch_add(finished.prompt_tokens as u64, Relaxed);
        metrics.generation_tokens.fetch_add(finished.completion_tokens as u64, Relaxed);
        let counter = match reason {
            FinishReason::Stop => &metrics.finished_stop,
            FinishReason::Length => &metrics.finished_length,
            FinishReason::Abort => &metrics.finished_abort,
        };
        counter.fetch_add(1, Relaxed);
        let _ = self.events.send(EngineEvent::Finished(finished));
    }

    pub(crate) fn emit_error(&mut self, message: String) {
        let _ = self.events.send(EngineEvent::Error(message));
    }
}
