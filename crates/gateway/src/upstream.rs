//! One backend and one attempt at it: the HTTP call with connect, first-byte and total
//! timeouts, the verdict (success, retryable failure, client error, context overflow), and
//! the backend's live state (circuit breaker, health, outstanding requests).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use serde_json::Value;

use crate::breaker::CircuitBreaker;
use crate::config::{BreakerSettings, Provider, ProviderKind};
use crate::load::{LoadReports, ReportedLoad};
use crate::ollama;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Chat,
    Completions,
    /// OpenAI's Responses API.
    Responses,
    /// Anthropic's Messages API.
    Messages,
}

impl Endpoint {
    pub fn object(self, chunk: bool) -> &'static str {
        match (self, chunk) {
            (Endpoint::Chat, false) => "chat.completion",
            (Endpoint::Chat, true) => "chat.completion.chunk",
            (Endpoint::Completions, _) => "text_completion",
            (Endpoint::Responses, _) => "response",
            (Endpoint::Messages, _) => "message",
        }
    }

    /// The typed-event protocols (Responses, Messages): relayed as they are, with the model
    /// renamed; every backend kind serves them on its OpenAI-compatible `/v1` paths.
    pub fn is_typed_events(self) -> bool {
        matches!(self, Endpoint::Responses | Endpoint::Messages)
    }

    /// The path under an OpenAI-compatible base URL (which ends in `/v1`).
    pub fn openai_path(self) -> &'static str {
        match self {
            Endpoint::Chat => "/chat/completions",
            Endpoint::Completions => "/completions",
            Endpoint::Responses => "/responses",
            Endpoint::Messages => "/messages",
        }
    }

    /// The path under an Ollama server's root.
    fn ollama_path(self) -> &'static str {
        match self {
            Endpoint::Chat => "/api/chat",
            Endpoint::Completions => "/api/generate",
            Endpoint::Responses => "/v1/responses",
            Endpoint::Messages => "/v1/messages",
        }
    }
}

/// A configured backend and its live state.
pub struct Backend {
    pub provider: Provider,
    client: hearth_http::Client,
    api_key: Option<String>,
    pub breaker: Mutex<CircuitBreaker>,
    pub healthy: AtomicBool,
    pub outstanding: AtomicUsize,
    /// The load the backend last reported on its `/metrics` page.
    pub reported: LoadReports,
}

/// Holds one of a backend's concurrency slots.
pub struct Outstanding(Arc<Backend>);

