//! `POST /v1/chat/completions`: messages through the chat template, tools and structured
//! outputs planned, and the reply returned with its calls parsed out.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use hearth_protocol::{ChatChoice, ChatCompletionRequest, ChatCompletionResponse, ChatMessageIn, ChatMessageOut, MessageContent};
use hearth_tokenizer::ChatInputs;
use hearth_tools::ReplyFormat;
use serde::Serialize;
use serde_json::Value;

use crate::access_log::RequestLog;
use crate::body::parse_body;
use crate::chat_stream::{finish_reason, CallCounter, ChatShape};
use crate::conversation::{Ask, Conversation, Started};
use crate::error::ApiError;
use crate::generation;
use crate::params::MAX_TOP_LOGPROBS;
use crate::state::{AppState, ServedModel};
use crate::stream::sse_response;
use crate::tool_plan::template_tool_calls;
use crate::{logprobs, unix_now, warn_unknown_fields};

pub async fn chat_completions(
    State(state): State<Arc<AppState>>,
    Extension(log): Extension<Arc<RequestLog>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let request: ChatCompletionRequest = parse_body(body, state.config.max_body_bytes)?;
    let model_name = state.resolve_model_name(request.model.as_deref())?;
    let model = state.ready_model()?;
    warn_unknown_fields(&request.unknown);
    let logprobs = match (request.logprobs.unwrap_or(false), request.top_logprobs) {
        (_, Some(n)) if n > MAX_TOP_LOGPROBS => {
            return Err(ApiError::bad_request(format!("top_logprobs must be at most {MAX_TOP_LOGPROBS}"), Some("top_logprobs")))
        }
        (false, Some(_)) => return Err(ApiError::bad_request("top_logprobs requires logprobs: true", Some("top_logprobs"))),
        (true, n) => Some(n.unwrap_or(0) as usize),
        (false, None) => None,
    };
    let effort = request.reasoning_effort.map(|effort| ("reasoning_effort".to_string(), Value::String(effort)));
    let conversation = Conversation::new(request.messages, request.tools, request.tool_choice.as_ref(), request.parallel_tool_calls)?
        .with_template_kwargs(request.chat_template_kwargs.unwrap_or_default().into_iter().chain(effort));
    let ask = Ask {
        fields: request.sampling,
        max_tokens: request.max_completion_tokens.or(request.max_tokens),
        logprobs,
        format: request.response_format.as_ref(),
    };
    let Started { submitted, plan, reply, single_call, .. } = conversation.start(&state, &model, ask)?;
    let shape = ChatShape::new(
        format!("chatcmpl-{}", crate::random_id()),
        unix_now(),
        model_name,
        model.tokenizer().clone(),
        logprobs.is_some(),
        plan.include_usage,
    );
    if plan.stream {
        let shape = shape.read_replies(submitted.num_choices(), &reply, single_call);
        return Ok(sse_response(submitted, shape, plan.include_usage, log));
    }
    let (results, usage) = generation::collect(submitted, &log).await?;
    let choices = results
        .iter()
        .enumerate()
        .map(|(index, r)| {
            let (message, made_calls) = assistant_message(&r.text, &reply, single_call);
            ChatChoice {
                index: index as u32,
                message,
                logprobs: shape.logprobs.then(|| logprobs::chat(&shape.tokenizer, &r.tokens)),
                finish_reason: r.finish.as_ref().map(|f| finish_reason(f.reason, made_calls)),
            }
        })
        .collect();
    let response = ChatCompletionResponse {
        id: shape.id,
        object: "chat.completion".into(),
        created: shape.created,
        model: shape.model,
        choices,
        usage,
        system_fingerprint: None,
    };
    Ok(Json(response).into_response())
}

/// The reply as a message: reasoning apart, calls parsed out as `format` says. Also says
/// whether calls were made.
fn assistant_message(text: &str, format: &ReplyFormat, single: bool) -> (ChatMessageOut, bool) {
    let reply = hearth_tools::read_reply(text, format);
    let mut counter = CallCounter::new(single);
    let tool_calls: Vec<_> = reply.calls.into_iter().filter_map(|c| counter.accept(c).map(|(_, wire)| wire)).collect();
    let made_calls = counter.made_calls();
    // a reply that is all calls has no content (null), as OpenAI sends it; plain text stays text
    let content = match (reply.content, made_calls) {
        (None, false) => Some(String::new()),
        (content, _) => content,
    };
    (ChatMessageOut { role: "assistant".into(), reasoning_content: reply.reasoning, content, tool_calls }, made_calls)
}

/// A message as chat templates expect it: content as one string.
#[derive(Serialize)]
struct TemplateMessage<'a> {
    role: &'a str,
    content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<Vec<serde_json::Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_call_id: Option<&'a str>,
    /// An earlier assistant turn's reasoning (Qwen3's template shows the latest turn's).
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<&'a str>,
}

