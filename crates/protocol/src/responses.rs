//! OpenAI's Responses API (`/v1/responses`): the request with its input items, the response
//! object with its output items, and usage.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponsesRequest {
    /// Absent: the first served name.
    #[serde(default)]
    pub model: Option<String>,
    /// A user message as a string, or a list of items.
    #[serde(default)]
    pub input: Option<ResponsesInput>,
    /// A system message for this response only (not carried over by `previous_response_id`).
    #[serde(default)]
    pub instructions: Option<String>,
    /// Function tools (flat: `{"type": "function", "name", "parameters"}`); other kinds are
    /// hosted tools hearth cannot run.
    #[serde(default)]
    pub tools: Option<Vec<Value>>,
    #[serde(default)]
    pub tool_choice: Option<Value>,
    #[serde(default)]
    pub parallel_tool_calls: Option<bool>,
    #[serde(default)]
    pub text: Option<TextConfig>,
    #[serde(default)]
    pub max_output_tokens: Option<u32>,
    #[serde(default)]
    pub temperature: Option<f32>,
    #[serde(default)]
    pub top_p: Option<f32>,
    /// Keep the response for `previous_response_id` and `GET` (OpenAI's default: true).
    #[serde(default)]
    pub store: Option<bool>,
    #[serde(default)]
    pub previous_response_id: Option<String>,
    #[serde(default)]
    pub stream: Option<bool>,
    #[serde(default)]
    pub background: Option<bool>,
    #[serde(default)]
    pub metadata: Option<Map<String, Value>>,
    #[serde(default)]
    pub user: Option<String>,
    /// Accepted and echoed; this engine has no reasoning mode.
    #[serde(default)]
    pub reasoning: Option<Value>,
    /// Accepted (`auto` or `disabled`); a prompt longer than the context is refused either way.
    #[serde(default)]
    pub truncation: Option<String>,
    /// Accepted: hearth's prefix cache needs no key.
    #[serde(default)]
    pub prompt_cache_key: Option<String>,
    /// Accepted: extra output hearth does not produce (encrypted reasoning, logprobs).
    #[serde(default)]
    pub include: Option<Vec<String>>,
    /// Accepted: the client's own bookkeeping (Codex sends its thread and turn ids).
    #[serde(default)]
    pub client_metadata: Option<Value>,
    /// Fields hearth does not know; the server names them in a warning.
    #[serde(flatten)]
    pub unknown: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ResponsesInput {
    Text(String),
    Items(Vec<InputItem>),
}

/// One input item. Messages may omit `type`; which fields matter depends on it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InputItem {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<ItemContent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<String>,
    /// A `function_call_output`'s result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<ItemContent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Everything else the item carries (`status`, a reasoning item's `summary`, ...).
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl InputItem {
    /// A message item with one text part (`input_text` for user turns, `output_text` for the
    /// assistant's).
    pub fn message(role: &str, text: String) -> Self {
        let part = if role == "assistant" { "output_text" } else { "input_text" };
        InputItem {
            kind: Some("message".into()),
            role: Some(role.into()),
            content: Some(ItemContent::Parts(vec![ContentPart { kind: part.into(), text: Some(text), other: Map::new() }])),
            ..Default::default()
        }
    }
}

