//! Middleware that reads each request body whole, within a deadline and a size limit, before
//! any handler sees it: a client that trickles a body or stops halfway gets 408, not a slot
//! held forever.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hearth_protocol::ErrorResponse;

/// How request bodies are read.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    /// Largest body accepted, in bytes (413 beyond).
    pub max_bytes: usize,
    /// Time from the request head to the body's last byte (408 beyond).
    pub read_timeout: Duration,
}

/// Middleware (`axum::middleware::from_fn_with_state`): buffers the body under `limits`, then
/// passes the request on with the bytes in place of the stream.
pub async fn read_whole_body(State(limits): State<BodyLimits>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let reading = Limited::new(body, limits.max_bytes).collect();
    let bytes = match tokio::time::timeout(limits.read_timeout, reading).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
            let message = format!("The request body is larger than the limit of {} bytes.", limits.max_bytes);
            return refusal(StatusCode::PAYLOAD_TOO_LARGE, message, None);
        }
        Ok(Err(e)) => return refusal(StatusCode::BAD_REQUEST, format!("Cannot read the request body: {e}"), None),
        Err(_) => {
            let message = format!("The request body did not arrive within {:?}.", limits.read_timeout);
            return refusal(StatusCode::REQUEST_TIMEOUT, message, Some("request_timeout"));
        }
    };
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

/// An OpenAI error object; the connection is closed after it, since what is left of the body
/// on the wire cannot be told from the next request.
fn refusal(status: StatusCode, message: String, code: Option<&str>) -> Response {
    let body = ErrorResponse::new(message, "invalid_request_error", None, code);
    let mut response = (status, axum::Json(body)).into_response();
    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}
