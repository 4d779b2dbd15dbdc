//! Request parameters -> engine sampling and stop settings, with range checks that name the
//! parameter.

use hearth_engine::{GenerationDefaults, SamplingParams, StopConditions};
use hearth_protocol::SamplingFields;

use crate::error::ApiError;

/// Most choices one request may ask for.
pub const MAX_CHOICES: u32 = 128;
/// Most alternatives per token (OpenAI's limit for chat).
pub const MAX_TOP_LOGPROBS: u32 = 20;

/// What the engine is asked to do for every choice of a request.
#[derive(Debug, Clone)]
pub struct GenerationPlan {
    pub sampling: SamplingParams,
    pub stop: StopConditions,
    pub n: usize,
    pub stream: bool,
    pub include_usage: bool,
    /// The client asked for decoding without drafted tokens.
    pub no_speculation: bool,
}

impl GenerationPlan {
    /// The sampling parameters of choice `index`: a seed gives each choice its own stream.
    pub fn sampling_for(&self, index: usize) -> SamplingParams {
        let mut sampling = self.sampling.clone();
        sampling.seed = sampling.seed.map(|s| s.wrapping_add(index as u64));
        sampling
    }
}

/// Builds the plan; `logprobs` is the number of alternatives wanted (None: no logprobs).
pub fn plan(
    fields: SamplingFields,
    max_tokens: Option<u32>,
    logprobs: Option<usize>,
    defaults: &GenerationDefaults,
) -> Result<GenerationPlan, ApiError> {
    let bad = |message: &str, param: &str| Err(ApiError::bad_request(message, Some(param)));
    let n = fields.n.unwrap_or(1);
    if n == 0 || n > MAX_CHOICES {
        return bad(&format!("n must be between 1 and {MAX_CHOICES}"), "n");
    }
    if max_tokens == Some(0) {
        return bad("max_tokens must be at least 1", "max_tokens");
    }
    let top_k = match fields.top_k {
        None => defaults.top_k.unwrap_or(0),
        Some(-1) | Some(0) => 0,
        Some(k) if k > 0 => k as usize,
        Some(_) => return bad("top_k must be -1 (off) or a positive integer", "top_k"),
    };
    let temperature = fields.temperature.or(defaults.temperature).unwrap_or(1.0);
    if !(temperature.is_finite() && temperature >= 0.0) {
        return bad("temperature must be a number >= 0", "temperature");
    }
    let sampling = SamplingParams {
        temperature,
        top_k,
        top_p: fields.top_p.or(defaults.top_p).unwrap_or(1.0),
        min_p: fields.min_p.or(defaults.min_p).unwrap_or(0.0),
        repetition_penalty: fields.repetition_penalty.or(defaults.repetition_penalty).unwrap_or(1.0),
        presence_penalty: fields.presence_penalty.unwrap_or(0.0),
        frequency_penalty: fields.frequency_penalty.unwrap_or(0.0),
        logit_bias: logit_bias(fields.logit_bias)?,
        seed: fields.seed.map(|s| s as u64),
        logprobs,
    };
    let stop_strings = fields.stop.map(|s| s.into_vec()).unwrap_or_default();
    if stop_strings.iter().any(String::is_empty) {
        return bad("stop strings must not be empty", "stop");
    }
    let stop = StopConditions {
        max_tokens: max_tokens.map(|m| m as usize),
        min_tokens: fields.min_tokens.unwrap_or(0) as usize,
        stop_strings,
        stop_token_ids: fields.stop_token_ids.unwrap_or_default(),
        ignore_eos: fields.ignore_eos.unwrap_or(false),
    };
    if let Some(max) = stop.max_tokens {
        if stop.min_tokens > max {
            return bad("min_tokens must not exceed max_tokens", "min_tokens");
        }
    }
    let options = fields.stream_options.unwrap_or_default();
    let stream = fields.stream.unwrap_or(false);
    if !stream && options != Default::default() {
        return bad("stream_options is only allowed when stream is true", "stream_options");
    }
    Ok(GenerationPlan {
        sampling,
        stop,
        n: n as usize,
        stream,
        include_usage: options.include_usage.unwrap_or(false),
        no_speculation: fields.speculative == Some(false),
    })
}