/// Content: a string or a list of typed parts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ItemContent {
    Text(String),
    Parts(Vec<ContentPart>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContentPart {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `text`: the output format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextConfig {
    #[serde(default)]
    pub format: Option<TextFormat>,
    /// Accepted (`low`/`medium`/`high`); the model decides its own length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verbosity: Option<String>,
}

/// `text.format`: `text`, `json_object`, or `json_schema` with the schema inline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextFormat {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// The response object (`object: "response"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseObject {
    pub id: String,
    pub object: String,
    pub created_at: u64,
    /// `in_progress`, `completed`, `incomplete`, `failed`.
    pub status: String,
    pub completed_at: Option<u64>,
    pub error: Option<ResponseErrorInfo>,
    pub incomplete_details: Option<IncompleteDetails>,
    pub instructions: Option<String>,
    pub max_output_tokens: Option<u32>,
    pub model: String,
    pub output: Vec<OutputItem>,
    pub parallel_tool_calls: bool,
    pub previous_response_id: Option<String>,
    pub reasoning: Value,
    pub store: bool,
    pub temperature: Option<f32>,
    pub text: Value,
    pub tool_choice: Value,
    pub tools: Vec<Value>,
    pub top_p: Option<f32>,
    pub truncation: String,
    pub usage: Option<ResponsesUsage>,
    pub user: Option<String>,
    pub metadata: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseErrorInfo {
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncompleteDetails {
    pub reason: String,
}

/// An output item: a thinking model's reasoning, the assistant's message, or one function call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutputItem {
    /// The reasoning as one `reasoning_text` part; `summary` stays empty (hearth writes none).
    Reasoning { id: String, summary: Vec<Value>, content: Vec<ReasoningText> },
    Message { id: String, status: String, role: String, content: Vec<OutputText> },
    FunctionCall {
        id: String,
        call_id: String,
        name: String,
        arguments: String,
        status: String,
        /// The namespace tool the function belongs to, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        namespace: Option<String>,
    },
}

impl OutputItem {
    /// The item as the input of a later turn (what `previous_response_id` replays).
    pub fn as_input(&self) -> InputItem {
        match self {
            OutputItem::Reasoning { id, summary, content } => InputItem {
                kind: Some("reasoning".into()),
                id: Some(id.clone()),
                other: [
                    ("summary".to_string(), Value::Array(summary.clone())),
                    ("content".to_string(), serde_json::to_value(content).unwrap_or_default()),
                ]
                .into_iter()
                .collect(),
                ..Default::default()
            },
            OutputItem::Message { content, .. } => {
                InputItem::message("assistant", content.iter().map(|part| part.text.as_str()).collect())
            }
            OutputItem::FunctionCall { id, call_id, name, arguments, namespace, .. } => InputItem {
                kind: Some("function_call".into()),
                call_id: Some(call_id.clone()),
                name: Some(name.clone()),
                arguments: Some(arguments.clone()),
                id: Some(id.clone()),
                other: namespace.iter().map(|ns| ("namespace".to_string(), Value::String(ns.clone()))).collect(),
                ..Default::default()
            },
        }
    }
}

/// A `reasoning_text` content part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReasoningText {
    #[serde(rename = "type")]
    pub kind: String,
    pub text: String,
}

impl ReasoningText {
    pub fn new(text: String) -> Self {
        ReasoningText { kind: "reasoning_text".into(), text }
    }
}

/// An `output_text` content part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputText {
    #[serde(rename = "type")]
    pub kind: String,
    pub text: String,
    pub annotations: Vec<Value>,
    pub logprobs: Vec<Value>,
}

impl OutputText {
    pub fn new(text: String) -> Self {
        OutputText { kind: "output_text".into(), text, annotations: Vec::new(), logprobs: Vec::new() }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResponsesUsage {
    pub input_tokens: u64,
    pub input_tokens_details: InputTokensDetails,
    pub output_tokens: u64,
    pub output_tokens_details: OutputTokensDetails,
    pub total_tokens: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InputTokensDetails {
    pub cached_tokens: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OutputTokensDetails {
    pub reasoning_tokens: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_items_of_every_kind_parse() {
        let json = r#"{"model": "m", "input": [
            {"role": "user", "content": "hi"},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "more"}]},
            {"type": "reasoning", "id": "rs_1", "summary": []},
            {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "42"}],
            "text": {"format": {"type": "json_schema", "name": "x", "schema": {"type": "object"}, "strict": true}}}"#;
        let request: ResponsesRequest = serde_json::from_str(json).unwrap();
        let Some(ResponsesInput::Items(items)) = request.input else { panic!("items") };
        assert_eq!(items.len(), 5);
        assert_eq!(items[0].kind, None);
        assert_eq!(items[2].other["summary"], serde_json::json!([]));
        assert_eq!(items[4].output, Some(ItemContent::Text("42".into())));
        assert_eq!(request.text.unwrap().format.unwrap().kind, "json_schema");
    }

    #[test]
    fn output_items_replay_as_input() {
        let message = OutputItem::Message { id: "msg_1".into(), status: "completed".into(), role: "assistant".into(),
            content: vec![OutputText::new("hello".into())] };
        let wire = serde_json::to_value(&message).unwrap();
        assert_eq!(wire["type"], "message");
        let replay = serde_json::to_value(message.as_input()).unwrap();
        assert_eq!(replay, serde_json::json!({"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "hello"}]}));
    }
}
