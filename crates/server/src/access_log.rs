//! Per-request id, tracing span and access log line (emitted when the response, streamed or
//! not, is complete), plus the API key check.

use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hearth_protocol::Usage;
use subtle::ConstantTimeEq;
use tracing::Instrument;

use crate::error::ApiError;
use crate::state::AppState;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// What the access log line reports; the line is written when the last holder drops it.
pub struct RequestLog {
    pub id: String,
    method: String,
    path: String,
    started: Instant,
    status: AtomicU16,
    prompt_tokens: AtomicU64,
    completion_tokens: AtomicU64,
    disconnected: AtomicBool,
}

impl RequestLog {
    pub fn record_usage(&self, usage: &Usage) {
        self.prompt_tokens.store(usage.prompt_tokens, Ordering::Relaxed);
        self.completion_tokens.store(usage.completion_tokens, Ordering::Relaxed);
    }

    pub fn mark_disconnected(&self) {
        self.disconnected.store(true, Ordering::Relaxed);
    }
}

impl Drop for RequestLog {
    fn drop(&mut self) {
        tracing::info!(
            target: "hearth::access",
            id = %self.id,
            method = %self.method,
            path = %self.path,
            status = self.status.load(Ordering::Relaxed),
            prompt_tokens = self.prompt_tokens.load(Ordering::Relaxed),
            completion_tokens = self.completion_tokens.load(Ordering::Relaxed),
            latency_ms = self.started.elapsed().as_millis() as u64,
            client_disconnected = self.disconnected.load(Ordering::Relaxed),
            "request done"
        );
    }
}

/// A client-sent id if it is short and printable, else a fresh one.
fn request_id(request: &Request) -> String {
    let given = request.headers().get(REQUEST_ID_HEADER).and_then(|v| v.to_str().ok());
    match given {
        Some(id) if !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic()) => id.to_string(),
        _ => crate::random_id(),
    }
}

/// Middleware: span, request id header, access log.
pub async fn observe(mut request: Request, next: Next) -> Response {
    let id = request_id(&request);
    let log = Arc::new(RequestLog {
        id: id.clone(),
        method: request.method().to_string(),
        path: request.uri().path().to_string(),
        started: Instant::now(),
        status: AtomicU16::new(0),
        prompt_tokens: AtomicU64::new(0),
        completion_tokens: AtomicU64::new(0),
        disconnected: AtomicBool::new(false),
    });
    request.extensions_mut().insert(log.clone());
    let span = tracing::info_span!("request", id = %id);
    let mut response = next.run(request).instrument(span).await;
    log.status.store(response.status().as_u16(), Ordering::Relaxed);
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}

/// Middleware: `Authorization: Bearer <key>` or Anthropic's `x-api-key: <key>` when a key is
/// configured (constant-time check); Anthropic's routes answer in Anthropic's error shape.
pub async fn require_api_key(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    if let Some(expected) = &state.config.api_key {
        let headers = request.headers();
        let bearer = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
        let given = bearer.or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok())).unwrap_or("");
        let matches: bool = given.trim().as_bytes().ct_eq(expected.as_bytes()).into();
        if !matches {
            return match request.uri().path().starts_with("/v1/messages") {
                true => crate::messages::anthropic_error(ApiError::unauthorized()),
                false => ApiError::unauthorized().into_response(),
            };
        }
    }
    next.run(request).await
}
