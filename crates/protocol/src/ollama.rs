//! Ollama's native API (`/api/chat`, `/api/generate` and friends): the request shapes hearth
//! serves. Answers are built as JSON values by the server (Ollama adds fields freely).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OllamaChatRequest {
    pub model: String,
    pub messages: Vec<OllamaMessage>,
    #[serde(default)]
    pub tools: Option<Vec<Value>>,
    /// `"json"` or a JSON Schema.
    #[serde(default)]
    pub format: Option<Value>,
    #[serde(default)]
    pub options: Option<OllamaOptions>,
    /// Ollama streams unless told not to.
    #[serde(default)]
    pub stream: Option<bool>,
    /// Accepted; the model stays loaded for the server's life.
    #[serde(default)]
    pub keep_alive: Option<Value>,
    /// Thinking on or off (`true`/`false`, or a level such as `"high"`), for models that have
    /// the switch.
    #[serde(default)]
    pub think: Option<Value>,
    #[serde(flatten)]
    pub unknown: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OllamaGenerateRequest {
    pub model: String,
    #[serde(default)]
    pub prompt: String,
    #[serde(default)]
    pub system: Option<String>,
    /// The prompt is sent as it is, without the chat template.
    #[serde(default)]
    pub raw: Option<bool>,
    /// Text after the insertion point: with it, `prompt` is the text before it and the answer
    /// fills the middle (Ollama's "insert").
    #[serde(default)]
    pub suffix: Option<String>,
    /// A Go template replacing the model's; only `{{ .Prompt }}` (the prompt as it is) is read.
    #[serde(default)]
    pub template: Option<String>,
    #[serde(default)]
    pub format: Option<Value>,
    #[serde(default)]
    pub options: Option<OllamaOptions>,
    #[serde(default)]
    pub stream: Option<bool>,
    #[serde(default)]
    pub keep_alive: Option<Value>,
    #[serde(default)]
    pub images: Option<Vec<Value>>,
    #[serde(flatten)]
    pub unknown: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OllamaMessage {
    pub role: String,
    #[serde(default)]
    pub content: String,
    #[serde(default)]
    pub images: Option<Vec<Value>>,
    /// `[{"function": {"name", "arguments": {...}}}]`, arguments as an object.
    #[serde(default)]
    pub tool_calls: Option<Vec<Value>>,
    #[serde(default)]
    pub tool_name: Option<String>,
    /// An assistant turn's reasoning (a thinking model's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<String>,
}

/// Sampling `options` (llama.cpp names); the ones hearth has no use for (num_ctx, num_gpu...)
/// are accepted and named in a warning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct OllamaOptions {
    #[serde(default)]
    pub temperature: Option<f32>,
    #[serde(default)]
    pub top_p: Option<f32>,
    #[serde(default)]
    pub top_k: Option<i64>,
    #[serde(default)]
    pub min_p: Option<f32>,
    #[serde(default)]
    pub seed: Option<i64>,
    /// -1 (no limit) and -2 (fill the context) mean the context limit.
    #[serde(default)]
    pub num_predict: Option<i64>,
    #[serde(default)]
    pub stop: Option<Vec<String>>,
    #[serde(default)]
    pub repeat_penalty: Option<f32>,
    #[serde(default)]
    pub presence_penalty: Option<f32>,
    #[serde(default)]
    pub frequency_penalty: Option<f32>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `/api/show`: the model asked about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OllamaShowRequest {
    #[serde(default)]
    pub model: Option<String>,
    /// The older name of the field.
    #[serde(default)]
    pub name: Option<String>,
}