fn template_message(index: usize, message: &ChatMessageIn) -> Result<TemplateMessage<'_>, ApiError> {
    let role = match message.role.as_str() {
        "system" | "developer" => "system",
        "user" => "user",
        "assistant" => "assistant",
        "tool" => "tool",
        other => {
            let param = format!("messages[{index}].role");
            let text = format!("Unknown role `{other}`: expected system, developer, user, assistant or tool");
            return Err(ApiError::bad_request(text, Some(&param)));
        }
    };
    let content = match &message.content {
        // templates concatenate content; an assistant turn holding only calls renders as empty text
        None if role == "assistant" => Some(String::new()),
        None => {
            let param = format!("messages[{index}].content");
            return Err(ApiError::bad_request(format!("A {role} message needs content"), Some(&param)));
        }
        Some(MessageContent::Text(text)) => Some(text.clone()),
        Some(MessageContent::Parts(parts)) => Some(join_text_parts(index, parts)?),
    };
    Ok(TemplateMessage {
        role,
        content,
        name: message.name.as_deref(),
        tool_calls: message.tool_calls.as_ref().map(|calls| template_tool_calls(index, calls)).transpose()?,
        tool_call_id: message.tool_call_id.as_deref(),
        reasoning_content: message.reasoning_content.as_deref().filter(|_| role == "assistant"),
    })
}

fn join_text_parts(index: usize, parts: &[hearth_protocol::ContentPart]) -> Result<String, ApiError> {
    let mut texts = Vec::with_capacity(parts.len());
    for (j, part) in parts.iter().enumerate() {
        match (part.kind.as_str(), &part.text) {
            ("text", Some(text)) => texts.push(text.as_str()),
            (kind, _) => {
                let param = format!("messages[{index}].content[{j}]");
                let text = format!("Content parts of type `{kind}` are not supported: this model reads text only");
                return Err(ApiError::bad_request(text, Some(&param)));
            }
        }
    }
    Ok(texts.join("\n"))
}

/// Renders the chat template and tokenizes the prompt. `kwargs` are extra template variables
/// (`enable_thinking`, `reasoning_effort`...). System messages after the first turn (Claude
/// Code sends its environment notes so) are rendered where they stand; a template that refuses
/// them there gets them merged into the leading system prompt instead.
pub fn render_chat(
    model: &ServedModel,
    messages: &[ChatMessageIn],
    tools: Option<&Vec<serde_json::Value>>,
    add_generation_prompt: bool,
    kwargs: &serde_json::Map<String, serde_json::Value>,
) -> Result<Vec<u32>, ApiError> {
    if messages.is_empty() {
        return Err(ApiError::bad_request("messages must not be empty", Some("messages")));
    }
    let template = model
        .template
        .as_ref()
        .ok_or_else(|| ApiError::bad_request("The model has no chat template; pass --chat-template to the server", None))?;
    let render = |converted: Vec<TemplateMessage<'_>>| {
        let inputs = ChatInputs { messages: &converted, tools, add_generation_prompt };
        template.render_with(&inputs, kwargs).map_err(|e| ApiError::bad_request(e.to_string(), Some("messages")))
    };
    // the messages are checked first, so that only the template's own refusal falls back
    let text = match render(template_messages(messages)?) {
        Err(error) if has_late_system_message(messages) => {
            static WARNED: std::sync::Once = std::sync::Once::new();
            WARNED.call_once(|| {
                tracing::warn!("the chat template refuses system messages after the first turn ({}): merging them into the leading system prompt", error.body.error.message);
            });
            let merged = merge_system_messages(messages);
            render(template_messages(&merged)?)?
        }
        rendered => rendered?,
    };
    model.tokenizer().encode(&text).map_err(|e| ApiError::internal(e.to_string()))
}

fn template_messages(messages: &[ChatMessageIn]) -> Result<Vec<TemplateMessage<'_>>, ApiError> {
    messages.iter().enumerate().map(|(i, m)| template_message(i, m)).collect()
}

fn is_system(message: &ChatMessageIn) -> bool {
    matches!(message.role.as_str(), "system" | "developer")
}

fn has_late_system_message(messages: &[ChatMessageIn]) -> bool {
    messages.iter().skip(1).any(is_system)
}

/// The messages with every system (or developer) message's text joined, in order, into one
/// leading system message.
fn merge_system_messages(messages: &[ChatMessageIn]) -> Vec<ChatMessageIn> {
    let texts: Vec<String> = messages
        .iter()
        .filter(|m| is_system(m))
        .map(|m| match &m.content {
            Some(MessageContent::Text(text)) => text.clone(),
            Some(MessageContent::Parts(parts)) => parts.iter().filter_map(|p| p.text.clone()).collect::<Vec<_>>().join("\n"),
            None => String::new(),
        })
        .collect();
    std::iter::once(ChatMessageIn::text("system", texts.join("\n\n"))).chain(messages.iter().filter(|m| !is_system(m)).cloned()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_messages_merge_into_one_leading_prompt_in_order() {
        let messages = vec![
            ChatMessageIn::text("system", "Be terse."),
            ChatMessageIn::text("user", "hi"),
            ChatMessageIn::text("system", "The date is today."),
        ];
        assert!(has_late_system_message(&messages));
        let merged = merge_system_messages(&messages);
        assert_eq!(merged, vec![ChatMessageIn::text("system", "Be terse.\n\nThe date is today."), ChatMessageIn::text("user", "hi")]);
        assert!(!has_late_system_message(&merged));
        let late_only = merge_system_messages(&messages[1..]);
        assert_eq!(late_only[0], ChatMessageIn::text("system", "The date is today."));
    }
}