impl Drop for Outstanding {
    fn drop(&mut self) {
        self.0.outstanding.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A started upstream answer: the first piece of the body has arrived.
pub struct Started {
    pub first: Bytes,
    pub rest: BoxStream<'static, Result<Bytes, String>>,
}

/// Why an attempt failed.
#[derive(Debug, Clone)]
pub enum Failure {
    /// The backend is down, slow, overloaded or broken: try the next route.
    Retryable(String),
    /// The backend says the prompt does not fit.
    ContextOverflow { status: u16, body: String },
    /// The request itself is bad: the client gets the backend's answer.
    Client { status: u16, body: String },
    /// The backend does not serve this API (an older server without /v1/responses): try the
    /// next route, and leave the breaker alone (the backend is fine for the other APIs).
    Unsupported(String),
}

impl Backend {
    pub fn new(provider: Provider, breaker: &BreakerSettings) -> Self {
        let connect_timeout = Duration::from_secs_f64(provider.connect_timeout_s);
        let settings = || reqwest::Client::builder().connect_timeout(connect_timeout).pool_max_idle_per_host(256);
        let client = hearth_http::Client::new(settings).expect("HTTP client");
        let api_key = provider.api_key_env.as_ref().and_then(|name| std::env::var(name).ok());
        Backend {
            breaker: Mutex::new(CircuitBreaker::new(breaker)),
            healthy: AtomicBool::new(true),
            outstanding: AtomicUsize::new(0),
            reported: LoadReports::default(),
            client,
            api_key,
            provider,
        }
    }

    pub fn name(&self) -> &str {
        &self.provider.name
    }

    /// Healthy by probe, breaker not open, and a free concurrency slot.
    pub fn is_available(&self, now: Instant) -> bool {
        self.healthy.load(Ordering::Acquire)
            && self.breaker.lock().map(|b| b.is_available(now)).unwrap_or(false)
            && self.outstanding.load(Ordering::Acquire) < self.provider.max_concurrent
    }

    pub fn acquire(self: &Arc<Self>) -> Outstanding {
        self.outstanding.fetch_add(1, Ordering::AcqRel);
        Outstanding(self.clone())
    }

    /// Sends `body` (an OpenAI request with the upstream model name) and waits for the first
    /// byte of a successful answer.
    pub async fn start(&self, endpoint: Endpoint, body: &Value, stream: bool) -> Result<Started, Failure> {
        let (url, payload) = match self.provider.kind {
            ProviderKind::Ollama if endpoint.is_typed_events() => (self.url(endpoint.ollama_path()), body.clone()),
            ProviderKind::Ollama => {
                let model = body["model"].as_str().unwrap_or_default();
                (self.url(endpoint.ollama_path()), ollama::request_body(endpoint, body, model, stream))
            }
            ProviderKind::Openai | ProviderKind::Hearth => (self.url(endpoint.openai_path()), body.clone()),
        };
        let total = Duration::from_secs_f64(self.provider.timeout_s);
        let build = |client: &reqwest::Client| {
            let request = client.post(&url).json(&payload).timeout(total);
            match &self.api_key {
                Some(key) => request.bearer_auth(key),
                None => request,
            }
        };
        // A complete answer's first byte comes only when generation is done, so the
        // first-token limit applies to streams; complete answers have the total limit.
        let limit = match stream {
            true => Duration::from_secs_f64(self.provider.first_token_timeout_s),
            false => Duration::from_secs_f64(self.provider.timeout_s),
        };
        match tokio::time::timeout(limit, first_piece(&self.client, build, endpoint)).await {
            Ok(result) => result,
            Err(_) => Err(Failure::Retryable(format!("no first byte within {limit:?}"))),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.provider.base_url.trim_end_matches('/'), path)
    }

    /// The server root (the base URL without its `/v1`).
    fn root(&self) -> String {
        self.provider.base_url.trim_end_matches('/').trim_end_matches("/v1").to_string()
    }

    /// Reads the load gauges from the backend's `/metrics` page (`None` when it cannot be
    /// read or has none).
    pub async fn scrape_load(&self) -> Option<ReportedLoad> {
        let mut request = self.client.pooled().get(format!("{}/metrics", self.root())).timeout(Duration::from_secs(2));
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.ok().filter(|r| r.status().is_success())?;
        ReportedLoad::parse(&response.text().await.ok()?)
    }

    /// A report of this age or younger is current (three scrape intervals).
    pub fn report_max_age(&self) -> Duration {
        Duration::from_secs_f64(self.provider.metrics_interval_s * 3.0)
    }

    /// The active health probe: `/health` (or the configured path) at the server root for
    /// OpenAI-style backends, `/api/tags` for Ollama. Never spends tokens.
    pub async fn probe(&self) -> bool {
        let root = self.root();
        let path = match (&self.provider.health.path, self.provider.kind) {
            (Some(p), _) => p.clone(),
            (None, ProviderKind::Ollama) => "/api/tags".into(),
            (None, _) => "/health".into(),
        };
        let request = self.client.pooled().get(format!("{root}{path}")).timeout(Duration::from_secs(5));
        matches!(request.send().await, Ok(r) if r.status().is_success())
    }
}

async fn first_piece(
    client: &hearth_http::Client,
    build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    endpoint: Endpoint,
) -> Result<Started, Failure> {
    let response = client.send(build).await.map_err(|e| Failure::Retryable(format!("request failed: {e}")))?;
    let status = response.status().as_u16();
    if !(200..300).contains(&status) {
        let body = response.text().await.unwrap_or_default();
        return Err(classify(status, body, endpoint));
    }
    let mut body = response.bytes_stream().map(|r| r.map_err(|e| format!("the backend's stream broke: {e}"))).boxed();
    match body.next().await {
        Some(Ok(first)) => Ok(Started { first, rest: body }),
        Some(Err(e)) => Err(Failure::Retryable(e)),
        None => Err(Failure::Retryable("the backend sent an empty body".into())),
    }
}

/// Sorts an error status into retry, context overflow or client error. A 404 or 405 on the
/// Responses or Messages path that is not about the model means the backend does not speak
/// that API (an older server): the next route may.
pub fn classify(status: u16, body: String, endpoint: Endpoint) -> Failure {
    let overflow = body.contains("maximum context length") || body.contains("context_length_exceeded") || body.contains("context window");
    match status {
        404 | 405 if endpoint.is_typed_events() && !body.contains("model") => {
            Failure::Unsupported(format!("HTTP {status}: the backend does not serve {}", endpoint.openai_path()))
        }
        400 | 413 if overflow => Failure::ContextOverflow { status, body },
        408 | 429 | 500..=599 => Failure::Retryable(format!("HTTP {status}: {}", body.chars().take(300).collect::<String>())),
        _ => Failure::Client { status, body },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_sort_into_retry_overflow_and_client_errors() {
        let chat = Endpoint::Chat;
        assert!(matches!(classify(503, "busy".into(), chat), Failure::Retryable(_)));
        assert!(matches!(classify(429, "slow down".into(), chat), Failure::Retryable(_)));
        let overflow = "This model's maximum context length is 2048 tokens. However, you requested 5000 tokens";
        assert!(matches!(classify(400, overflow.into(), chat), Failure::ContextOverflow { .. }));
        assert!(matches!(classify(400, "bad temperature".into(), chat), Failure::Client { status: 400, .. }));
        assert!(matches!(classify(404, "no model".into(), chat), Failure::Client { status: 404, .. }));
        assert!(matches!(classify(404, "Not Found".into(), Endpoint::Messages), Failure::Unsupported(_)));
        let missing_model = r#"{"error": {"message": "The model `x` does not exist."}}"#;
        assert!(matches!(classify(404, missing_model.into(), Endpoint::Responses), Failure::Client { status: 404, .. }));
    }
}
