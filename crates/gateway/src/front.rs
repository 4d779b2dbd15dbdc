//! The gateway's front: chat, completions, Responses and Messages (routed), the public model list,
//! liveness and readiness, metrics and status, the web pages; virtual-key checks and limits.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{middleware, Json, Router};
use hearth_http::BodyLimits;
use serde_json::{json, Value};

use crate::keys::Refusal;
use crate::router::{error_response, route};
use crate::upstream::Endpoint;
use crate::usage::UsageSink;
use crate::Gateway;

pub fn router(gw: Arc<Gateway>) -> Router {
    let body_limits = BodyLimits { max_bytes: gw.front.max_body_bytes, read_timeout: gw.front.connections.body_read_timeout };
    let pages = if gw.front.ui { hearth_ui::router() } else { Router::new() };
    Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/v1/completions", post(completions))
        .route("/v1/responses", post(responses))
        .route("/v1/messages", post(messages))
        .route("/v1/models", get(models))
        .route("/health", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/health/readiness", get(readiness))
        .route("/metrics", get(metrics))
        .route("/status", get(crate::status::status))
        .merge(pages)
        .fallback(|| async { error_response(StatusCode::NOT_FOUND, "Unknown endpoint.", "invalid_request_error", None) })
        .layer(DefaultBodyLimit::max(body_limits.max_bytes))
        .layer(middleware::from_fn_with_state(body_limits, hearth_http::read_whole_body))
        .with_state(gw)
}

async fn chat(State(gw): State<Arc<Gateway>>, headers: HeaderMap, body: Bytes) -> Response {
    handle(&gw, Endpoint::Chat, &headers, &body).await
}

async fn completions(State(gw): State<Arc<Gateway>>, headers: HeaderMap, body: Bytes) -> Response {
    handle(&gw, Endpoint::Completions, &headers, &body).await
}

async fn responses(State(gw): State<Arc<Gateway>>, headers: HeaderMap, body: Bytes) -> Response {
    handle(&gw, Endpoint::Responses, &headers, &body).await
}

/// Anthropic's Messages API: routed like chat; errors in Anthropic's shape.
async fn messages(State(gw): State<Arc<Gateway>>, headers: HeaderMap, body: Bytes) -> Response {
    anthropic_shaped(handle(&gw, Endpoint::Messages, &headers, &body).await).await
}

/// An OpenAI error answer rewritten as `{"type": "error", "error": {"type", "message"}}`
/// (successful answers and errors already in that shape pass unchanged).
async fn anthropic_shaped(response: Response) -> Response {
    if response.status().is_success() {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
    let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if value["type"] == "error" || !value["error"]["message"].is_string() {
        return Response::from_parts(parts, axum::body::Body::from(bytes));
    }
    let kind = hearth_protocol::anthropic::AnthropicError::kind_for_status(parts.status.as_u16());
    let shaped = json!({"type": "error", "error": {"type": kind, "message": value["error"]["message"]}});
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(shaped.to_string()))
}

async fn handle(gw: &Gateway, endpoint: Endpoint, headers: &HeaderMap, body: &[u8]) -> Response {
    let usage = match authorize(gw, headers).await {
        Ok(usage) => usage,
        Err(response) => return response,
    };
    let request: Value = match serde_json::from_slice(body) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => return bad_request("The request body must be a JSON object."),
        Err(e) => return bad_request(&format!("The request body is not valid JSON: {e}")),
    };
    let Some(name) = request["model"].as_str() else { return bad_request("`model` is required.") };
    let Some(mapping) = gw.config.model(name) else {
        let message = format!("The model `{name}` does not exist.");
        return error_response(StatusCode::NOT_FOUND, &message, "invalid_request_error", Some("model_not_found"));
    };
    let session = session_key(headers, &mapping.affinity.session_header, &request);
    route(gw, endpoint, request, mapping, session, usage).await
}

/// The session a request belongs to: the configured header, else the body's `user` (OpenAI)
/// or `metadata.user_id` (Anthropic).
fn session_key(headers: &HeaderMap, header_name: &str, request: &Value) -> Option<String> {
    let from_header = headers.get(header_name).and_then(|v| v.to_str().ok()).filter(|v| !v.is_empty());
    let from_body = request["user"].as_str().or_else(|| request["metadata"]["user_id"].as_str()).filter(|v| !v.is_empty());
    from_header.or(from_body).map(str::to_string)
}

fn bad_request(message: &str) -> Response {
    error_response(StatusCode::BAD_REQUEST, message, "invalid_request_error", None)
}

/// Checks the virtual key (when keys exist) and its limits; returns where usage goes.
async fn authorize(gw: &Gateway, headers: &HeaderMap) -> Result<UsageSink, Response> {
    let store = match &gw.keys {
        Some(store) if store.has_keys().await => store,
        _ => return Ok(UsageSink::new(gw.usage_tx.clone(), None)),
    };
    // `Authorization: Bearer` as OpenAI clients send it, `x-api-key` as Anthropic's do
    let bearer = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    let given = bearer.or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok())).unwrap_or("");
    let Some((hash, limits)) = store.lookup(given.trim()).await else {
        return Err(error_response(StatusCode::UNAUTHORIZED, "Invalid or missing API key.", "invalid_request_error", Some("invalid_api_key")));
    };
    match limits.admit(Instant::now()) {
        Ok(()) => Ok(UsageSink::new(gw.usage_tx.clone(), Some((hash, limits)))),
        Err(Refusal::RateLimited(m)) => {
            let mut r = error_response(StatusCode::TOO_MANY_REQUESTS, &m, "rate_limit_error", Some("rate_limit_exceeded"));
            r.headers_mut().insert(header::RETRY_AFTER, axum::http::HeaderValue::from(60));
            Err(r)
        }
        Err(Refusal::BudgetExceeded(m)) => Err(error_response(StatusCode::TOO_MANY_REQUESTS, &m, "insufficient_quota", Some("insufficient_quota"))),
    }
}

async fn models(State(gw): State<Arc<Gateway>>) -> Json<Value> {
    let data: Vec<Value> = gw
        .config
        .mappings
        .models
        .iter()
        .map(|m| json!({"id": m.name, "object": "model", "created": gw.started_at, "owned_by": "hearth-gateway"}))
        .collect();
    Json(json!({"object": "list", "data": data}))
}

/// 200 when every model has at least one backend that is up with its breaker not open.
async fn readiness(State(gw): State<Arc<Gateway>>) -> Response {
    let now = Instant::now();
    let mut unready = Vec::new();
    for m in &gw.config.mappings.models {
        let ok = m.routes.iter().any(|r| gw.backends.iter().any(|b| b.name() == r.provider && b.is_available(now)));
        if !ok {
            unready.push(m.name.clone());
        }
    }
    let status = if unready.is_empty() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(json!({"status": if unready.is_empty() { "ready" } else { "unready" }, "models_without_backend": unready}))).into_response()
}

async fn metrics(State(gw): State<Arc<Gateway>>) -> Response {
    let mut text = gw.metrics.render(&gw.backends);
    text.push_str(&gw.connections.render_prometheus("hearth_gateway"));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}
