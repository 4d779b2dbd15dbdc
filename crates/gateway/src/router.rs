//! The attempt loop: try each candidate backend in order until one starts answering; back off
//! between attempts; feed the circuit breakers; switch to the context-window fallback when a
//! backend says the prompt is too long. Nothing is retried once the client got a byte.

use std::time::{Duration, Instant};

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::config::ModelMapping;
use crate::plan::{candidates, Candidate, RequestView};
use crate::relay::{complete_response, read_complete, stream_response, RelayContext, ATTEMPTS_HEADER};
use crate::upstream::{Endpoint, Failure};
use crate::usage::UsageSink;
use crate::Gateway;

/// Pause before attempt `n` (the second attempt is n = 1): 25 ms doubling, at most 400 ms.
fn backoff(n: usize) -> Duration {
    Duration::from_millis(25u64 << (n - 1).min(4))
}

pub fn error_response(status: StatusCode, message: &str, kind: &str, code: Option<&str>) -> Response {
    let body = json!({"error": {"message": message, "type": kind, "param": null, "code": code}});
    (status, axum::Json(body)).into_response()
}

/// What the loop ends with.
enum Outcome {
    Done(Response),
    /// Every candidate failed; the last reason.
    Exhausted(String),
    /// A backend said the prompt is too long.
    Overflow { status: u16, body: String },
}

/// How a cache-aware or session choice shows in the answer.
pub const ROUTE_HEADER: &str = "x-hearth-route";

/// Routes one request for `mapping` (already resolved from the public name); `session` is
/// the session key `session` balancing uses, when the client gave one.
pub async fn route(gw: &Gateway, endpoint: Endpoint, body: Value, mapping: &ModelMapping, session: Option<String>, usage: UsageSink) -> Response {
    let mut mapping = mapping;
    let mut attempts = 0;
    let view = RequestView { body: &body, session };
    loop {
        let plan = candidates(gw, mapping, &view);
        match attempt_all(gw, endpoint, &body, &mapping.name, plan, &mut attempts, &usage).await {
            Outcome::Done(response) => return response,
            Outcome::Overflow { status, body } => match mapping.context_window_fallback.as_deref().and_then(|n| gw.config.model(n)) {
                Some(next) if next.name != mapping.name => {
                    tracing::info!(from = %mapping.name, to = %next.name, "context window fallback");
                    mapping = next;
                }
                _ => return passthrough(status, body, attempts),
            },
            Outcome::Exhausted(reason) => {
                gw.metrics.failed(&mapping.name);
                let message = format!("All backends for `{}` failed after {attempts} attempt(s); last error: {reason}", mapping.name);
                let mut response = error_response(StatusCode::SERVICE_UNAVAILABLE, &message, "server_error", Some("backends_unavailable"));
                response.headers_mut().insert(ATTEMPTS_HEADER, HeaderValue::from(attempts));
                return response;
            }
        }
    }
}

