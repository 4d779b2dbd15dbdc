//! OpenAI (and Anthropic Messages, Ollama) wire types shared by the server, the gateway and the checker: requests, responses,
//! stream chunks, model lists and errors, the splitter that cuts a streamed body into events, and
//! a reader of Prometheus metric pages.
//! serde only.

pub mod anthropic;
pub mod chat;
pub mod completions;
pub mod error;
pub mod infill;
pub mod models;
pub mod ollama;
pub mod prometheus;
pub mod responses;
pub mod sse;
pub mod tokenize;

pub use chat::*;
pub use completions::*;
pub use error::{ErrorBody, ErrorResponse};
pub use models::{ModelCard, ModelList};
pub use tokenize::*;

use serde::{Deserialize, Serialize};

/// Token counts of one request (OpenAI `usage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens_details: Option<PromptTokensDetails>,
}

/// Where prompt tokens came from (OpenAI reports cached tokens here).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct PromptTokensDetails {
    pub cached_tokens: u64,
}

impl Usage {
    pub fn new(prompt_tokens: u64, completion_tokens: u64, cached_tokens: u64) -> Self {
        Usage {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens + completion_tokens,
            prompt_tokens_details: Some(PromptTokensDetails { cached_tokens }),
        }
    }
}

/// `stop`: one string or a list of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum StopSpec {
    One(String),
    Many(Vec<String>),
}

impl StopSpec {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            StopSpec::One(s) => vec![s],
            StopSpec::Many(v) => v,
        }
    }
}

/// `stream_options`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StreamOptions {
    #[serde(default)]
    pub include_usage: Option<bool>,
    /// vLLM's extension: usage on every chunk.
    #[serde(default)]
    pub continuous_usage_stats: Option<bool>,
}

/// An optional field that must be a JSON object (serde alone would also read a struct from
/// an array, so `[]` would pass as all defaults).
fn object_or_null<'de, D: serde::Deserializer<'de>, T: serde::de::DeserializeOwned>(d: D) -> Result<Option<T>, D::Error> {
    use serde::de::Error;
    match Option::<serde_json::Value>::deserialize(d)? {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(value @ serde_json::Value::Object(_)) => serde_json::from_value(value).map(Some).map_err(D::Error::custom),
        Some(other) => Err(D::Error::custom(format!("expected an object, got {}", json_kind(&other)))),
    }
}

fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// Sampling fields common to chat and completions requests (OpenAI names plus vLLM's
/// extensions). Absent fields take the model's or OpenAI's defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SamplingFields {
    #[serde(default)]
    pub temperature: Option<f32>,
    #[serde(default)]
    pub top_p: Option<f32>,
    /// vLLM: -1 or 0 turn it off.
    #[serde(default)]
    pub top_k: Option<i64>,
    #[serde(default)]
    pub min_p: Option<f32>,
    #[serde(default)]
    pub n: Option<u32>,
    #[serde(default)]
    pub seed: Option<i64>,
    #[serde(default)]
    pub stop: Option<StopSpec>,
    #[serde(default)]
    pub stop_token_ids: Option<Vec<u32>>,
    #[serde(default)]
    pub presence_penalty: Option<f32>,
    #[serde(default)]
    pub frequency_penalty: Option<f32>,
    #[serde(default)]
    pub repetition_penalty: Option<f32>,
    /// Token id (as a string key) -> bias in [-100, 100].
    #[serde(default)]
    pub logit_bias: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    pub ignore_eos: Option<bool>,
    #[serde(default)]
    pub min_tokens: Option<u32>,
    #[serde(default)]
    pub stream: Option<bool>,
    #[serde(default, deserialize_with = "object_or_null")]
    pub stream_options: Option<StreamOptions>,
    #[serde(default)]
    pub user: Option<String>,
    /// hearth's extension: `false` decodes this request without drafted tokens where the
    /// server speculates (outputs are the same either way; only speed differs).
    #[serde(default)]
    pub speculative: Option<bool>,
}
