//! `POST /v1/responses` (OpenAI's Responses API) and `GET`/`DELETE /v1/responses/{id}`,
//! `POST /v1/responses/{id}/cancel`: the request through the shared conversation pipeline,
//! the reply as output items (a message, function calls), `store` and `previous_response_id`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use hearth_engine::{FinishReason, Finished};
use hearth_protocol::responses::{
    IncompleteDetails, InputItem, InputTokensDetails, OutputItem, ReasoningText, OutputText, OutputTokensDetails, ResponseObject, ResponsesRequest,
    ResponsesUsage,
};
use hearth_protocol::SamplingFields;
use hearth_tools::{ReplyFormat, ToolCall};
use serde_json::{json, Map, Value};

use crate::access_log::RequestLog;
use crate::body::parse_body;
use crate::conversation::{reply_parts, Ask, Started};
use crate::error::ApiError;
use crate::responses_input::{conversation, input_items, namespaces, response_format, split_namespace};
use crate::responses_store::StoredResponse;
use crate::state::AppState;
use crate::{generation, random_id, unix_now, warn_unknown_fields};

pub async fn create(
    State(state): State<Arc<AppState>>,
    Extension(log): Extension<Arc<RequestLog>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let request: ResponsesRequest = parse_body(body, state.config.max_body_bytes)?;
    let model_name = state.resolve_model_name(request.model.as_deref())?;
    let model = state.ready_model()?;
    warn_unknown_fields(&request.unknown);
    if request.background == Some(true) {
        let text = "background responses are not supported: hearth answers while the request is open (use stream: true for long ones)";
        return Err(ApiError::bad_request(text, Some("background")));
    }
    let mut history = match &request.previous_response_id {
        Some(id) => continued_history(&state, id)?,
        None => Vec::new(),
    };
    history.extend(input_items(request.input.clone()));
    let conversation = conversation(
        request.instructions.as_deref(),
        &history,
        request.tools.as_ref(),
        request.tool_choice.as_ref(),
        request.parallel_tool_calls,
    )?
    .with_template_kwargs(reasoning_effort(request.reasoning.as_ref()));
    let format = response_format(request.text.as_ref())?;
    let fields = SamplingFields { temperature: request.temperature, top_p: request.top_p, ..Default::default() };
    let ask = Ask { fields, max_tokens: request.max_output_tokens, logprobs: None, format: format.as_ref() };
    let Started { submitted, reply, single_call, .. } = conversation.start(&state, &model, ask)?;
    let draft = Draft { id: format!("resp_{}", random_id()), created_at: unix_now(), model: model_name, request, history };
    if draft.request.stream == Some(true) {
        return Ok(crate::responses_stream::sse_response(submitted, draft, reply, single_call, state, log));
    }
    let (results, _) = generation::collect(submitted, &log).await?;
    let result = results.into_iter().next().unwrap_or_default();
    let finished = result.finish.ok_or_else(|| ApiError::internal("the request ended without finishing"))?;
    let output = output_items(&result.text, &reply, single_call, finished.reason, &draft.namespaces());
    Ok(Json(draft.finish(&state, output, &finished)).into_response())
}

/// The conversation a `previous_response_id` continues: its inputs, then its outputs.
fn continued_history(state: &AppState, id: &str) -> Result<Vec<InputItem>, ApiError> {
    let stored = state.responses.get(id).map_err(|e| ApiError::internal(e.to_string()))?.ok_or_else(|| {
        let text = format!("Previous response with id '{id}' not found (responses are kept only when created with store: true, and only the most recent ones)");
        ApiError::bad_request(text, Some("previous_response_id"))
    })?;
    let mut history = stored.history;
    history.extend(stored.response.output.iter().map(OutputItem::as_input));
    Ok(history)
}

pub async fn get(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Result<Json<ResponseObject>, ApiError> {
    Ok(Json(stored(&state, &id)?.response))
}

pub async fn delete(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    match state.responses.delete(&id) {
        Ok(true) => Ok(Json(json!({"id": id, "object": "response", "deleted": true}))),
        Ok(false) => Err(not_found(&id)),
        Err(e) => Err(ApiError::internal(e.to_string())),
    }
}

/// Only background responses can be cancelled, and hearth runs none: a stored response has
/// already finished.
pub async fn cancel(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let stored = stored(&state, &id)?;
    let text = format!("Response '{id}' is {}: only background responses can be cancelled, and hearth runs none", stored.response.status);
    Err(ApiError::bad_request(text, None))
}

fn stored(state: &AppState, id: &str) -> Result<StoredResponse, ApiError> {
    state.responses.get(id).map_err(|e| ApiError::internal(e.to_string()))?.ok_or_else(|| not_found(id))
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("No response with id '{id}' is stored (responses are kept only when created with store: true, and only the most recent ones)"))
}

/// A response being made: what its object echoes from the request, and its conversation.
pub struct Draft {
    pub id: String,
    pub created_at: u64,
    model: String,
    request: ResponsesRequest,
    /// The conversation items this response answers (earlier turns first).
    history: Vec<InputItem>,
}

