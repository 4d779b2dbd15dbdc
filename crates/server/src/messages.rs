//! `POST /v1/messages` and `/v1/messages/count_tokens` (Anthropic's Messages API): the request
//! converted into the chat pipeline (template, tools, grammars, parser), the answer into
//! content blocks, errors in Anthropic's shape.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use hearth_engine::FinishReason;
use hearth_protocol::anthropic::{
    AnthropicError, AnthropicMessage, AnthropicTool, AnthropicToolChoice, AnthropicUsage, ContentBlock,
    CountTokensRequest, MessagesRequest, MessagesResponse, OutputBlock, OutputConfig, TextOrBlocks, ThinkingConfig,
};
use hearth_protocol::{ChatMessageIn, MessageContent, SamplingFields, StopSpec};
use hearth_tools::{ReplyFormat, ToolCall};
use serde_json::{json, Value};

use crate::access_log::RequestLog;
use crate::body::parse_body;
use crate::conversation::{reply_parts, Ask, Conversation, Started};
use crate::error::ApiError;
use crate::{generation, warn_unknown_fields};

/// An error in Anthropic's shape, with the status the OpenAI-shaped one had.
pub fn anthropic_error(error: ApiError) -> Response {
    let kind = AnthropicError::kind_for_status(error.status.as_u16());
    let status = error.status;
    (status, Json(AnthropicError::new(kind, error.body.error.message))).into_response()
}

pub async fn messages(
    State(state): State<Arc<crate::AppState>>,
    Extension(log): Extension<Arc<RequestLog>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match answer(state, log, body).await {
        Ok(response) => response,
        Err(error) => anthropic_error(error),
    }
}

pub async fn count_tokens(State(state): State<Arc<crate::AppState>>, body: Result<Bytes, BytesRejection>) -> Response {
    let counted = (|| {
        let request: CountTokensRequest = parse_body(body, state.config.max_body_bytes)?;
        state.resolve_model_name(request.model.as_deref())?;
        let model = state.ready_model()?;
        let conversation = conversation(request.system.as_ref(), &request.messages, request.tools.as_ref(), None)?
            .with_template_kwargs(template_kwargs(request.thinking.as_ref(), None));
        Ok::<_, ApiError>(conversation.render(&model)?.len())
    })();
    match counted {
        Ok(tokens) => Json(json!({"input_tokens": tokens})).into_response(),
        Err(error) => anthropic_error(error),
    }
}

async fn answer(state: Arc<crate::AppState>, log: Arc<RequestLog>, body: Result<Bytes, BytesRejection>) -> Result<Response, ApiError> {
    let request: MessagesRequest = parse_body(body, state.config.max_body_bytes)?;
    let model_name = state.resolve_model_name(request.model.as_deref())?;
    let model = state.ready_model()?;
    warn_unknown_fields(&request.unknown);
    let conversation = conversation(request.system.as_ref(), &request.messages, request.tools.as_ref(), request.tool_choice.as_ref())?
        .with_template_kwargs(template_kwargs(request.thinking.as_ref(), request.output_config.as_ref()));
    let format = output_format(request.output_config.as_ref())?;
    let fields = SamplingFields {
        temperature: request.temperature,
        top_p: request.top_p,
        top_k: request.top_k.map(i64::from),
        stop: request.stop_sequences.clone().map(StopSpec::Many),
        stream: request.stream,
        ..Default::default()
    };
    let ask = Ask { fields, max_tokens: Some(request.max_tokens), format: format.as_ref(), ..Default::default() };
    let Started { submitted, plan, prompt_tokens, reply, single_call } = conversation.start(&state, &model, ask)?;
    let show_thinking = thinking_shown(request.thinking.as_ref());
    let id = format!("msg_{}", crate::random_id());
    if plan.stream {
        let opening = MessagesResponse {
            id,
            kind: "message".into(),
            role: "assistant".into(),
            model: model_name,
            content: Vec::new(),
            stop_reason: None,
            stop_sequence: None,
            usage: AnthropicUsage { input_tokens: prompt_tokens, ..Default::default() },
        };
        return Ok(crate::messages_stream::sse_response(submitted, opening, reply, single_call, show_thinking, log));
    }
    let (results, usage) = generation::collect(submitted, &log).await?;
    let result = results.into_iter().next().unwrap_or_default();
    let (content, made_calls) = output_blocks(&result.text, &reply, single_call, show_thinking);
    let reason = result.finish.as_ref().map(|f| f.reason).unwrap_or(FinishReason::Stop);
    let stop_sequence = result.finish.as_ref().and_then(|f| f.stop_string.clone());
    let response = MessagesResponse {
        id,
        kind: "message".into(),
        role: "assistant".into(),
        model: model_name,
        content,
        stop_reason: Some(stop_reason(reason, made_calls, stop_sequence.is_some()).into()),
        stop_sequence,
        usage: AnthropicUsage {
            input_tokens: usage.prompt_tokens,
            output_tokens: usage.completion_tokens,
            cache_read_input_tokens: usage.prompt_tokens_details.map(|d| d.cached_tokens).unwrap_or(0),
            cache_creation_input_tokens: 0,
        },
    };
    Ok(Json(response).into_response())
}

