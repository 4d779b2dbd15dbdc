//! Server-sent events for streaming answers: chunks per token, the finish chunk, the optional
//! usage chunk, errors as `data: {"error": ...}`, and `data: [DONE]`.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, StreamExt};
use hearth_engine::{EngineEvent, FinishReason, Finished, TokenEvent};
use hearth_protocol::{ErrorResponse, Usage};
use tokio::sync::mpsc;

use crate::access_log::RequestLog;
use crate::generation::{usage, ChoiceEvent, Submitted};

/// How one endpoint shapes its chunks (as JSON text).
pub trait ChunkShape: Send + Sync + 'static {
    /// Sent for each choice before its tokens (chat: the role); None to send nothing.
    fn opening(&self, index: u32) -> Option<String>;
    /// The chunks for a token; none when it carries nothing worth sending.
    fn token(&mut self, index: u32, event: &TokenEvent) -> Vec<String>;
    /// The finish chunks of a choice whose last token did not carry the reason.
    fn closing(&mut self, index: u32, reason: FinishReason) -> Vec<String>;
    /// The final chunk with no choices and the request's usage.
    fn usage(&self, usage: Usage) -> String;
}

/// Chunks wait here when the client reads slowly; generation runs ahead of it by this much.
const CHUNK_BUFFER: usize = 64;

/// Streams the submitted choices as an SSE response.
pub fn sse_response(submitted: Submitted, shape: impl ChunkShape, include_usage: bool, log: Arc<RequestLog>) -> Response {
    let (tx, rx) = mpsc::channel::<Bytes>(CHUNK_BUFFER);
    tokio::spawn(drive(submitted, shape, include_usage, tx, log));
    (
        [(header::CONTENT_TYPE, "text/event-stream"), (header::CACHE_CONTROL, "no-cache")],
        channel_body(rx),
    )
        .into_response()
}

/// A response body that sends what arrives on `rx` until its sender is dropped.
pub fn channel_body(rx: mpsc::Receiver<Bytes>) -> Body {
    let chunks = stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (Ok::<_, std::convert::Infallible>(b), rx)) });
    Body::from_stream(chunks)
}

fn event(json: &str) -> Bytes {
    Bytes::from(format!("data: {json}\n\n"))
}

/// The client is gone (the body was dropped).
struct Disconnected;

async fn send(tx: &mpsc::Sender<Bytes>, json: &str) -> Result<(), Disconnected> {
    tx.send(event(json)).await.map_err(|_| Disconnected)
}

async fn drive(submitted: Submitted, mut shape: impl ChunkShape, include_usage: bool, tx: mpsc::Sender<Bytes>, log: Arc<RequestLog>) {
    let n = submitted.n;
    match forward_events(submitted, &mut shape, &tx).await {
        Ok(Ok(finished)) => {
            let usage = usage(&finished.iter().map(Option::as_ref).collect::<Vec<_>>(), n);
            log.record_usage(&usage);
            if include_usage && send(&tx, &shape.usage(usage)).await.is_err() {
                return;
            }
        }
        Ok(Err(message)) => {
            tracing::error!(id = %log.id, "request failed mid-stream: {message}");
            let error = ErrorResponse::new(message, "server_error", None, None);
            let _ = send(&tx, &serde_json::to_string(&error).unwrap_or_default()).await;
        }
        Err(Disconnected) => {
            log.mark_disconnected();
            return;
        }
    }
    let _ = tx.send(Bytes::from_static(b"data: [DONE]\n\n")).await;
}

/// Sends every choice's chunks; returns their final events or the first engine error.
async fn forward_events(
    submitted: Submitted,
    shape: &mut impl ChunkShape,
    tx: &mpsc::Sender<Bytes>,
) -> Result<Result<Vec<Option<Finished>>, String>, Disconnected> {
    let count = submitted.num_choices();
    let mut finished: Vec<Option<Finished>> = vec![None; count];
    let mut closed = vec![false; count];
    for index in 0..count as u32 {
        if let Some(chunk) = shape.opening(index) {
            send(tx, &chunk).await?;
        }
    }
    let mut events = submitted.events();
    while let Some(ChoiceEvent { index, event }) = events.next().await {
        let i = index as usize;
        match event {
            EngineEvent::Token(token) => {
                let chunks = shape.token(index, &token);
                for chunk in &chunks {
                    send(tx, chunk).await?;
                }
                closed[i] |= token.finish.is_some() && !chunks.is_empty();
            }
            EngineEvent::Finished(f) if f.reason == FinishReason::Abort => {
                return Ok(Err(crate::generation::cancelled().body.error.message));
            }
            EngineEvent::Finished(f) => {
                if !closed[i] {
                    for chunk in shape.closing(index, f.reason) {
                        send(tx, &chunk).await?;
                    }
                    closed[i] = true;
                }
                finished[i] = Some(f);
            }
            EngineEvent::Error(message) => return Ok(Err(message)),
        }
    }
    Ok(Ok(finished))
}