impl Draft {
    /// The response object as it stands.
    pub fn object(&self, status: &str, output: Vec<OutputItem>, usage: Option<ResponsesUsage>) -> ResponseObject {
        let request = &self.request;
        ResponseObject {
            id: self.id.clone(),
            object: "response".into(),
            created_at: self.created_at,
            status: status.into(),
            completed_at: (status != "in_progress").then(unix_now),
            error: None,
            incomplete_details: None,
            instructions: request.instructions.clone(),
            max_output_tokens: request.max_output_tokens,
            model: self.model.clone(),
            output,
            parallel_tool_calls: request.parallel_tool_calls.unwrap_or(true),
            previous_response_id: request.previous_response_id.clone(),
            reasoning: request.reasoning.clone().unwrap_or_else(|| json!({"effort": null, "summary": null})),
            store: self.stores(),
            temperature: request.temperature,
            text: request.text.as_ref().and_then(|t| serde_json::to_value(t).ok()).unwrap_or_else(|| json!({"format": {"type": "text"}})),
            tool_choice: request.tool_choice.clone().unwrap_or_else(|| json!("auto")),
            tools: request.tools.clone().unwrap_or_default(),
            top_p: request.top_p,
            truncation: request.truncation.clone().unwrap_or_else(|| "disabled".into()),
            usage,
            user: request.user.clone(),
            metadata: request.metadata.clone().unwrap_or_else(Map::new),
        }
    }

    /// The names of the request's namespace tools.
    pub fn namespaces(&self) -> Vec<String> {
        namespaces(self.request.tools.as_ref())
    }

    fn stores(&self) -> bool {
        self.request.store.unwrap_or(true)
    }

    /// The finished response; kept in the store when the request asked for that.
    pub fn finish(self, state: &AppState, output: Vec<OutputItem>, finished: &Finished) -> ResponseObject {
        let usage = ResponsesUsage {
            input_tokens: finished.prompt_tokens as u64,
            input_tokens_details: InputTokensDetails { cached_tokens: finished.cached_tokens as u64 },
            output_tokens: finished.completion_tokens as u64,
            output_tokens_details: OutputTokensDetails { reasoning_tokens: 0 },
            total_tokens: (finished.prompt_tokens + finished.completion_tokens) as u64,
        };
        let incomplete = finished.reason == FinishReason::Length;
        let mut response = self.object(if incomplete { "incomplete" } else { "completed" }, output, Some(usage));
        if incomplete {
            response.incomplete_details = Some(IncompleteDetails { reason: "max_output_tokens".into() });
        }
        if self.stores() {
            let stored = StoredResponse { response: response.clone(), history: self.history };
            if let Err(error) = state.responses.put(&stored) {
                tracing::error!(id = %response.id, "cannot store the response: {error}");
            }
        }
        response
    }
}

/// The status of an output item once the reply has ended.
pub fn item_status(reason: FinishReason) -> &'static str {
    if reason == FinishReason::Length {
        "incomplete"
    } else {
        "completed"
    }
}

/// A message item holding `text`.
pub fn message_item(id: String, text: String, status: &str) -> OutputItem {
    OutputItem::Message { id, status: status.into(), role: "assistant".into(), content: vec![OutputText::new(text)] }
}

/// A function call item for a parsed call (a namespaced function's name split back).
pub fn call_item(call: ToolCall, status: &str, namespaces: &[String]) -> OutputItem {
    let (namespace, name) = split_namespace(&call.name, namespaces);
    OutputItem::FunctionCall {
        id: format!("fc_{}", random_id()),
        call_id: format!("call_{}", random_id()),
        name,
        arguments: call.arguments,
        status: status.into(),
        namespace,
    }
}

/// A reasoning item holding `text`.
pub fn reasoning_item(id: String, text: String) -> OutputItem {
    OutputItem::Reasoning { id, summary: Vec::new(), content: vec![ReasoningText::new(text)] }
}

/// The reply as output items: its reasoning, its text as one message (also when empty and
/// nothing was called), then its calls (the first alone when `single`).
fn output_items(text: &str, format: &ReplyFormat, single: bool, reason: FinishReason, namespaces: &[String]) -> Vec<OutputItem> {
    let status = item_status(reason);
    let reply = reply_parts(text, format, single);
    let mut output: Vec<OutputItem> = reply.reasoning.map(|text| reasoning_item(format!("rs_{}", random_id()), text)).into_iter().collect();
    match reply.content {
        Some(content) => output.push(message_item(format!("msg_{}", random_id()), content, status)),
        None if reply.calls.is_empty() => output.push(message_item(format!("msg_{}", random_id()), String::new(), status)),
        None => {}
    }
    output.extend(reply.calls.into_iter().map(|call| call_item(call, status, namespaces)));
    output
}

/// `reasoning.effort` as the chat template's `reasoning_effort` (a template without it ignores it).
fn reasoning_effort(reasoning: Option<&serde_json::Value>) -> Option<(String, serde_json::Value)> {
    let effort = reasoning?.get("effort")?.as_str()?;
    Some(("reasoning_effort".to_string(), serde_json::Value::String(effort.to_string())))
}
