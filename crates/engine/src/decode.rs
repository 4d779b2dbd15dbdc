//! Per-request token processing shared by every generation path: sampling, end and stop
//! conditions, incremental text with stop strings held back.

use hearth_tokenizer::{IncrementalDecoder, StopCheck, StopStrings, Tokenizer};

use crate::constrain::TokenConstraint;
use crate::generate::{FinishReason, StopConditions, TokenEvent};
use crate::sample::{Sampler, SamplingParams};

/// The evolving output of one request.
pub struct TokenProcessor {
    sampler: Sampler,
    decoder: IncrementalDecoder,
    stops: StopStrings,
    end_ids: Vec<u32>,
    max_new: usize,
    min_tokens: usize,
    ignore_eos: bool,
    generated: Vec<u32>,
    text: String,
    finish: Option<FinishReason>,
    /// The grammar the output must follow, if any.
    constraint: Option<TokenConstraint>,
    /// The stop string that ended the output, if one did.
    matched_stop: Option<String>,
}

impl TokenProcessor {
    pub fn new(tokenizer: &Tokenizer, prompt: &[u32], sampling: SamplingParams, stop: &StopConditions, max_new: usize) -> Self {
        TokenProcessor {
            sampler: Sampler::new(sampling, prompt),
            decoder: IncrementalDecoder::new(),
            stops: StopStrings::new(stop.stop_strings.clone()),
            end_ids: tokenizer.end_of_generation().iter().chain(&stop.stop_token_ids).copied().collect(),
            max_new,
            min_tokens: stop.min_tokens,
            ignore_eos: stop.ignore_eos,
            generated: Vec::new(),
            text: String::new(),
            finish: if max_new == 0 { Some(FinishReason::Length) } else { None },
            constraint: None,
            matched_stop: None,
        }
    }

    /// Makes the output follow a grammar.
    pub fn with_constraint(mut self, constraint: Option<TokenConstraint>) -> Self {
        self.constraint = constraint;
        self
    }

    /// Whether the next token needs a grammar mask (a lazy grammar only once triggered).
    pub fn needs_mask(&self) -> bool {
        self.constraint.as_ref().is_some_and(TokenConstraint::is_active)
    }

    /// Computes the grammar mask for the next token ahead of `on_logits` (several requests
    /// may do this in parallel).
    pub fn prepare_mask(&mut self) {
        if let Some(constraint) = &mut self.constraint {
            constraint.prepare();
        }
    }

    /// The grammar state, for its timings.
    pub fn constraint(&self) -> Option<&TokenConstraint> {
        self.constraint.as_ref()
    }

    /// Samples the next token from `logits`; the event's text is what became final with it
    /// (with the end of generation, everything still held back). An error when the grammar
    /// allows no token.
    pub fn on_logits(&mut self, tokenizer: &Tokenizer, logits: &mut [f32]) -> Result<TokenEvent, String> {
        debug_assert!(self.finish.is_none(), "request already finished");
        if let Some(constraint) = &mut self.constraint {
            constraint.mask_logits(logits)?;
        }
        let sampled = self.sampler.sample(logits);
        let token = sampled.token;
        self.generated.push(token);
        let mut is_end = !self.ignore_eos && self.generated.len() > self.min_tokens && self.end_ids.contains(&token);
        if let Some(constraint) = &mut self.constraint {
            // an active grammar allowed an end token only where the output is complete
            is_end |= constraint.is_active() && self.end_ids.contains(&token);
            if !is_end {
                constraint.commit(token)?;
            }
        }
        let mut delta = if is_end {
            self.finish = Some(FinishReason::Stop);
            self.stops.flush()
        } else {
            match self.stops.push(&self.decoder.push(tokenizer, token)) {
                StopCheck::Continue(delta) => delta,
                StopCheck::Stopped { text, matched } => {
                    self.finish = Some(FinishReason::Stop);
                    self.matched_stop = Some(matched);
                    text
                }
            }
        };
        if self.finish.is_none() && self.generated.len() >= self.max_new {
            delta.push_str(&self.flush_rest(tokenizer));
            self.finish = Some(FinishReason::Length);
        }
        if self.finish.is_none() && self.constraint.as_ref().is_some_and(TokenConstraint::is_finished) {
            delta.push_str(&self.flush_rest(tokenizer));
            self.finish = Some(FinishReason::Stop);
        }
        self.text.push_str(&delta);
        Ok(TokenEvent { sampled, text: delta, finish: self.finish })
    }

    /// Ends the request early (aborted); returns the text still held back.
    pub fn abort(&mut self, tokenizer: &Tokenizer) -> String {
        let rest = self.flush_rest(tokenizer);
        self.text.push_str(&rest);
        self.finish = Some(FinishReason::Abort);
        rest
    }

    fn flush_rest(&mut self, tokenizer: &Tokenizer) -> String {
        match self.stops.push(&self.decoder.finish(tokenizer)) {
            StopCheck::Continue(t) => t + &self.stops.flush(),
            StopCheck::Stopped { text, matched } => {
                self.matched_stop = Some(matched);
                text
            }
        }
    }

    /// The stop string that ended the output, if one did.
    pub fn matched_stop(&self) -> Option<&str> {
        self.matched_stop.as_deref()
    }

    pub fn finish_reason(&self) -> Option<FinishReason> {
        self.finish
    }

    /// Tokens it may still generate.
    pub fn remaining(&self) -> usize {
        if self.finish.is_some() { 0 } else { self.max_new.saturating_sub(self.generated.len()) }
    }

    pub fn generated(&self) -> &[u32] {
        &self.generated
    }

    pub fn into_parts(self) -> (String, Vec<u32>) {
        (self.text, self.generated)
    }
}
