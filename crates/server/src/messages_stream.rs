//! Anthropic's streaming events for `/v1/messages`: message_start, a ping, content blocks
//! (text deltas; each call a complete tool_use block with its input as one input_json_delta),
//! message_delta with the stop reason and usage, message_stop; `event: error` on failure.

use std::sync::Arc;

use axum::body::Bytes;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use hearth_engine::{EngineEvent, FinishReason};
use hearth_protocol::anthropic::{AnthropicError, MessagesResponse, OutputBlock};
use hearth_tools::{ReplyEvent, ReplyParser};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::access_log::RequestLog;
use crate::generation::{usage, ChoiceEvent, Submitted};
use crate::messages::{stop_reason, tool_use_block};
use crate::stream::{channel_body, reply_events};

/// Events wait here when the client reads slowly.
const EVENT_BUFFER: usize = 64;

pub fn sse_response(submitted: Submitted, opening: MessagesResponse, callable: Vec<String>, single: bool, log: Arc<RequestLog>) -> Response {
    let (tx, rx) = mpsc::channel::<Bytes>(EVENT_BUFFER);
    let writer = EventWriter { tx, parser: (!callable.is_empty()).then(|| ReplyParser::new(callable)), single, calls: 0, open_text: None, next_index: 0 };
    tokio::spawn(writer.drive(submitted, opening, log));
    ([(header::CONTENT_TYPE, "text/event-stream"), (header::CACHE_CONTROL, "no-cache")], channel_body(rx)).into_response()
}

/// The client went away.
struct Gone;

/// Writes one message's events, tracking its content blocks.
struct EventWriter {
    tx: mpsc::Sender<Bytes>,
    parser: Option<ReplyParser>,
    single: bool,
    calls: usize,
    /// The index of the text block being written, if one is open.
    open_text: Option<usize>,
    next_index: usize,
}

impl EventWriter {
    async fn send(&self, event: &str, data: Value) -> Result<(), Gone> {
        let frame = hearth_protocol::sse::typed_frame(event, &data.to_string());
        self.tx.send(Bytes::from(frame)).await.map_err(|_| Gone)
    }

    async fn drive(mut self, submitted: Submitted, opening: MessagesResponse, log: Arc<RequestLog>) {
        let outcome = self.run(submitted, opening, &log).await;
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(message)) => {
                tracing::error!(id = %log.id, "request failed mid-stream: {message}");
                let error = serde_json::to_value(AnthropicError::new("api_error", message)).unwrap_or_default();
                let _ = self.send("error", error).await;
            }
            Err(Gone) => log.mark_disconnected(),
        }
    }

    async fn run(&mut self, submitted: Submitted, opening: MessagesResponse, log: &RequestLog) -> Result<Result<(), String>, Gone> {
        self.send("message_start", json!({"type": "message_start", "message": opening})).await?;
        self.send("ping", json!({"type": "ping"})).await?;
        let mut events = submitted.events();
        while let Some(ChoiceEvent { event, .. }) = events.next().await {
            match event {
                EngineEvent::Token(token) => {
                    let decided = self.decide(&token.text, token.finish.is_some());
                    self.write(decided).await?;
                }
                EngineEvent::Finished(f) if f.reason == FinishReason::Abort => {
                    return Ok(Err(crate::generation::cancelled().body.error.message));
                }
                EngineEvent::Finished(f) => {
                    let decided = self.decide("", true);
                    self.write(decided).await?;
                    self.close_text().await?;
                    let usage = usage(&[Some(&f)], 1);
                    log.record_usage(&usage);
                    let reason = stop_reason(f.reason, self.calls > 0, f.stop_string.is_some());
                    let delta = json!({"type": "message_delta", "delta": {"stop_reason": reason, "stop_sequence": f.stop_string},
                        "usage": {"output_tokens": usage.completion_tokens}});
                    self.send("message_delta", delta).await?;
                    self.send("message_stop", json!({"type": "message_stop"})).await?;
                    return Ok(Ok(()));
                }
                EngineEvent::Error(message) => return Ok(Err(message)),
            }
        }
        Ok(Ok(()))
    }

    /// What became certain with this text.
    fn decide(&mut self, text: &str, finished: bool) -> Vec<ReplyEvent> {
        reply_events(self.parser.as_mut(), text, finished)
    }

    async fn write(&mut self, events: Vec<ReplyEvent>) -> Result<(), Gone> {
        for event in events {
            match event {
                ReplyEvent::Content(text) => self.text_delta(&text).await?,
                ReplyEvent::Call(_) if self.single && self.calls == 1 => {
                    tracing::warn!("dropping a second call: parallel tool use is disabled");
                }
                ReplyEvent::Call(call) => {
                    self.close_text().await?;
                    self.calls += 1;
                    self.tool_use(tool_use_block(call)).await?;
                }
            }
        }
        Ok(())
    }

    async fn text_delta(&mut self, text: &str) -> Result<(), Gone> {
        let index = match self.open_text {
            Some(index) => index,
            None => {
                let index = self.next_index;
                self.next_index += 1;
                self.open_text = Some(index);
                let start = json!({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}});
                self.send("content_block_start", start).await?;
                index
            }
        };
        let delta = json!({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": text}});
        self.send("content_block_delta", delta).await
    }

    async fn close_text(&mut self) -> Result<(), Gone> {
        match self.open_text.take() {
            Some(index) => self.send("content_block_stop", json!({"type": "content_block_stop", "index": index})).await,
            None => Ok(()),
        }
    }

    async fn tool_use(&mut self, block: OutputBlock) -> Result<(), Gone> {
        let OutputBlock::ToolUse { id, name, input } = block else { return Ok(()) };
        let index = self.next_index;
        self.next_index += 1;
        let start = json!({"type": "content_block_start", "index": index,
            "content_block": {"type": "tool_use", "id": id, "name": name, "input": {}}});
        self.send("content_block_start", start).await?;
        let delta = json!({"type": "content_block_delta", "index": index,
            "delta": {"type": "input_json_delta", "partial_json": input.to_string()}});
        self.send("content_block_delta", delta).await?;
        self.send("content_block_stop", json!({"type": "content_block_stop", "index": index})).await
    }
}
