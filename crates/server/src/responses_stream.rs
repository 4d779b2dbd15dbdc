//! The Responses API's typed SSE events: response.created and .in_progress; per output item
//! (reasoning, message, call) output_item.added, its content part (reasoning_text or
//! output_text) or call arguments with deltas and .done events,
//! output_item.done; then response.completed (or .incomplete, .failed), all numbered by
//! `sequence_number`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use hearth_engine::{EngineEvent, FinishReason};
use hearth_protocol::responses::{OutputItem, OutputText, ReasoningText, ResponseErrorInfo};
use hearth_tools::{ReplyEvent, ReplyFormat, ReplyReader, ToolCall};
use serde_json::{json, Map, Value};
use tokio::sync::mpsc;

use crate::access_log::RequestLog;
use crate::generation::{usage, ChoiceEvent, Submitted};
use crate::responses::{call_item, item_status, message_item, reasoning_item, Draft};
use crate::state::AppState;
use crate::stream::channel_body;

/// Events wait here when the client reads slowly.
const EVENT_BUFFER: usize = 64;

pub fn sse_response(
    submitted: Submitted,
    draft: Draft,
    format: ReplyFormat,
    single_call: bool,
    state: Arc<AppState>,
    log: Arc<RequestLog>,
) -> Response {
    let (tx, rx) = mpsc::channel::<Bytes>(EVENT_BUFFER);
    let reader = ReplyReader::new(&format);
    let writer = EventWriter {
        tx,
        sequence: 0,
        reader,
        single_call,
        namespaces: draft.namespaces(),
        output: Vec::new(),
        reasoning: None,
        message: None,
    };
    tokio::spawn(writer.drive(submitted, draft, state, log));
    ([(header::CONTENT_TYPE, "text/event-stream"), (header::CACHE_CONTROL, "no-cache")], channel_body(rx)).into_response()
}

/// The client went away.
struct Gone;

/// The reasoning or message item being written.
struct OpenMessage {
    id: String,
    output_index: usize,
    text: String,
}

/// Writes one response's events, tracking its output items.
struct EventWriter {
    tx: mpsc::Sender<Bytes>,
    sequence: u64,
    reader: ReplyReader,
    single_call: bool,
    /// The request's namespace tools (calls to their functions name them).
    namespaces: Vec<String>,
    /// The finished output items.
    output: Vec<OutputItem>,
    reasoning: Option<OpenMessage>,
    message: Option<OpenMessage>,
}

impl EventWriter {
    /// One event: `type` and `sequence_number` first, then `fields`.
    async fn send(&mut self, kind: &str, fields: Value) -> Result<(), Gone> {
        let mut data = Map::new();
        data.insert("type".into(), json!(kind));
        data.insert("sequence_number".into(), json!(self.sequence));
        if let Value::Object(fields) = fields {
            data.extend(fields);
        }
        self.sequence += 1;
        let frame = hearth_protocol::sse::typed_frame(kind, &Value::Object(data).to_string());
        self.tx.send(Bytes::from(frame)).await.map_err(|_| Gone)
    }

    async fn drive(mut self, submitted: Submitted, draft: Draft, state: Arc<AppState>, log: Arc<RequestLog>) {
        let outcome = self.run(submitted, draft, &state, &log).await;
        if outcome.is_err() {
            log.mark_disconnected();
        }
    }

    async fn run(&mut self, submitted: Submitted, draft: Draft, state: &AppState, log: &RequestLog) -> Result<(), Gone> {
        let opening = draft.object("in_progress", Vec::new(), None);
        self.send("response.created", json!({"response": opening})).await?;
        self.send("response.in_progress", json!({"response": opening})).await?;
        let mut events = submitted.events();
        while let Some(ChoiceEvent { event, .. }) = events.next().await {
            match event {
                EngineEvent::Token(token) => {
                    let decided = self.decide(&token.text, false);
                    self.write(decided).await?;
                }
                EngineEvent::Finished(f) if f.reason == FinishReason::Abort => {
                    return self.fail(&draft, crate::generation::cancelled().body.error.message).await;
                }
                EngineEvent::Finished(f) => {
                    let decided = self.decide("", true);
                    self.write(decided).await?;
                    self.close_reasoning().await?;
                    if !self.output.iter().any(|item| !matches!(item, OutputItem::Reasoning { .. })) && self.message.is_none() {
                        self.open_message().await?;
                    }
                    self.close_message(item_status(f.reason)).await?;
                    log.record_usage(&usage(&[Some(&f)], 1));
                    let response = draft.finish(state, std::mem::take(&mut self.output), &f);
                    let kind = if response.status == "incomplete" { "response.incomplete" } else { "response.completed" };
                    return self.send(kind, json!({"response": response})).await;
                }
                EngineEvent::Error(message) => return self.fail(&draft, message).await,
            }
        }
        Ok(())
    }

    async fn fail(&mut self, draft: &Draft, message: String) -> Result<(), Gone> {
        tracing::error!(id = %draft.id, "response failed mid-stream: {message}");
        let mut response = draft.object("failed", std::mem::take(&mut self.output), None);
        response.error = Some(ResponseErrorInfo { code: "server_error".into(), message });
        self.send("response.failed", json!({"response": response})).await
    }

    /// What became certain with this text.
    fn decide(&mut self, text: &str, finished: bool) -> Vec<ReplyEvent> {
        self.reader.push_piece(text, finished)
    }