/// Anthropic's `stop_reason`.
pub fn stop_reason(reason: FinishReason, made_calls: bool, stop_sequence: bool) -> &'static str {
    match (reason, made_calls, stop_sequence) {
        (FinishReason::Length, _, _) => "max_tokens",
        (_, true, _) => "tool_use",
        (_, _, true) => "stop_sequence",
        _ => "end_turn",
    }
}

/// A `tool_use` block for a parsed call (its id in Anthropic's `toolu_` form).
pub fn tool_use_block(call: ToolCall) -> OutputBlock {
    let input = serde_json::from_str(&call.arguments).unwrap_or_else(|_| json!({}));
    OutputBlock::ToolUse { id: format!("toolu_{}", crate::random_id()), name: call.name, input }
}

/// `thinking.display: "omitted"` asks for thinking blocks without their text.
fn thinking_shown(thinking: Option<&ThinkingConfig>) -> bool {
    thinking.and_then(|t| t.display.as_deref()) != Some("omitted")
}

/// A thinking block; its text left out when the client asked for it omitted.
pub fn thinking_block(text: String, shown: bool) -> OutputBlock {
    OutputBlock::Thinking { thinking: if shown { text } else { String::new() }, signature: String::new() }
}

/// The reply as content blocks (thinking, text, then tool_use blocks); also whether calls
/// were made.
fn output_blocks(text: &str, format: &ReplyFormat, single: bool, show_thinking: bool) -> (Vec<OutputBlock>, bool) {
    let reply = reply_parts(text, format, single);
    let thinking = reply.reasoning.map(|text| thinking_block(text, show_thinking));
    let mut blocks: Vec<OutputBlock> = thinking.into_iter().chain(reply.content.map(|text| OutputBlock::Text { text })).collect();
    blocks.extend(reply.calls.into_iter().map(tool_use_block));
    let made_calls = blocks.iter().any(|b| matches!(b, OutputBlock::ToolUse { .. }));
    if !blocks.iter().any(|b| matches!(b, OutputBlock::Text { .. } | OutputBlock::ToolUse { .. })) {
        blocks.push(OutputBlock::Text { text: String::new() });
    }
    (blocks, made_calls)
}

/// A Messages request as the shared conversation.
fn conversation(
    system: Option<&TextOrBlocks>,
    messages: &[AnthropicMessage],
    tools: Option<&Vec<AnthropicTool>>,
    choice: Option<&AnthropicToolChoice>,
) -> Result<Conversation, ApiError> {
    let mut out = Vec::with_capacity(messages.len() + 1);
    if let Some(system) = system {
        out.push(ChatMessageIn::text("system", joined_text(system, "system")?));
    }
    for (i, message) in messages.iter().enumerate() {
        convert_message(i, message, &mut out)?;
    }
    let (choice_value, parallel) = openai_tool_choice(choice)?;
    Conversation::new(out, tools.map(|tools| openai_tools(tools)), choice_value.as_ref(), parallel)
}

/// `thinking` and `output_config.effort` as the chat template's switches: `enable_thinking`
/// (Qwen3's) and `reasoning_effort` (gpt-oss's). A template without them ignores them, so on
/// such a model they are accepted and change nothing.
fn template_kwargs(thinking: Option<&ThinkingConfig>, output: Option<&OutputConfig>) -> Vec<(String, Value)> {
    let mut kwargs = Vec::new();
    match thinking.map(|t| t.kind.as_str()) {
        Some("enabled" | "adaptive") => kwargs.push(("enable_thinking".to_string(), Value::Bool(true))),
        Some("disabled") => kwargs.push(("enable_thinking".to_string(), Value::Bool(false))),
        // a newer client's mode: the model's own default rather than a failed request
        Some(other) => tracing::warn!(kind = %other.escape_debug(), "thinking.type is not enabled, adaptive or disabled; using the model's default"),
        None => {}
    }
    match output.and_then(|o| o.effort.as_deref()) {
        Some(level @ ("low" | "medium" | "high")) => kwargs.push(("reasoning_effort".to_string(), Value::String(level.into()))),
        Some("max" | "xhigh") => kwargs.push(("reasoning_effort".to_string(), Value::String("high".into()))),
        Some(other) => tracing::warn!(effort = %other.escape_debug(), "output_config.effort is not low, medium, high or max; using the model's default"),
        None => {}
    }
    if let Some(output) = output {
        crate::warn_unknown_fields(&output.unknown);
    }
    kwargs
}

