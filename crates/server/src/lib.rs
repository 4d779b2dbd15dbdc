//! The OpenAI-compatible HTTP server (axum): routes, protocol <-> engine conversion, SSE,
//! API key, metrics and errors. It knows the engine only through `EngineHandle`.

mod access_log;
mod body;
mod chat;
mod chat_stream;
mod completions;
mod conversation;
mod error;
mod fim;
mod generation;
mod handler_runtime;
mod infill;
mod info;
mod logprobs;
mod messages;
mod messages_stream;
pub mod metrics;
mod ollama;
mod ollama_stream;
mod params;
mod responses;
mod responses_input;
mod responses_store;
mod responses_stream;
mod state;
mod status;
mod stream;
mod structured;
mod tool_plan;
mod xml_grammar;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::response::IntoResponse;
use axum::http::{HeaderValue, Method};
use axum::routing::{get, post};
use axum::{middleware, Router};
use hearth_http::BodyLimits;
use tokio::net::TcpListener;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};

pub use access_log::REQUEST_ID_HEADER;
pub use error::ApiError;
pub use responses_store::ResponseStore;
pub use state::{AppState, ServedModel, ServerConfig};

/// A bound, not yet running server. Listening starts at `bind`, so clients can poll
/// `/health` (503 "loading") while the model loads.
pub struct Server {
    /// The main port first, then those added with `listen_also`.
    listeners: Vec<TcpListener>,
    state: Arc<AppState>,
}

impl Server {
    /// Binds the main port; opens the response store (a SQLite file that cannot be opened is
    /// an error naming it).
    pub async fn bind(addr: SocketAddr, config: ServerConfig) -> std::io::Result<Self> {
        let responses = match &config.responses_store {
            Some(path) => ResponseStore::sqlite(path, config.max_stored_responses).map_err(std::io::Error::other)?,
            None => ResponseStore::memory(config.max_stored_responses),
        };
        let listener = TcpListener::bind(addr).await?;
        Ok(Server { listeners: vec![listener], state: Arc::new(AppState::new(config, responses)) })
    }

    /// Serves the same API on another address too (e.g. Ollama's port 11434).
    pub async fn listen_also(&mut self, addr: SocketAddr) -> std::io::Result<SocketAddr> {
        let listener = TcpListener::bind(addr).await?;
        let bound = listener.local_addr()?;
        self.listeners.push(listener);
        Ok(bound)
    }

    /// The main port's address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listeners[0].local_addr()
    }

    /// Where to hand over the model once it has loaded.
    pub fn state(&self) -> Arc<AppState> {
        self.state.clone()
    }

    /// Serves until `shutdown` resolves; then stops accepting, lets in-flight requests finish
    /// for the grace period, cancels what is left and stops the engine.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let state = self.state.clone();
        let grace = state.config.shutdown_grace;
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let app = router(state.clone());
        let serving = self.listeners.into_iter().map(|listener| {
            let mut stop_rx = stop_rx.clone();
            let stopped = async move {
                let _ = stop_rx.wait_for(|stop| *stop).await;
            };
            hearth_http::serve(listener, app.clone(), &state.config.connections, state.connections.clone(), stopped)
        });
        let serve = futures_util::future::try_join_all(serving);
        let signal_state = state.clone();
        let grace_over = async move {
            shutdown.await;
            tracing::info!("shutting down: no new requests; in-flight ones get {grace:?} to finish");
            signal_state.begin_shutdown();
            let _ = stop_tx.send(true);
            tokio::time::sleep(grace).await;
        };
        let result = tokio::select! {
            result = serve => result.map(|_| ()),
            _ = grace_over => {
                tracing::warn!("grace period over: cancelling the requests still running");
                Ok(())
            }
        };
        if let Some(model) = state.model().cloned() {
            let _ = tokio::task::spawn_blocking(move || model.engine.shutdown(false)).await;
        }
        result
    }
}

/// All routes with their middleware.
pub fn router(state: Arc<AppState>) -> Router {
    let body_limits = BodyLimits { max_bytes: state.config.max_body_bytes, read_timeout: state.config.connections.body_read_timeout };
    let api = Router::new()
        .route("/v1/models", get(info::list_models))
        .route("/v1/models/{id}", get(info::get_model))
        .route("/v1/chat/completions", post(chat::chat_completions))
        .route("/v1/completions", post(completions::completions))
        .route("/v1/fim/completions", post(completions::mistral_fim))
        .route("/infill", post(infill::infill))
        .route("/v1/messages", post(messages::messages))
        .route("/v1/messages/count_tokens", post(messages::count_tokens))
        .route("/v1/responses", post(responses::create))
        .route("/v1/responses/{id}", get(responses::get).delete(responses::delete))
        .route("/v1/responses/{id}/cancel", post(responses::cancel))
        .route("/tokenize", post(info::tokenize))
        .route("/detokenize", post(info::detokenize))
        .route("/api/chat", post(ollama::chat))
        .route("/api/generate", post(ollama::generate))
        .route("/api/show", post(ollama::show))
        .route("/api/tags", get(ollama::tags))
        .route("/api/ps", get(ollama::ps))
        .route("/api/version", get(ollama::version))
        .route("/api/pull", post(ollama::unsupported))
        .route("/api/push", post(ollama::unsupported))
        .route("/api/create", post(ollama::unsupported))
        .route("/api/copy", post(ollama::unsupported))
        .route("/api/delete", axum::routing::delete(ollama::unsupported))
        .route("/api/embed", post(ollama::unsupported))
        .route("/api/embeddings", post(ollama::unsupported))
        .route_layer(middleware::from_fn_with_state(state.clone(), access_log::require_api_key))
        .layer(middleware::from_fn(handler_runtime::run_on_handler_runtime));
    let open = Router::new()
        .route("/health", get(info::health))
        .route("/version", get(info::version))
        .route("/metrics", get(metrics::metrics))
        .route("/status", get(status::status));
    let open = if state.config.ui { open.merge(hearth_ui::router()) } else { open };
    let mut app = api
        .merge(open)
        .fallback(|| async { ApiError::not_found("Unknown endpoint.") })
        .method_not_allowed_fallback(|method: Method, uri: axum::http::Uri| async move {
            ApiError::method_not_allowed(method.as_str(), uri.path())
        })
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .layer(middleware::from_fn_with_state(body_limits, hearth_http::read_whole_body))
        .layer(middleware::from_fn_with_state(state.clone(), refuse_declared_oversize))
        .layer(middleware::from_fn(access_log::observe));
    if let Some(cors) = cors_layer(&state.config.cors_allow_origins) {
        app = app.layer(cors);
    }
    app.with_state(state)
}

