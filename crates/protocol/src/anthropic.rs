//! Anthropic's Messages API (`/v1/messages`): request, response, stream events and errors.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessagesRequest {
    /// Absent: the first served name.
    #[serde(default)]
    pub model: Option<String>,
    /// Required, as Anthropic requires it.
    pub max_tokens: u32,
    pub messages: Vec<AnthropicMessage>,
    #[serde(default)]
    pub system: Option<TextOrBlocks>,
    #[serde(default)]
    pub stop_sequences: Option<Vec<String>>,
    #[serde(default)]
    pub temperature: Option<f32>,
    #[serde(default)]
    pub top_p: Option<f32>,
    #[serde(default)]
    pub top_k: Option<u32>,
    #[serde(default)]
    pub stream: Option<bool>,
    #[serde(default)]
    pub tools: Option<Vec<AnthropicTool>>,
    #[serde(default)]
    pub tool_choice: Option<AnthropicToolChoice>,
    /// Accepted and not used (`metadata.user_id`).
    #[serde(default)]
    pub metadata: Option<Value>,
    /// Extended thinking: `enabled` (with `budget_tokens`), `adaptive` or `disabled`.
    #[serde(default)]
    pub thinking: Option<ThinkingConfig>,
    /// `effort` (reasoning effort) and `format` (a JSON schema the answer follows).
    #[serde(default)]
    pub output_config: Option<OutputConfig>,
    /// Server-side context editing (e.g. clearing old thinking blocks); accepted: hearth keeps
    /// no thinking blocks of earlier turns in the prompt, which is what those edits ask for.
    #[serde(default)]
    pub context_management: Option<Value>,
    /// Fields hearth does not know; the server names them in a warning.
    #[serde(flatten)]
    pub unknown: Map<String, Value>,
}

/// `thinking`: whether the model reasons before it answers, where it has such a switch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThinkingConfig {
    /// `enabled`, `adaptive` or `disabled`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub budget_tokens: Option<u32>,
    /// `summarized` or `omitted`: how thinking is shown.
    #[serde(default)]
    pub display: Option<String>,
}

/// `output_config`: reasoning effort and a structured-output format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputConfig {
    /// `low`, `medium`, `high` or `max`.
    #[serde(default)]
    pub effort: Option<String>,
    /// `{"type": "json_schema", "schema": {...}}`.
    #[serde(default)]
    pub format: Option<Value>,
    #[serde(flatten)]
    pub unknown: Map<String, Value>,
}

/// `/v1/messages/count_tokens`: the request without generation settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CountTokensRequest {
    #[serde(default)]
    pub model: Option<String>,
    pub messages: Vec<AnthropicMessage>,
    #[serde(default)]
    pub system: Option<TextOrBlocks>,
    #[serde(default)]
    pub tools: Option<Vec<AnthropicTool>>,
    #[serde(default)]
    pub thinking: Option<ThinkingConfig>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnthropicMessage {
    pub role: String,
    pub content: TextOrBlocks,
}

/// Content: a string or a list of blocks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TextOrBlocks {
    Text(String),
    Blocks(Vec<ContentBlock>),
}

/// A content block of a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentBlock {
    Text {
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        input: Value,
    },
    ToolResult {
        tool_use_id: String,
        #[serde(default)]
        content: Option<TextOrBlocks>,
        #[serde(default)]
        is_error: Option<bool>,
    },
    /// The model's reasoning in an earlier assistant turn (sent back by agents).
    Thinking {
        thinking: String,
        #[serde(default)]
        signature: Option<String>,
    },
    RedactedThinking {
        data: String,
    },
    /// Any other block type (image, document...): refused by the server by name.
    #[serde(untagged)]
    Other(Value),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnthropicTool {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Absent for Anthropic's server tools (`type` names them).
    #[serde(default)]
    pub input_schema: Option<Value>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
}

/// `tool_choice`: auto, any, tool (with a name) or none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnthropicToolChoice {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub disable_parallel_tool_use: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessagesResponse {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub role: String,
    pub model: String,
    pub content: Vec<OutputBlock>,
    pub stop_reason: Option<String>,
    pub stop_sequence: Option<String>,
    pub usage: AnthropicUsage,
}

/// A block of the answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutputBlock {
    /// A thinking model's reasoning. hearth signs nothing: `signature` is empty.
    Thinking { thinking: String, signature: String },
    Text { text: String },
    ToolUse { id: String, name: String, input: Value },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct AnthropicUsage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    #[serde(default)]
    pub cache_read_input_tokens: u64,
    #[serde(default)]
    pub cache_creation_input_tokens: u64,
}

/// Anthropic's error body: `{"type": "error", "error": {"type", "message"}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnthropicError {
    #[serde(rename = "type")]
    pub kind: String,
    pub error: AnthropicErrorBody,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnthropicErrorBody {
    #[serde(rename = "type")]
    pub kind: String,
    pub message: String,
}

impl AnthropicError {
    pub fn new(kind: impl Into<String>, message: impl Into<String>) -> Self {
        AnthropicError { kind: "error".into(), error: AnthropicErrorBody { kind: kind.into(), message: message.into() } }
    }

    /// The error `type` Anthropic uses for an HTTP status.
    pub fn kind_for_status(status: u16) -> &'static str {
        match status {
            400 | 413 | 422 => "invalid_request_error",
            401 => "authentication_error",
            403 => "permission_error",
            404 => "not_found_error",
            429 => "rate_limit_error",
            503 | 529 => "overloaded_error",
            _ => "api_error",
        }
    }
}