/// `output_config.format` (`{"type": "json_schema", "schema": ...}`) as Chat Completions'
/// `response_format`, which constrains the answer with the schema's grammar.
fn output_format(output: Option<&OutputConfig>) -> Result<Option<Value>, ApiError> {
    let Some(format) = output.and_then(|o| o.format.as_ref()) else { return Ok(None) };
    match (format.get("type").and_then(Value::as_str), format.get("schema")) {
        (Some("json_schema"), Some(schema)) => {
            Ok(Some(json!({"type": "json_schema", "json_schema": {"name": "output", "schema": schema, "strict": true}})))
        }
        _ => Err(ApiError::bad_request(
            "output_config.format must be {\"type\": \"json_schema\", \"schema\": {...}}",
            Some("output_config.format"),
        )),
    }
}

/// Function tools in OpenAI's shape; Anthropic's server tools (a `type` and no schema) cannot
/// run here and are left out with a warning.
fn openai_tools(tools: &[AnthropicTool]) -> Vec<Value> {
    tools
        .iter()
        .filter_map(|tool| match &tool.input_schema {
            Some(schema) => Some(json!({"type": "function", "function": {
                "name": tool.name, "description": tool.description.clone().unwrap_or_default(), "parameters": schema}})),
            None => {
                tracing::warn!(tool = %tool.name, kind = ?tool.kind, "ignoring a server tool hearth cannot run");
                None
            }
        })
        .collect()
}

fn openai_tool_choice(choice: Option<&AnthropicToolChoice>) -> Result<(Option<Value>, Option<bool>), ApiError> {
    let Some(choice) = choice else { return Ok((None, None)) };
    let value = match (choice.kind.as_str(), &choice.name) {
        ("auto", _) => json!("auto"),
        ("any", _) => json!("required"),
        ("none", _) => json!("none"),
        ("tool", Some(name)) => json!({"type": "function", "function": {"name": name}}),
        ("tool", None) => return Err(ApiError::bad_request("tool_choice of type \"tool\" needs a name", Some("tool_choice"))),
        (other, _) => {
            let text = format!("tool_choice type `{other}` is not one of auto, any, tool, none");
            return Err(ApiError::bad_request(text, Some("tool_choice")));
        }
    };
    Ok((Some(value), choice.disable_parallel_tool_use.map(|d| !d)))
}

/// The text of string content or of text blocks (any other block is refused by name).
fn joined_text(content: &TextOrBlocks, param: &str) -> Result<String, ApiError> {
    match content {
        TextOrBlocks::Text(text) => Ok(text.clone()),
        TextOrBlocks::Blocks(blocks) => {
            let mut texts = Vec::new();
            for (j, block) in blocks.iter().enumerate() {
                match block {
                    ContentBlock::Text { text } => texts.push(text.as_str()),
                    other => return Err(unsupported_block(other, &format!("{param}[{j}]"))),
                }
            }
            Ok(texts.join("\n"))
        }
    }
}

fn unsupported_block(block: &ContentBlock, param: &str) -> ApiError {
    let kind = match block {
        ContentBlock::Other(value) => value.get("type").and_then(Value::as_str).unwrap_or("unknown").to_string(),
        ContentBlock::Text { .. } => "text".into(),
        ContentBlock::ToolUse { .. } => "tool_use".into(),
        ContentBlock::ToolResult { .. } => "tool_result".into(),
        ContentBlock::Thinking { .. } => "thinking".into(),
        ContentBlock::RedactedThinking { .. } => "redacted_thinking".into(),
    };
    ApiError::bad_request(format!("Content blocks of type `{kind}` are not supported here"), Some(param))
}