async fn attempt_all(
    gw: &Gateway,
    endpoint: Endpoint,
    body: &Value,
    public: &str,
    plan: Vec<Candidate>,
    attempts: &mut usize,
    usage: &UsageSink,
) -> Outcome {
    let stream = body["stream"] == true;
    let include_usage = body["stream_options"]["include_usage"] == true;
    let mut last = "no backend is configured".to_string();
    for candidate in plan {
        if *attempts >= gw.config.providers.max_attempts {
            break;
        }
        let backend = candidate.backend.clone();
        if !backend.breaker.lock().map(|mut b| b.try_acquire(Instant::now())).unwrap_or(false) {
            last = format!("{}: circuit open", backend.name());
            continue;
        }
        if *attempts > 0 {
            tokio::time::sleep(backoff(*attempts)).await;
        }
        *attempts += 1;
        if let Some(chain) = &candidate.chain {
            // recorded before the answer, so that the same prefix arriving meanwhile follows it
            gw.prefixes.insert(chain, candidate.backend_index);
        }
        let slot = backend.acquire();
        let upstream_body = upstream_request(body, &candidate.upstream_model, stream && !endpoint.is_typed_events());
        let ctx = RelayContext {
            endpoint,
            public_model: public.to_string(),
            backend: backend.name().to_string(),
            kind: backend.provider.kind,
            attempts: *attempts,
            include_usage,
            usage: usage.clone(),
        };
        let asked = Instant::now();
        let result = match backend.start(endpoint, &upstream_body, stream).await {
            Ok(started) if stream => Ok(stream_response(started, ctx, slot)),
            Ok(started) => read_complete(started, &ctx).await.map(|v| complete_response(v, &ctx)).map_err(Failure::Retryable),
            Err(failure) => Err(failure),
        };
        let mut breaker = backend.breaker.lock().expect("breaker lock");
        match result {
            Ok(mut response) => {
                breaker.on_success();
                if let Some(choice) = candidate.choice {
                    gw.metrics.routed(backend.name(), choice.reason.as_str());
                    if let Ok(value) = HeaderValue::from_str(&choice.to_string()) {
                        response.headers_mut().insert(ROUTE_HEADER, value);
                    }
                }
                gw.metrics.served(public, backend.name(), *attempts);
                gw.metrics.answered(backend.name(), asked.elapsed().as_secs_f64());
                return Outcome::Done(response);
            }
            Err(Failure::Retryable(reason)) => {
                breaker.on_failure(Instant::now());
                gw.metrics.backend_failed(backend.name());
                tracing::warn!(backend = backend.name(), attempt = *attempts, "attempt failed: {reason}");
                last = format!("{}: {reason}", backend.name());
            }
            Err(Failure::Unsupported(reason)) => {
                breaker.release_probe();
                tracing::info!(backend = backend.name(), "{reason}; trying the next route");
                last = format!("{}: {reason}", backend.name());
            }
            Err(Failure::ContextOverflow { status, body }) => {
                breaker.release_probe();
                return Outcome::Overflow { status, body };
            }
            Err(Failure::Client { status, body }) => {
                breaker.release_probe();
                return Outcome::Done(passthrough(status, body, *attempts));
            }
        }
    }
    Outcome::Exhausted(last)
}

/// The request as the backend gets it: its own model name, and (for a Chat Completions
/// stream, `ask_usage`) a usage chunk asked for so that usage can be recorded (the relay hides
/// it from clients that did not ask).
fn upstream_request(body: &Value, upstream_model: &str, ask_usage: bool) -> Value {
    let mut upstream = body.clone();
    upstream["model"] = json!(upstream_model);
    if ask_usage {
        upstream["stream_options"]["include_usage"] = json!(true);
    }
    upstream
}

/// A backend's error answer, passed to the client (as an OpenAI error object when it is not one).
fn passthrough(status: u16, body: String, attempts: usize) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    let is_openai_error = serde_json::from_str::<Value>(&body).is_ok_and(|v| v["error"]["message"].is_string());
    let mut response = if is_openai_error {
        (status, [(axum::http::header::CONTENT_TYPE, "application/json")], body).into_response()
    } else {
        let message = if body.is_empty() { format!("backend answered HTTP {}", status.as_u16()) } else { body };
        error_response(status, &message, "invalid_request_error", None)
    };
    response.headers_mut().insert(ATTEMPTS_HEADER, HeaderValue::from(attempts));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff(1), Duration::from_millis(25));
        assert_eq!(backoff(2), Duration::from_millis(50));
        assert_eq!(backoff(9), Duration::from_millis(400));
    }

    #[test]
    fn upstream_requests_carry_the_upstream_name_and_ask_for_usage() {
        let body = json!({"model": "public", "stream": true, "messages": []});
        let up = upstream_request(&body, "qwen", true);
        assert_eq!(up["model"], "qwen");
        assert_eq!(up["stream_options"]["include_usage"], true);
    }
}
