//! Relays a started backend answer to the client under the public model name: complete
//! answers rewritten in one piece; streams passed through event by event (OpenAI SSE with the
//! model field rewritten, Ollama NDJSON translated), with errors after the first byte sent as
//! an error event and `[DONE]`; Responses and Messages streams relayed as typed events.

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use hearth_protocol::sse::EventSplitter;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::config::ProviderKind;
use crate::ollama::StreamTranslator;
use crate::typed_events::{error_event, relay_event};
use crate::upstream::{Endpoint, Outstanding, Started};
use crate::usage::UsageSink;

/// What the relay needs to know about the request.
pub struct RelayContext {
    pub endpoint: Endpoint,
    pub public_model: String,
    pub backend: String,
    pub kind: ProviderKind,
    pub attempts: usize,
    /// The client asked for a usage chunk.
    pub include_usage: bool,
    pub usage: UsageSink,
}

pub const BACKEND_HEADER: &str = "x-hearth-backend";
pub const ATTEMPTS_HEADER: &str = "x-hearth-attempts";

impl RelayContext {
    fn headers(&self, response: &mut Response) {
        if let Ok(v) = HeaderValue::from_str(&self.backend) {
            response.headers_mut().insert(BACKEND_HEADER, v);
        }
        response.headers_mut().insert(ATTEMPTS_HEADER, HeaderValue::from(self.attempts));
    }
}

/// Reads a complete answer; Err means the body was broken (still retryable: nothing was sent).
pub async fn read_complete(started: Started, ctx: &RelayContext) -> Result<Value, String> {
    let mut bytes = started.first.to_vec();
    let mut rest = started.rest;
    while let Some(piece) = rest.next().await {
        bytes.extend_from_slice(&piece?);
    }
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| format!("the backend's answer is not JSON: {e}"))?;
    Ok(match ctx.kind {
        ProviderKind::Ollama if !ctx.endpoint.is_typed_events() => {
            crate::ollama::response(ctx.endpoint, &value, &crate::new_id(ctx.endpoint), crate::unix_now(), &ctx.public_model)
        }
        _ => {
            let mut value = value;
            value["model"] = json!(ctx.public_model);
            value
        }
    })
}

pub fn complete_response(value: Value, ctx: &RelayContext) -> Response {
    ctx.usage.record(&ctx.public_model, &ctx.backend, &value["usage"]);
    let mut response = (StatusCode::OK, axum::Json(value)).into_response();
    ctx.headers(&mut response);
    response
}

/// Streams the answer to the client as SSE.
pub fn stream_response(started: Started, ctx: RelayContext, slot: Outstanding) -> Response {
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let mut response = (
        [(header::CONTENT_TYPE, "text/event-stream"), (header::CACHE_CONTROL, "no-cache")],
        Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|b| (Ok::<_, std::convert::Infallible>(b), rx))
        })),
    )
        .into_response();
    ctx.headers(&mut response);
    tokio::spawn(async move {
        let _slot = slot;
        pump(started, ctx, tx).await;
    });
    response
}

fn sse(data: &str) -> Bytes {
    Bytes::from(format!("data: {data}\n\n"))
}

async fn pump(started: Started, ctx: RelayContext, tx: mpsc::Sender<Bytes>) {
    if ctx.endpoint.is_typed_events() {
        return pump_typed(started, ctx, tx).await;
    }
    let mut events = if ctx.kind == ProviderKind::Ollama { EventSplitter::ndjson() } else { EventSplitter::sse() };
    let mut translator = StreamTranslator::new(ctx.endpoint, crate::new_id(ctx.endpoint), crate::unix_now(), ctx.public_model.clone(), ctx.include_usage);
    let mut usage = Value::Null;
    let mut body = futures_util::stream::iter([Ok(started.first)]).chain(started.rest);
    // the last event has been relayed (`[DONE]`, or Ollama's `done` line)
    let mut finished = false;
    while let Some(piece) = body.next().await {
        let piece = match piece {
            Ok(p) => p,
            Err(e) => return fail(&tx, &e).await,
        };
        for event in events.push(&piece) {
            let out = match ctx.kind {
                ProviderKind::Ollama => translator.on_line(&event),
                _ => rewrite_openai_event(&event, &ctx, &mut usage).map(|payload| payload.into_iter().collect()),
            };
            let out = match out {
                Ok(payloads) => payloads,
                Err(e) => return fail(&tx, &e).await,
            };
            for payload in out {
                if tx.send(sse(&payload)).await.is_err() {
                    return; // the client went away; dropping the body closes the backend stream
                }
                finished |= payload == "[DONE]";
            }
            if ctx.kind == ProviderKind::Ollama && translator.usage.is_some() {
                usage = translator.usage.clone().unwrap_or(Value::Null);
                let _ = tx.send(sse("[DONE]")).await;
                finished = true;
            }
            if finished {
                break;
            }
        }
        if finished {
            break;
        }
    }
    if !finished {
        let last = if ctx.kind == ProviderKind::Ollama { "its `done` line" } else { "`[DONE]`" };
        return fail(&tx, &format!("the backend's stream ended before {last}")).await;
    }
    ctx.usage.record(&ctx.public_model, &ctx.backend, &usage);
    drop(tx); // the client's answer is complete
    drain(body).await;
}