fn cors_layer(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::from(Any)
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    Some(CorsLayer::new().allow_origin(allow).allow_methods([Method::GET, Method::POST, Method::DELETE, Method::OPTIONS]).allow_headers(Any))
}

/// The current UTC time as RFC 3339 with nanoseconds (Ollama's `created_at`).
pub(crate) fn rfc3339_now() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let (days, secs) = ((now.as_secs() / 86_400) as i64, now.as_secs() % 86_400);
    // civil date from days since 1970-01-01 (Howard Hinnant's algorithm)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, sec) = (secs / 3600, secs / 60 % 60, secs % 60);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{sec:02}.{:09}Z", now.subsec_nanos())
}

pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// 24 random hex digits.
pub(crate) fn random_id() -> String {
    format!("{:024x}", rand::random::<u128>() >> 32)
}

/// Middleware: a body whose declared `Content-Length` is over the limit is refused at once,
/// before any of it is read.
async fn refuse_declared_oversize(
    State(state): State<Arc<AppState>>,
    request: axum::extract::Request,
    next: middleware::Next,
) -> axum::response::Response {
    let limit = state.config.max_body_bytes;
    let declared = request.headers().get(axum::http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    match declared {
        Some(length) if length > limit as u64 => ApiError::payload_too_large(limit).into_response(),
        _ => next.run(request).await,
    }
}

/// Fields hearth does not know are named in a warning (as vLLM does), not silently dropped;
/// each name once per process, since agents send the same fields with every request.
pub(crate) fn warn_unknown_fields(unknown: &serde_json::Map<String, serde_json::Value>) {
    let new_names = first_sightings(unknown.keys());
    if !new_names.is_empty() {
        tracing::warn!("ignoring request fields hearth does not know: {}", loggable_names(new_names.iter()));
    }
}

/// The names not seen before. Up to 256 names are remembered, so that requests full of
/// made-up names cannot grow the set; past that, names are reported each time.
fn first_sightings<'a>(names: impl Iterator<Item = &'a String>) -> Vec<String> {
    const MAX_REMEMBERED: usize = 256;
    static SEEN: std::sync::Mutex<std::collections::BTreeSet<String>> = std::sync::Mutex::new(std::collections::BTreeSet::new());
    let mut seen = SEEN.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut new_names = Vec::new();
    for name in names {
        if seen.contains(name) {
            continue;
        }
        if seen.len() < MAX_REMEMBERED {
            seen.insert(name.clone());
        }
        new_names.push(name.clone());
    }
    new_names
}

/// Client-chosen names as one log-safe line: each cut to 64 characters (escaped), at most
/// 16 of them, so that a hostile request cannot grow the log by the size of its body.
fn loggable_names<'a>(names: impl ExactSizeIterator<Item = &'a String>) -> String {
    const MAX_NAMES: usize = 16;
    const MAX_CHARS: usize = 64;
    let count = names.len();
    let mut shown: Vec<String> = names
        .take(MAX_NAMES)
        .map(|name| {
            let cut: String = name.chars().take(MAX_CHARS).collect();
            let mut escaped = cut.escape_debug().to_string();
            if name.chars().count() > MAX_CHARS {
                escaped.push_str(&format!("... ({} bytes)", name.len()));
            }
            escaped
        })
        .collect();
    if count > MAX_NAMES {
        shown.push(format!("and {} more", count - MAX_NAMES));
    }
    shown.join(", ")
}

#[cfg(test)]
mod log_tests {
    #[test]
    fn logged_field_names_are_bounded() {
        let long = "x".repeat(1 << 20);
        let names: Vec<String> = std::iter::once(long).chain((0..40).map(|i| format!("f{i}\n"))).collect();
        let line = super::loggable_names(names.iter());
        assert!(line.len() < 2000, "{} bytes", line.len());
        assert!(line.starts_with(&"x".repeat(64)) && line.contains("(1048576 bytes)"), "{line}");
        assert!(line.contains("f0\\n") && line.ends_with("and 25 more"), "{line}");
    }

    #[test]
    fn unknown_field_names_are_reported_once() {
        let names = |list: &[&str]| list.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        let first = names(&["context_management_x1", "betas_x1"]);
        assert_eq!(super::first_sightings(first.iter()), first);
        let again = names(&["betas_x1", "service_tier_x1"]);
        assert_eq!(super::first_sightings(again.iter()), names(&["service_tier_x1"]));
        assert!(super::first_sightings(first.iter()).is_empty());
    }
}