    async fn write(&mut self, events: Vec<ReplyEvent>) -> Result<(), Gone> {
        for event in events {
            match event {
                ReplyEvent::Reasoning(text) => self.reasoning_delta(text).await?,
                ReplyEvent::Content(text) => {
                    self.close_reasoning().await?;
                    self.text_delta(text).await?
                }
                ReplyEvent::Call(call) if self.single_call && self.made_call() => {
                    tracing::warn!(function = %call.name, "dropping a second call: parallel_tool_calls is false");
                }
                ReplyEvent::Call(call) => {
                    self.close_reasoning().await?;
                    self.close_message("completed").await?;
                    self.function_call(call).await?;
                }
            }
        }
        Ok(())
    }

    fn made_call(&self) -> bool {
        self.output.iter().any(|item| matches!(item, OutputItem::FunctionCall { .. }))
    }

    async fn reasoning_delta(&mut self, text: String) -> Result<(), Gone> {
        if self.reasoning.is_none() {
            let open = OpenMessage { id: format!("rs_{}", crate::random_id()), output_index: self.output.len(), text: String::new() };
            let item = OutputItem::Reasoning { id: open.id.clone(), summary: Vec::new(), content: Vec::new() };
            self.send("response.output_item.added", json!({"output_index": open.output_index, "item": item})).await?;
            let part = ReasoningText::new(String::new());
            let added = json!({"item_id": open.id, "output_index": open.output_index, "content_index": 0, "part": part});
            self.send("response.content_part.added", added).await?;
            self.reasoning = Some(open);
        }
        let Some(open) = self.reasoning.as_mut() else { return Ok(()) };
        open.text.push_str(&text);
        let delta = json!({"item_id": open.id, "output_index": open.output_index, "content_index": 0, "delta": text});
        self.send("response.reasoning_text.delta", delta).await
    }

    async fn close_reasoning(&mut self) -> Result<(), Gone> {
        let Some(OpenMessage { id, output_index, text }) = self.reasoning.take() else { return Ok(()) };
        let at = json!({"item_id": id, "output_index": output_index, "content_index": 0});
        let mut done = at.clone();
        done["text"] = json!(text);
        self.send("response.reasoning_text.done", done).await?;
        let mut part_done = at;
        part_done["part"] = json!(ReasoningText::new(text.clone()));
        self.send("response.content_part.done", part_done).await?;
        let item = reasoning_item(id, text);
        self.send("response.output_item.done", json!({"output_index": output_index, "item": item})).await?;
        self.output.push(item);
        Ok(())
    }

    async fn open_message(&mut self) -> Result<(), Gone> {
        let message = OpenMessage { id: format!("msg_{}", crate::random_id()), output_index: self.output.len(), text: String::new() };
        let item = OutputItem::Message { id: message.id.clone(), status: "in_progress".into(), role: "assistant".into(), content: Vec::new() };
        self.send("response.output_item.added", json!({"output_index": message.output_index, "item": item})).await?;
        let part = OutputText::new(String::new());
        let added = json!({"item_id": message.id, "output_index": message.output_index, "content_index": 0, "part": part});
        self.send("response.content_part.added", added).await?;
        self.message = Some(message);
        Ok(())
    }

    async fn text_delta(&mut self, text: String) -> Result<(), Gone> {
        if self.message.is_none() {
            self.open_message().await?;
        }
        let Some(message) = self.message.as_mut() else { return Ok(()) };
        message.text.push_str(&text);
        let delta = json!({"item_id": message.id, "output_index": message.output_index, "content_index": 0, "delta": text, "logprobs": []});
        self.send("response.output_text.delta", delta).await
    }

    async fn close_message(&mut self, status: &str) -> Result<(), Gone> {
        let Some(OpenMessage { id, output_index, text }) = self.message.take() else { return Ok(()) };
        let at = json!({"item_id": id, "output_index": output_index, "content_index": 0});
        let mut done = at.clone();
        done["text"] = json!(text);
        done["logprobs"] = json!([]);
        self.send("response.output_text.done", done).await?;
        let mut part_done = at;
        part_done["part"] = json!(OutputText::new(text.clone()));
        self.send("response.content_part.done", part_done).await?;
        let item = message_item(id, text, status);
        self.send("response.output_item.done", json!({"output_index": output_index, "item": item})).await?;
        self.output.push(item);
        Ok(())
    }

    /// A call is complete when the parser reports it: its arguments go out as one delta.
    async fn function_call(&mut self, call: ToolCall) -> Result<(), Gone> {
        let output_index = self.output.len();
        let item = call_item(call, "completed", &self.namespaces);
        let OutputItem::FunctionCall { id, call_id, name, arguments, namespace, .. } = &item else { return Ok(()) };
        let added = OutputItem::FunctionCall {
            id: id.clone(),
            call_id: call_id.clone(),
            name: name.clone(),
            arguments: String::new(),
            status: "in_progress".into(),
            namespace: namespace.clone(),
        };
        self.send("response.output_item.added", json!({"output_index": output_index, "item": added})).await?;
        let delta = json!({"item_id": id, "output_index": output_index, "delta": arguments});
        self.send("response.function_call_arguments.delta", delta).await?;
        let done = json!({"item_id": id, "output_index": output_index, "name": name, "arguments": arguments});
        self.send("response.function_call_arguments.done", done).await?;
        self.send("response.output_item.done", json!({"output_index": output_index, "item": item})).await?;
        self.output.push(item);
        Ok(())
    }
}
