//! Generation for one sequence: prefill, decode loop, stop conditions, streamed text.

use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use hearth_model::{LogitsWanted, Model, ModelError, SeqSpan};
use hearth_tokenizer::Tokenizer;

use crate::decode::TokenProcessor;
use crate::sample::{Sampled, SamplingParams};

/// When generation ends besides the model's own end-of-generation tokens.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StopConditions {
    /// None: up to the context limit.
    pub max_tokens: Option<usize>,
    /// End-of-generation is ignored before this many tokens.
    pub min_tokens: usize,
    pub stop_strings: Vec<String>,
    pub stop_token_ids: Vec<u32>,
    /// Keep going past end-of-generation tokens (benchmarks).
    pub ignore_eos: bool,
}

/// Why generation ended (OpenAI's `finish_reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// An end-of-generation token, stop token or stop string.
    Stop,
    /// max_tokens or the context limit.
    Length,
    /// The caller asked to stop.
    Abort,
}

impl FinishReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::Abort => "abort",
        }
    }
}

/// One generated token and the text it released.
#[derive(Debug, Clone)]
pub struct TokenEvent {
    pub sampled: Sampled,
    pub text: String,
    /// Set on the last token of a request (its `Finished` event follows).
    pub finish: Option<FinishReason>,
}

/// The outcome of a generation with its timings.
#[derive(Debug, Clone)]
pub struct Generation {
    pub text: String,
    pub tokens: Vec<u32>,
    pub finish_reason: FinishReason,
    pub prompt_tokens: usize,
    pub prefill_time: Duration,
    pub decode_time: Duration,
}

impl Generation {
    pub fn prefill_tokens_per_second(&self) -> f64 {
        self.prompt_tokens as f64 / self.prefill_time.as_secs_f64().max(1e-9)
    }

    /// Decode speed over the tokens after the first (the first comes from the prefill).
    pub fn decode_tokens_per_second(&self) -> f64 {
        self.tokens.len().saturating_sub(1) as f64 / self.decode_time.as_secs_f64().max(1e-9)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("the prompt is empty")]
    EmptyPrompt,
    #[error("This model's maximum context length is {limit} tokens. However, you requested {requested} tokens ({prompt} in the messages, {completion} in the completion). Please reduce the length of the messages or completion.")]
    ContextOverflow { limit: usize, requested: usize, prompt: usize, completion: usize },
    #[error("invalid sampling parameters: {0}")]
    InvalidParams(String),
    #[error("the engine has stopped")]
    EngineStopped,
    #[error("{0}")]
    Constraint(String),
    #[error(transparent)]
    Model(#[from] ModelError),
}

/// Generates from `prompt` until a stop condition, calling `on_token` for each token.
pub fn generate(
    model: &Model,
    tokenizer: &Tokenizer,
    prompt: &[u32],
    sampling: SamplingParams,
    stop: &StopConditions,
    context_limit: usize,
    mut on_token: impl FnMut(&TokenEvent) -> ControlFlow<()>,
) -> Result<Generation, GenerateError> {
    if prompt.is_empty() {
        return Err(GenerateError::EmptyPrompt);
    }
    sampling.validate(model.config().vocab_size).map_err(GenerateError::InvalidParams)?;
    let max_new = budget(prompt.len(), stop.max_tokens, context_limit, MaxTokensPolicy::UpToContext)?.max_new;
    let mut processor = TokenProcessor::new(tokenizer, prompt, sampling, stop, max_new);
    let mut cache = model.new_cache();
    let started = Instant::now();
    let mut logits = forward_last(model, &mut cache, prompt)?;
    let prefill_time = started.elapsed();
    let decode_start = Instant::now();
    while processor.finish_reason().is_none() {
        let event = processor.on_logits(tokenizer, &mut logits).map_err(GenerateError::Constraint)?;
        let token = event.sampled.token;
        if on_token(&event).is_break() && processor.finish_reason().is_none() {
            processor.abort(tokenizer);
        }
        if processor.finish_reason().is_none() {
            logits = forward_last(model, &mut cache, &[token])?;
        }
    }
    let finish_reason = processor.finish_reason().expect("loop ends when finished");
    let (text, tokens) = processor.into_parts();
    Ok(Generation { text, tokens, finish_reason, prompt_tokens: prompt.len(), prefill_time, decode_time: decode_start.elapsed() })
}

/// What a `max_tokens` larger than what the context has left after the prompt does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MaxTokensPolicy {
    /// Generate until the context is full and finish with `length` (llama.cpp's and Ollama's
    /// behaviour; agents such as Claude Code send `max_tokens` 32000 whatever the prompt).
    #[default]
    UpToContext,
    /// Refuse the request with the context-length error (vLLM's behaviour).
    Strict,
}

/// How many tokens a request may generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub max_new: usize,
    /// The `max_tokens` asked for, when it was cut to what the context has left.
    pub cut_from: Option<usize>,
}

/// How many tokens may be generated, or the OpenAI-style context error: always when the
/// prompt alone fills the context, and for a larger `max_tokens` under the strict policy.
pub fn budget(prompt: usize, max_tokens: Option<usize>, context_limit: usize, policy: MaxTokensPolicy) -> Result<Budget, GenerateError> {
    let left = context_limit.saturating_sub(prompt);
    let completion = max_tokens.unwrap_or(left);
    let overflow = || GenerateError::ContextOverflow { limit: context_limit, requested: prompt + completion, prompt, completion };
    if prompt >= context_limit {
        return Err(overflow());
    }
    if completion <= left {
        return Ok(Budget { max_new: completion, cut_from: None });
    }
    match policy {
        MaxTokensPolicy::Strict => Err(overflow()),
        MaxTokensPolicy::UpToContext => Ok(Budget { max_new: left, cut_from: Some(completion) }),
    }
}

fn forward_last(model: &Model, cache: &mut hearth_model::KvCache, tokens: &[u32]) -> Result<Vec<f32>, ModelError> {
    let mut out = model.forward(&mut [SeqSpan { tokens, cache, logits: LogitsWanted::Last }])?;
    Ok(out.remove(0))
}

#[cfg(test)]
mod budget_tests {
    use super::*;

    #[test]
    fn max_tokens_beyond_the_context_is_cut_or_refused_by_policy() {
        let up_to = MaxTokensPolicy::UpToContext;
        assert_eq!(budget(10, Some(5), 100, up_to).unwrap(), Budget { max_new: 5, cut_from: None });
        assert_eq!(budget(10, None, 100, up_to).unwrap(), Budget { max_new: 90, cut_from: None });
        assert_eq!(budget(10, Some(90), 100, up_to).unwrap(), Budget { max_new: 90, cut_from: None }, "exactly full");
        assert_eq!(budget(10, Some(32000), 100, up_to).unwrap(), Budget { max_new: 90, cut_from: Some(32000) });
        assert!(matches!(budget(100, Some(1), 100, up_to), Err(GenerateError::ContextOverflow { prompt: 100, completion: 1, .. })));
        assert!(matches!(budget(120, None, 100, up_to), Err(GenerateError::ContextOverflow { prompt: 120, completion: 0, .. })));
        let strict = MaxTokensPolicy::Strict;
        assert_eq!(budget(10, Some(90), 100, strict).unwrap().max_new, 90);
        assert!(matches!(budget(10, Some(91), 100, strict), Err(GenerateError::ContextOverflow { requested: 101, .. })));
    }
}
