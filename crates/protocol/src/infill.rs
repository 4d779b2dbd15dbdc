//! Fill-in-the-middle requests: llama.cpp's `POST /infill` (what llama.vscode and llama.vim
//! send) and Mistral's `POST /v1/fim/completions` (Continue's and LiteLLM's codestral shape).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::StopSpec;

/// A file of the project beside the one being edited.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InfillExtra {
    #[serde(default)]
    pub filename: String,
    #[serde(default)]
    pub text: String,
}

/// llama.cpp's `/infill` body. `prompt` is the current line up to the cursor: it goes after
/// `input_prefix` (llama.cpp's code does so, keeping the prefix's cached tokens stable).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct InfillRequest {
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub input_prefix: String,
    #[serde(default)]
    pub input_suffix: String,
    #[serde(default)]
    pub input_extra: Vec<InfillExtra>,
    #[serde(default)]
    pub prompt: String,
    /// Tokens to generate; -1 (or absent): until the model ends.
    #[serde(default)]
    pub n_predict: Option<i64>,
    /// Stop once this long has passed since the first token and a newline was generated.
    #[serde(default)]
    pub t_max_predict_ms: Option<u64>,
    /// Stop at a generated line indented less than this (the line is cut).
    #[serde(default)]
    pub n_indent: Option<usize>,
    /// Completions per request.
    #[serde(default)]
    pub n_cmpl: Option<u32>,
    #[serde(default)]
    pub temperature: Option<f32>,
    #[serde(default)]
    pub top_k: Option<i64>,
    #[serde(default)]
    pub top_p: Option<f32>,
    #[serde(default)]
    pub min_p: Option<f32>,
    #[serde(default)]
    pub seed: Option<i64>,
    #[serde(default)]
    pub stop: Option<StopSpec>,
    #[serde(default)]
    pub repeat_penalty: Option<f32>,
    #[serde(default)]
    pub presence_penalty: Option<f32>,
    #[serde(default)]
    pub frequency_penalty: Option<f32>,
    #[serde(default)]
    pub stream: Option<bool>,
    /// Accepted: the prefix cache is always on.
    #[serde(default)]
    pub cache_prompt: Option<bool>,
    /// Accepted: hearth has no slots to pin.
    #[serde(default)]
    pub id_slot: Option<i64>,
    /// Accepted: hearth's sampler order is fixed (penalties, top-k, top-p, min-p, temperature).
    #[serde(default)]
    pub samplers: Option<Vec<String>>,
    /// Accepted: the whole answer is sent.
    #[serde(default)]
    pub response_fields: Option<Vec<String>>,
    /// Accepted, as llama.cpp accepts it without acting on it.
    #[serde(default)]
    pub t_max_prompt_ms: Option<u64>,
    #[serde(flatten)]
    pub unknown: Map<String, Value>,
}

/// Mistral's `/v1/fim/completions` body (its answer is a chat completion).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MistralFimRequest {
    #[serde(default)]
    pub model: Option<String>,
    pub prompt: String,
    #[serde(default)]
    pub suffix: Option<String>,
    #[serde(default)]
    pub max_tokens: Option<u32>,
    #[serde(default)]
    pub min_tokens: Option<u32>,
    #[serde(default)]
    pub temperature: Option<f32>,
    #[serde(default)]
    pub top_p: Option<f32>,
    #[serde(default)]
    pub stop: Option<StopSpec>,
    #[serde(default)]
    pub random_seed: Option<i64>,
    #[serde(default)]
    pub stream: Option<bool>,
    #[serde(flatten)]
    pub unknown: Map<String, Value>,
}
