//! Anthropic's streaming events for `/v1/messages`: message_start, a ping, content blocks
//! (thinking deltas with an empty signature, text deltas; each call a complete tool_use block
//! with its input as one input_json_delta),
//! message_delta with the stop reason and usage, message_stop; `event: error` on failure.

use std::sync::Arc;

use axum::body::Bytes;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use hearth_engine::{EngineEvent, FinishReason};
use hearth_protocol::anthropic::{AnthropicError, MessagesResponse, OutputBlock};
use hearth_tools::{ReplyEvent, ReplyFormat, ReplyReader};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::access_log::RequestLog;
use crate::generation::{usage, ChoiceEvent, Submitted};
use crate::messages::{stop_reason, tool_use_block};
use crate::stream::channel_body;

/// Events wait here when the client reads slowly.
const EVENT_BUFFER: usize = 64;

pub fn sse_response(
    submitted: Submitted,
    opening: MessagesResponse,
    format: ReplyFormat,
    single: bool,
    show_thinking: bool,
    log: Arc<RequestLog>,
) -> Response {
    let (tx, rx) = mpsc::channel::<Bytes>(EVENT_BUFFER);
    let reader = ReplyReader::new(&format);
    let writer = EventWriter { tx, reader, single, show_thinking, calls: 0, open_block: None, next_index: 0 };
    tokio::spawn(writer.drive(submitted, opening, log));
    ([(header::CONTENT_TYPE, "text/event-stream"), (header::CACHE_CONTROL, "no-cache")], channel_body(rx)).into_response()
}

/// The client went away.
struct Gone;

/// A block that deltas are still being written to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum OpenBlock {
    Thinking(usize),
    Text(usize),
}

/// Writes one message's events, tracking its content blocks.
struct EventWriter {
    tx: mpsc::Sender<Bytes>,
    reader: ReplyReader,
    single: bool,
    /// Thinking text is sent (not `display: "omitted"`).
    show_thinking: bool,
    calls: usize,
    open_block: Option<OpenBlock>,
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
                    self.close_block().await?;
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
        self.reader.push_piece(text, finished)
    }

    async fn write(&mut self, events: Vec<ReplyEvent>) -> Result<(), Gone> {
        for event in events {
            match event {
                ReplyEvent::Reasoning(text) => self.thinking_delta(&text).await?,
                ReplyEvent::Content(text) => self.text_delta(&text).await?,
                ReplyEvent::Call(_) if self.single && self.calls == 1 => {
                    tracing::warn!("dropping a second call: parallel tool use is disabled");
                }
                ReplyEvent::Call(call) => {
                    self.close_block().await?;
                    self.calls += 1;
                    self.tool_use(tool_use_block(call)).await?;
                }
            }
        }
        Ok(())
    }

    /// The index of the open block of this kind, opening it (and closing another) first.
    async fn block(&mut self, thinking: bool) -> Result<usize, Gone> {
        match self.open_block {
            Some(OpenBlock::Thinking(index)) if thinking => return Ok(index),
            Some(OpenBlock::Text(index)) if !thinking => return Ok(index),
            _ => self.close_block().await?,
        }
        let index = self.next_index;
        self.next_index += 1;
        let (open, block) = match thinking {
            true => (OpenBlock::Thinking(index), json!({"type": "thinking", "thinking": "", "signature": ""})),
            false => (OpenBlock::Text(index), json!({"type": "text", "text": ""})),
        };
        self.open_block = Some(open);
        self.send("content_block_start", json!({"type": "content_block_start", "index": index, "content_block": block})).await?;
        Ok(index)
    }

    async fn thinking_delta(&mut self, text: &str) -> Result<(), Gone> {
        let index = self.block(true).await?;
        if !self.show_thinking {
            return Ok(());
        }
        let delta = json!({"type": "content_block_delta", "index": index, "delta": {"type": "thinking_delta", "thinking": text}});
        self.send("content_block_delta", delta).await
    }

    async fn text_delta(&mut self, text: &str) -> Result<(), Gone> {
        let index = self.block(false).await?;
        let delta = json!({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": text}});
        self.send("content_block_delta", delta).await
    }

    /// Closes the open block; a thinking block gets its (empty) signature first.
    async fn close_block(&mut self) -> Result<(), Gone> {
        let index = match self.open_block.take() {
            Some(OpenBlock::Thinking(index)) => {
                let delta = json!({"type": "content_block_delta", "index": index, "delta": {"type": "signature_delta", "signature": ""}});
                self.send("content_block_delta", delta).await?;
                index
            }
            Some(OpenBlock::Text(index)) => index,
            None => return Ok(()),
        };
        self.send("content_block_stop", json!({"type": "content_block_stop", "index": index})).await
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
