//! `POST /v1/chat/completions`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use hearth_engine::{FinishReason, TokenEvent};
use hearth_protocol::{
    ChatChoice, ChatChunkChoice, ChatCompletionChunk, ChatCompletionRequest, ChatCompletionResponse, ChatDelta,
    ChatMessageIn, ChatMessageOut, MessageContent, Usage,
};
use hearth_tokenizer::{ChatInputs, Tokenizer};
use serde::Serialize;

use crate::access_log::RequestLog;
use crate::body::parse_body;
use crate::error::ApiError;
use crate::generation;
use crate::params::{self, MAX_TOP_LOGPROBS};
use crate::state::{AppState, ServedModel};
use crate::stream::{sse_response, ChunkShape};
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
    check_unsupported(&request)?;
    let prompt = render_chat(&model, &request.messages, request.tools.as_ref(), true)?;
    let logprobs = match (request.logprobs.unwrap_or(false), request.top_logprobs) {
        (_, Some(n)) if n > MAX_TOP_LOGPROBS => {
            return Err(ApiError::bad_request(format!("top_logprobs must be at most {MAX_TOP_LOGPROBS}"), Some("top_logprobs")))
        }
        (false, Some(_)) => return Err(ApiError::bad_request("top_logprobs requires logprobs: true", Some("top_logprobs"))),
        (true, n) => Some(n.unwrap_or(0) as usize),
        (false, None) => None,
    };
    let max_tokens = request.max_completion_tokens.or(request.max_tokens);
    let plan = params::plan(request.sampling, max_tokens, logprobs, &model.defaults)?;
    let guard = state.admit(&model, plan.n)?;
    let submitted = generation::submit(&model, vec![prompt], &plan, guard, "messages")?;
    let shape = ChatShape {
        id: format!("chatcmpl-{}", crate::random_id()),
        created: unix_now(),
        model: model_name,
        tokenizer: model.tokenizer().clone(),
        logprobs: logprobs.is_some(),
        include_usage: plan.include_usage,
    };
    if plan.stream {
        return Ok(sse_response(submitted, shape, plan.include_usage, log));
    }
    let (results, usage) = generation::collect(submitted, &log).await?;
    let choices = results
        .iter()
        .enumerate()
        .map(|(index, r)| ChatChoice {
            index: index as u32,
            message: ChatMessageOut { role: "assistant".into(), content: Some(r.text.clone()) },
            logprobs: shape.logprobs.then(|| logprobs::chat(&shape.tokenizer, &r.tokens)),
            finish_reason: r.finish_reason().map(str::to_string),
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

/// Parameters hearth cannot honour are refused rather than ignored.
fn check_unsupported(request: &ChatCompletionRequest) -> Result<(), ApiError> {
    if let Some(format) = &request.response_format {
        if format.get("type").and_then(|t| t.as_str()) != Some("text") {
            return Err(ApiError::bad_request(
                "response_format other than {\"type\": \"text\"} is not supported yet",
                Some("response_format"),
            ));
        }
    }
    if let Some(choice) = &request.tool_choice {
        if !matches!(choice.as_str(), Some("none") | Some("auto")) {
            return Err(ApiError::bad_request(
                "tool_choice must be \"auto\" or \"none\": forcing a tool call is not supported yet",
                Some("tool_choice"),
            ));
        }
    }
    Ok(())
}

/// A message as chat templates expect it: content as one string.
#[derive(Serialize)]
struct TemplateMessage<'a> {
    role: &'a str,
    content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<&'a Vec<serde_json::Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_call_id: Option<&'a str>,
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
        None if role == "assistant" => None,
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
        tool_calls: message.tool_calls.as_ref(),
        tool_call_id: message.tool_call_id.as_deref(),
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

/// Renders the chat template and tokenizes the prompt.
pub fn render_chat(
    model: &ServedModel,
    messages: &[ChatMessageIn],
    tools: Option<&Vec<serde_json::Value>>,
    add_generation_prompt: bool,
) -> Result<Vec<u32>, ApiError> {
    if messages.is_empty() {
        return Err(ApiError::bad_request("messages must not be empty", Some("messages")));
    }
    let converted = messages.iter().enumerate().map(|(i, m)| template_message(i, m)).collect::<Result<Vec<_>, _>>()?;
    let template = model
        .template
        .as_ref()
        .ok_or_else(|| ApiError::bad_request("The model has no chat template; pass --chat-template to the server", None))?;
    let inputs = ChatInputs { messages: &converted, tools, add_generation_prompt };
    let text = template.render(&inputs).map_err(|e| ApiError::bad_request(e.to_string(), Some("messages")))?;
    model.tokenizer().encode(&text).map_err(|e| ApiError::internal(e.to_string()))
}

/// Chat chunk shapes for one request.
struct ChatShape {
    id: String,
    created: u64,
    model: String,
    tokenizer: Arc<Tokenizer>,
    logprobs: bool,
    include_usage: bool,
}

impl ChatShape {
    fn chunk(&self, choices: Vec<ChatChunkChoice>, usage: Option<Usage>) -> String {
        let chunk = ChatCompletionChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk".into(),
            created: self.created,
            model: self.model.clone(),
            choices,
            usage: self.include_usage.then_some(usage),
        };
        serde_json::to_string(&chunk).unwrap_or_default()
    }
}

impl ChunkShape for ChatShape {
    fn opening(&self, index: u32) -> Option<String> {
        let delta = ChatDelta { role: Some("assistant".into()), content: Some(String::new()) };
        Some(self.chunk(vec![ChatChunkChoice { index, delta, logprobs: None, finish_reason: None }], None))
    }

    fn token(&self, index: u32, event: &TokenEvent) -> Option<String> {
        if event.text.is_empty() && !self.logprobs && event.finish.is_none() {
            return None;
        }
        let choice = ChatChunkChoice {
            index,
            delta: ChatDelta { role: None, content: Some(event.text.clone()) },
            logprobs: self.logprobs.then(|| logprobs::chat(&self.tokenizer, std::slice::from_ref(&event.sampled))),
            finish_reason: event.finish.map(|r| r.as_str().to_string()),
        };
        Some(self.chunk(vec![choice], None))
    }

    fn closing(&self, index: u32, reason: FinishReason) -> String {
        let choice = ChatChunkChoice {
            index,
            delta: ChatDelta::default(),
            logprobs: None,
            finish_reason: Some(reason.as_str().to_string()),
        };
        self.chunk(vec![choice], None)
    }

    fn usage(&self, usage: Usage) -> String {
        self.chunk(Vec::new(), Some(usage))
    }
}
