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

/// What a client asks the engine for.
#[derive(Debug, Default)]
pub struct EngineRequest {
    pub prompt: Vec<u32>,
    pub sampling: SamplingParams,
    pub stop: StopConditions,
    /// A compiled grammar the output must follow.
    pub constraint: Option<TokenConstraint>,
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
        Request { seq: SeqState::new(id, prompt), processor, events, arrival: Instant::now(), last_token: None, disconnected: false }
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
