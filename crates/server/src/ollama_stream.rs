//! Ollama's NDJSON answers: one JSON object per line while the reply grows (`done: false`),
//! then a last one with `done: true`, the done reason and the counts and durations Ollama
//! reports. A thinking model's reasoning goes out as `thinking`; with tools, calls are parsed
//! out of the text and sent as `tool_calls` once whole.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use hearth_engine::{EngineEvent, FinishReason, Finished};
use hearth_tools::{ReplyEvent, ReplyFormat, ReplyReader, ToolCall};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::access_log::RequestLog;
use crate::generation::{usage, ChoiceEvent, Submitted};
use crate::stream::channel_body;

/// Which endpoint the lines are for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `/api/chat`: `message: {role, content, tool_calls}`.
    Chat,
    /// `/api/generate`: `response`.
    Generate,
}

/// What one answer line carries besides `model`, `created_at` and `done`.
pub fn piece(shape: Shape, text: &str, calls: &[ToolCall]) -> Value {
    match shape {
        Shape::Generate => json!({"response": text}),
        Shape::Chat if calls.is_empty() => json!({"message": {"role": "assistant", "content": text}}),
        Shape::Chat => json!({"message": {"role": "assistant", "content": text, "tool_calls": ollama_calls(calls)}}),
    }
}

/// `value` (a piece) with the reasoning `thinking` beside its text.
pub fn with_thinking(shape: Shape, mut value: Value, thinking: String) -> Value {
    let holder = match shape {
        Shape::Chat => value.get_mut("message"),
        Shape::Generate => Some(&mut value),
    };
    if let Some(Value::Object(o)) = holder {
        o.insert("thinking".into(), Value::String(thinking));
    }
    value
}

/// Calls in Ollama's shape: arguments as an object.
pub fn ollama_calls(calls: &[ToolCall]) -> Vec<Value> {
    calls
        .iter()
        .map(|c| {
            let arguments: Value = serde_json::from_str(&c.arguments).unwrap_or_else(|_| json!({}));
            json!({"function": {"name": c.name, "arguments": arguments}})
        })
        .collect()
}

/// The fields of the last line: done reason, token counts and nanosecond durations.
pub fn done_fields(finished: &Finished, started: Instant, first_token: Option<Instant>, made_calls: bool) -> Value {
    let now = Instant::now();
    let first = first_token.unwrap_or(now);
    let nanos = |d: std::time::Duration| d.as_nanos() as u64;
    let reason = match (finished.reason, made_calls) {
        (FinishReason::Length, _) => "length",
        _ => "stop",
    };
    json!({"done": true, "done_reason": reason, "total_duration": nanos(now - started), "load_duration": 0,
        "prompt_eval_count": finished.prompt_tokens, "prompt_eval_duration": nanos(first - started),
        "eval_count": finished.completion_tokens, "eval_duration": nanos(now - first)})
}

/// One answer line.
pub fn line(model: &str, mut fields: Value) -> Value {
    if let Value::Object(o) = &mut fields {
        o.insert("model".into(), json!(model));
        o.insert("created_at".into(), json!(crate::rfc3339_now()));
        o.entry("done").or_insert(json!(false));
    }
    fields
}

pub fn ndjson_response(submitted: Submitted, shape: Shape, model: String, format: &ReplyFormat, log: Arc<RequestLog>) -> Response {
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    tokio::spawn(drive(submitted, shape, model, ReplyReader::new(format), tx, log));
    ([(header::CONTENT_TYPE, "application/x-ndjson")], channel_body(rx)).into_response()
}

async fn send(tx: &mpsc::Sender<Bytes>, value: Value) -> bool {
    tx.send(Bytes::from(format!("{value}\n"))).await.is_ok()
}

async fn drive(
    submitted: Submitted,
    shape: Shape,
    model: String,
    mut reader: ReplyReader,
    tx: mpsc::Sender<Bytes>,
    log: Arc<RequestLog>,
) {
    let started = Instant::now();
    let (mut first_token, mut made_calls) = (None, false);
    let mut events = submitted.events();
    while let Some(ChoiceEvent { event, .. }) = events.next().await {
        let (text, finished) = match event {
            EngineEvent::Token(token) => {
                first_token.get_or_insert_with(Instant::now);
                (token.text, None)
            }
            EngineEvent::Finished(f) if f.reason == FinishReason::Abort => {
                let _ = send(&tx, json!({"error": crate::generation::cancelled().body.error.message})).await;
                return;
            }
            EngineEvent::Finished(f) => (String::new(), Some(f)),
            EngineEvent::Error(message) => {
                tracing::error!(id = %log.id, "request failed mid-stream: {message}");
                let _ = send(&tx, json!({"error": message})).await;
                return;
            }
        };
        for event in reader.push_piece(&text, finished.is_some()) {
            let fields = match event {
                ReplyEvent::Reasoning(text) => with_thinking(shape, piece(shape, "", &[]), text),
                ReplyEvent::Content(text) if text.is_empty() => continue,
                ReplyEvent::Content(text) => piece(shape, &text, &[]),
                ReplyEvent::Call(call) => {
                    made_calls = true;
                    piece(shape, "", &[call])
                }
            };
            if !send(&tx, line(&model, fields)).await {
                log.mark_disconnected();
                return;
            }
        }
        if let Some(f) = finished {
            log.record_usage(&usage(&[Some(&f)], 1));
            let mut last = piece(shape, "", &[]);
            if let (Value::Object(o), Value::Object(done)) = (&mut last, done_fields(&f, started, first_token, made_calls)) {
                o.extend(done);
            }
            let _ = send(&tx, line(&model, last)).await;
            return;
        }
    }
}