/// `{"123": -100}` -> [(123, -100.0)].
fn logit_bias(map: Option<serde_json::Map<String, serde_json::Value>>) -> Result<Vec<(u32, f32)>, ApiError> {
    let Some(map) = map else { return Ok(Vec::new()) };
    map.into_iter()
        .map(|(key, value)| {
            let token = key.trim().parse::<u32>().map_err(|_| {
                ApiError::bad_request(format!("logit_bias keys must be token ids; got `{key}`"), Some("logit_bias"))
            })?;
            let bias = value.as_f64().ok_or_else(|| {
                ApiError::bad_request(format!("logit_bias[{key}] must be a number"), Some("logit_bias"))
            })?;
            Ok((token, bias as f32))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(json: &str) -> SamplingFields {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn omitted_values_take_model_then_openai_defaults() {
        let defaults = GenerationDefaults { temperature: Some(0.7), top_k: Some(20), ..Default::default() };
        let p = plan(fields("{}"), None, None, &defaults).unwrap();
        assert_eq!((p.sampling.temperature, p.sampling.top_k, p.sampling.top_p), (0.7, 20, 1.0));
        let p = plan(fields(r#"{"temperature": 0, "top_k": -1}"#), None, None, &defaults).unwrap();
        assert_eq!((p.sampling.temperature, p.sampling.top_k), (0.0, 0));
        let p = plan(fields("{}"), None, None, &GenerationDefaults::default()).unwrap();
        assert_eq!(p.sampling.temperature, 1.0);
    }

    #[test]
    fn parameters_map_to_the_engine() {
        let json = r#"{"n": 2, "seed": 7, "stop": "END", "logit_bias": {"42": -100}, "min_tokens": 3,
                       "ignore_eos": true, "stream": true, "stream_options": {"include_usage": true}}"#;
        let p = plan(fields(json), Some(10), Some(2), &GenerationDefaults::default()).unwrap();
        assert_eq!(p.n, 2);
        assert_eq!(p.sampling_for(1).seed, Some(8));
        assert_eq!(p.stop.stop_strings, vec!["END".to_string()]);
        assert_eq!(p.sampling.logit_bias, vec![(42, -100.0)]);
        assert_eq!((p.stop.max_tokens, p.stop.min_tokens, p.stop.ignore_eos), (Some(10), 3, true));
        assert!(p.stream && p.include_usage);
        assert_eq!(p.sampling.logprobs, Some(2));
    }

    #[test]
    fn bad_values_name_the_parameter() {
        let d = GenerationDefaults::default();
        let param = |json: &str, max: Option<u32>| plan(fields(json), max, None, &d).unwrap_err().body.error.param;
        assert_eq!(param(r#"{"n": 0}"#, None).as_deref(), Some("n"));
        assert_eq!(param(r#"{"top_k": -5}"#, None).as_deref(), Some("top_k"));
        assert_eq!(param(r#"{"temperature": -1}"#, None).as_deref(), Some("temperature"));
        assert_eq!(param(r#"{"logit_bias": {"x": 1}}"#, None).as_deref(), Some("logit_bias"));
        assert_eq!(param(r#"{"stop": ["", "a"]}"#, None).as_deref(), Some("stop"));
        assert_eq!(param(r#"{"min_tokens": 5}"#, Some(2)).as_deref(), Some("min_tokens"));
        assert_eq!(param("{}", Some(0)).as_deref(), Some("max_tokens"));
        assert_eq!(param(r#"{"stream_options": {"include_usage": true}}"#, None).as_deref(), Some("stream_options"));
    }
}