/// One Anthropic message as chat messages: user text, tool results as `tool` messages, and
/// assistant text with its tool_use blocks as calls.
fn convert_message(index: usize, message: &AnthropicMessage, out: &mut Vec<ChatMessageIn>) -> Result<(), ApiError> {
    let param = format!("messages[{index}].content");
    let blocks = match &message.content {
        TextOrBlocks::Text(text) => vec![ContentBlock::Text { text: text.clone() }],
        TextOrBlocks::Blocks(blocks) => blocks.clone(),
    };
    match message.role.as_str() {
        "user" => {
            let mut texts = Vec::new();
            for (j, block) in blocks.iter().enumerate() {
                match block {
                    ContentBlock::Text { text } => texts.push(text.clone()),
                    ContentBlock::ToolResult { tool_use_id, content, .. } => {
                        let text = match content {
                            Some(content) => joined_text(content, &format!("{param}[{j}].content"))?,
                            None => String::new(),
                        };
                        let mut tool = ChatMessageIn::text("tool", text);
                        tool.tool_call_id = Some(tool_use_id.clone());
                        out.push(tool);
                    }
                    other => return Err(unsupported_block(other, &format!("{param}[{j}]"))),
                }
            }
            if !texts.is_empty() {
                out.push(ChatMessageIn::text("user", texts.join("\n")));
            }
        }
        "assistant" => {
            let mut texts = Vec::new();
            let mut calls = Vec::new();
            let mut reasoning: Option<String> = None;
            for (j, block) in blocks.iter().enumerate() {
                match block {
                    ContentBlock::Text { text } => texts.push(text.clone()),
                    ContentBlock::ToolUse { id, name, input } => calls.push(json!({"id": id, "type": "function",
                        "function": {"name": name, "arguments": input.to_string()}})),
                    // the turn's reasoning goes to the template, which shows it where the model
                    // expects it (Qwen3's: within the current tool loop) and drops it elsewhere
                    ContentBlock::Thinking { thinking, .. } => reasoning.get_or_insert_with(String::new).push_str(thinking),
                    ContentBlock::RedactedThinking { .. } => {}
                    other => return Err(unsupported_block(other, &format!("{param}[{j}]"))),
                }
            }
            let content = (!texts.is_empty()).then(|| MessageContent::Text(texts.join("\n")));
            let tool_calls = (!calls.is_empty()).then_some(calls);
            let reasoning_content = reasoning.filter(|r| !r.is_empty());
            out.push(ChatMessageIn { role: "assistant".into(), content, name: None, tool_calls, tool_call_id: None, reasoning_content });
        }
        // Claude Code sends its environment notes as a system message inside `messages`
        "system" => out.push(ChatMessageIn::text("system", joined_text(&message.content, &param)?)),
        other => {
            let text = format!("Unknown role `{other}`: Anthropic messages are from user, assistant or system");
            return Err(ApiError::bad_request(text, Some(&format!("messages[{index}].role"))));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(json: Value) -> MessagesRequest {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn claude_code_shapes_convert() {
        // as Claude Code 2.1 sends them: system blocks, a system message inside `messages`,
        // thinking blocks sent back, a `custom` tool, thinking and effort settings
        let request = request(json!({"model": "m", "max_tokens": 32000,
            "system": [{"type": "text", "text": "You are an agent."}, {"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}]},
                {"role": "assistant", "content": [{"type": "thinking", "thinking": "hmm", "signature": "s"}, {"type": "redacted_thinking", "data": "x"},
                    {"type": "text", "text": "Hello."}]},
                {"role": "user", "content": "Write a file."},
                {"role": "system", "content": "Working directory: /tmp"}],
            "tools": [{"type": "custom", "name": "Bash", "input_schema": {"type": "object"}}],
            "thinking": {"type": "adaptive", "display": "omitted"}, "output_config": {"effort": "max"},
            "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]}, "metadata": {"user_id": "u"}}));
        assert!(request.unknown.is_empty(), "every field Claude Code sends is known: {:?}", request.unknown);
        let converted = conversation(request.system.as_ref(), &request.messages, request.tools.as_ref(), None).unwrap();
        let roles: Vec<&str> = converted.messages.iter().map(|m| m.role.as_str()).collect();
        assert_eq!(roles, ["system", "user", "assistant", "user", "system"], "the system message stays where it was sent");
        assert_eq!(converted.messages[0].content, Some(MessageContent::Text("You are an agent.\nBe brief.".into())));
        assert_eq!(converted.messages[2].content, Some(MessageContent::Text("Hello.".into())), "thinking is not replayed");
        assert_eq!(converted.tools.callable_names(), ["Bash"]);
        let kwargs = template_kwargs(request.thinking.as_ref(), request.output_config.as_ref());
        assert_eq!(kwargs, [("enable_thinking".to_string(), json!(true)), ("reasoning_effort".to_string(), json!("high"))]);
        let off: ThinkingConfig = serde_json::from_value(json!({"type": "disabled"})).unwrap();
        assert_eq!(template_kwargs(Some(&off), None), [("enable_thinking".to_string(), json!(false))]);
        let future: ThinkingConfig = serde_json::from_value(json!({"type": "something_new"})).unwrap();
        assert!(template_kwargs(Some(&future), None).is_empty(), "an unknown mode is the model's default, not a 400");
    }

    #[test]
    fn output_format_becomes_a_json_schema_response_format() {
        let output: OutputConfig = serde_json::from_value(json!({"format": {"type": "json_schema", "schema": {"type": "object"}}})).unwrap();
        let format = output_format(Some(&output)).unwrap().unwrap();
        assert_eq!(format["json_schema"]["schema"], json!({"type": "object"}));
        let bad: OutputConfig = serde_json::from_value(json!({"format": {"type": "xml"}})).unwrap();
        assert_eq!(output_format(Some(&bad)).unwrap_err().body.error.param.as_deref(), Some("output_config.format"));
        assert_eq!(output_format(None).unwrap(), None);
    }
}