/// Reads the rest of a backend body (nothing after the last event, normally), so that its
/// connection goes back to the pool.
async fn drain(mut body: impl futures_util::Stream<Item = Result<Bytes, String>> + Unpin) {
    while let Some(Ok(_)) = body.next().await {}
}

/// Relays a Responses or Messages stream event by event (no `[DONE]` in these protocols).
async fn pump_typed(started: Started, ctx: RelayContext, tx: mpsc::Sender<Bytes>) {
    let mut events = EventSplitter::sse();
    let mut usage = Value::Null;
    let mut body = futures_util::stream::iter([Ok(started.first)]).chain(started.rest);
    let mut finished = false;
    let broken = |message: &str| {
        tracing::warn!("backend stream failed after the first byte: {message}");
        Bytes::from(error_event(ctx.endpoint, message))
    };
    while let Some(piece) = body.next().await {
        let piece = match piece {
            Ok(p) => p,
            Err(e) => {
                let _ = tx.send(broken(&e)).await;
                return;
            }
        };
        for event in events.push(&piece) {
            let relayed = match relay_event(&event, &ctx.public_model, &mut usage) {
                Ok(relayed) => relayed,
                Err(e) => {
                    let _ = tx.send(broken(&e)).await;
                    return;
                }
            };
            if tx.send(Bytes::from(relayed.frame)).await.is_err() {
                return;
            }
            if relayed.last {
                finished = true;
                break;
            }
        }
        if finished {
            break;
        }
    }
    if !finished {
        let _ = tx.send(broken("the backend's stream ended before its last event")).await;
        return;
    }
    ctx.usage.record(&ctx.public_model, &ctx.backend, &usage);
    drop(tx); // the client's answer is complete
    drain(body).await;
}

/// One OpenAI SSE payload with the public model name; the usage chunk is kept for the
/// records and dropped (None) when the client did not ask for it. Err: the event is not JSON.
pub fn rewrite_openai_event(data: &str, ctx: &RelayContext, usage: &mut Value) -> Result<Option<String>, String> {
    if data == "[DONE]" {
        return Ok(Some(data.to_string()));
    }
    let mut chunk = serde_json::from_str::<Value>(data).map_err(|_| not_json(data))?;
    if chunk["usage"].is_object() {
        *usage = chunk["usage"].clone();
        let only_usage = chunk["choices"].as_array().is_some_and(|c| c.is_empty());
        if !ctx.include_usage && only_usage {
            return Ok(None);
        }
    }
    if !ctx.include_usage {
        if let Some(map) = chunk.as_object_mut() {
            map.remove("usage");
        }
    }
    if chunk.get("model").is_some() {
        chunk["model"] = json!(ctx.public_model);
    }
    Ok(Some(chunk.to_string()))
}

/// The error for a backend event that is not JSON, quoting its start.
pub fn not_json(data: &str) -> String {
    let start: String = data.chars().take(120).collect();
    let cut = if start.len() < data.len() { "…" } else { "" };
    format!("the backend sent an event that is not JSON: {start:?}{cut}")
}

async fn fail(tx: &mpsc::Sender<Bytes>, message: &str) {
    tracing::warn!("backend stream failed after the first byte: {message}");
    let error = json!({"error": {"message": message, "type": "server_error", "param": null, "code": "backend_stream_broken"}});
    let _ = tx.send(sse(&error.to_string())).await;
    let _ = tx.send(sse("[DONE]")).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_the_model_and_hides_unasked_usage() {
        let ctx = RelayContext {
            endpoint: Endpoint::Chat,
            public_model: "public".into(),
            backend: "b".into(),
            kind: ProviderKind::Openai,
            attempts: 1,
            include_usage: false,
            usage: UsageSink::none(),
        };
        let mut usage = Value::Null;
        let out = rewrite_openai_event(r#"{"model":"upstream","choices":[{"delta":{"content":"hi"}}],"usage":null}"#, &ctx, &mut usage).unwrap().unwrap();
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["model"], "public");
        assert!(v.get("usage").is_none());
        assert_eq!(v["choices"][0]["delta"]["content"], "hi");
        let hidden = rewrite_openai_event(r#"{"model":"u","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}"#, &ctx, &mut usage).unwrap();
        assert!(hidden.is_none());
        let corrupt = rewrite_openai_event(&"<html>".repeat(40), &ctx, &mut usage).unwrap_err();
        assert!(corrupt.contains("not JSON") && corrupt.ends_with('…') && corrupt.len() < 200, "{corrupt}");
        assert_eq!(usage["total_tokens"], 3);
    }
}
