//! Shared server state: settings, the model once it has loaded, and request admission.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use hearth_engine::{EngineConfig, EngineHandle, GenerationDefaults, GrammarCompiler, ModelBundle};
use hearth_http::{ConnectionLimits, ConnectionStats};
use hearth_tokenizer::{ChatTemplate, Tokenizer};

use crate::error::ApiError;
use crate::responses_store::ResponseStore;

/// Server settings (the `hearth serve` flags that are not engine flags).
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Names clients may use for the model; the first is listed. Never empty.
    pub served_model_names: Vec<String>,
    /// What the names stand for (the model path), shown as `root` in the model list.
    pub model_root: String,
    pub api_key: Option<String>,
    /// Requests that may wait beyond those the engine runs at once.
    pub max_queued_requests: usize,
    pub max_body_bytes: usize,
    /// The cap on open connections and the waits for each request's head and body.
    pub connections: ConnectionLimits,
    /// Origins allowed by CORS (`*` for any); empty: no CORS headers.
    pub cors_allow_origins: Vec<String>,
    /// How long in-flight requests may run after SIGTERM/SIGINT.
    pub shutdown_grace: Duration,
    /// Where stored Responses API responses live (a SQLite file); None: in memory.
    pub responses_store: Option<std::path::PathBuf>,
    /// Most stored responses kept (the oldest are dropped first).
    pub max_stored_responses: usize,
    /// Whether the playground (`/`) and the dashboard (`/dashboard`) are served.
    pub ui: bool,
    /// The settings the server was started with, as `(flag, value)`, for `/status` and the
    /// dashboard (the engine's own are read from the engine).
    pub launch_settings: Vec<(String, String)>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            served_model_names: vec!["default".into()],
            model_root: String::new(),
            api_key: None,
            max_queued_requests: 256,
            max_body_bytes: 32 << 20,
            connections: ConnectionLimits::default(),
            cors_allow_origins: Vec::new(),
            shutdown_grace: Duration::from_secs(30),
            responses_store: None,
            max_stored_responses: 1000,
            ui: true,
            launch_settings: Vec::new(),
        }
    }
}

/// The loaded model: the running engine plus what request handling needs around it.
pub struct ServedModel {
    pub engine: EngineHandle,
    pub template: Option<ChatTemplate>,
    pub defaults: GenerationDefaults,
    /// The grammar engine over this model's vocabulary, built on first use.
    grammar: OnceLock<Result<GrammarCompiler, String>>,
}

impl ServedModel {
    /// Starts the engine for `bundle`; `template` replaces the model's chat template.
    pub fn start(bundle: ModelBundle, config: &EngineConfig, template: Option<ChatTemplate>) -> Result<Self, String> {
        let engine = EngineHandle::spawn(&bundle, config).map_err(|e| e.to_string())?;
        let template = template.or(bundle.template);
        Ok(ServedModel { engine, template, defaults: bundle.generation_defaults, grammar: OnceLock::new() })
    }

    /// The grammar compiler (the token trie is built the first time a request needs it).
    pub fn grammar_compiler(&self) -> Result<&GrammarCompiler, ApiError> {
        let built = self.grammar.get_or_init(|| {
            let started = std::time::Instant::now();
            let compiler = GrammarCompiler::new(self.tokenizer(), self.engine.info().vocab_size).map_err(|e| e.to_string());
            tracing::info!("grammar engine ready for {} tokens in {:.0?}", self.engine.info().vocab_size, started.elapsed());
            compiler
        });
        built.as_ref().map_err(|e| ApiError::internal(e.clone()))
    }

    pub fn tokenizer(&self) -> &Arc<Tokenizer> {
        self.engine.tokenizer()
    }

    pub fn max_model_len(&self) -> usize {
        self.engine.info().plan.max_model_len
    }
}

/// The server's life: loading the model, serving, draining after a signal, or with its engine
/// gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Loading,
    Ready,
    ShuttingDown,
    EngineStopped,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Loading => "loading",
            Phase::Ready => "ready",
            Phase::ShuttingDown => "shutting down",
            Phase::EngineStopped => "engine stopped",
        }
    }
}

/// State shared by all handlers.
pub struct AppState {
    pub config: ServerConfig,
    model: OnceLock<Arc<ServedModel>>,
    admitted: Arc<AtomicUsize>,
    shutting_down: AtomicBool,
    /// Unix seconds at startup (`created` of the model card).
    pub started_at: u64,
    /// Responses kept for `GET /v1/responses/{id}` and `previous_response_id`.
    pub responses: ResponseStore,
    /// Open and refused connections, over all the server's listeners.
    pub connections: Arc<ConnectionStats>,
}

/// Holds admission slots for a request; they are returned when it is dropped.
pub struct AdmissionGuard {
    admitted: Arc<AtomicUsize>,
    slots: usize,
}

impl Drop for AdmissionGuard {
    fn drop(&mut self) {
        self.admitted.fetch_sub(self.slots, Ordering::AcqRel);
    }
}

impl AppState {
    pub fn new(config: ServerConfig, responses: ResponseStore) -> Self {
        AppState {
            connections: ConnectionStats::new(config.connections.max_connections),
            config,
            responses,
            model: OnceLock::new(),
            admitted: Arc::new(AtomicUsize::new(0)),
            shutting_down: AtomicBool::new(false),
            started_at: crate::unix_now(),
        }
    }

    /// Makes the model available; false if one was already set. The grammar engine is built
    /// in the background, so the first structured request does not wait for it.
    pub fn set_model(&self, model: ServedModel) -> bool {
        let model = Arc::new(model);
        let warm = model.clone();
        let set = self.model.set(model).is_ok();
        if set {
            let _ = std::thread::Builder::new().name("hearth-grammar".into()).spawn(move || {
                let _ = warm.grammar_compiler();
            });
        }
        set
    }

    pub fn model(&self) -> Option<&Arc<ServedModel>> {
        self.model.get()
    }

    /// Where the server stands, as `/health` and `/status` report it.
    pub fn phase(&self) -> Phase {
        match self.model() {
            None => Phase::Loading,
            Some(_) if self.is_shutting_down() => Phase::ShuttingDown,
            Some(model) if !model.engine.is_running() => Phase::EngineStopped,
            Some(_) => Phase::Ready,
        }
    }

    /// The model, or 503 while it is loading.
    pub fn ready_model(&self) -> Result<Arc<ServedModel>, ApiError> {
        if self.is_shutting_down() {
            return Err(ApiError::unavailable("The server is shutting down.", 5));
        }
        self.model.get().cloned().ok_or_else(|| ApiError::unavailable("The model is still loading.", 5))
    }

    /// Checks the requested model name against the served names.
    pub fn resolve_model_name(&self, requested: Option<&str>) -> Result<String, ApiError> {
        let names = &self.config.served_model_names;
        match requested {
            None | Some("") => Ok(names[0].clone()),
            Some(name) if names.iter().any(|n| n == name) => Ok(name.to_string()),
            Some(name) => Err(ApiError::model_not_found(name)),
        }
    }

    /// Admits `slots` engine requests, or 503 when the running and queued limit is reached
    /// (400 when `slots` alone exceeds it: retrying could never help).
    pub fn admit(&self, model: &ServedModel, slots: usize) -> Result<AdmissionGuard, ApiError> {
        let limit = model.engine.info().max_num_seqs + self.config.max_queued_requests;
        if slots > limit {
            return Err(ApiError::bad_request(
                format!(
                    "This request asks for {slots} completions (n times the prompts) but this server runs and queues at most {limit} at once (--max-num-seqs plus --max-queued-requests); lower `n`."
                ),
                Some("n"),
            ));
        }
        let before = self.admitted.fetch_add(slots, Ordering::AcqRel);
        let guard = AdmissionGuard { admitted: self.admitted.clone(), slots };
        if before + slots > limit {
            return Err(ApiError::unavailable(
                format!("The server is overloaded: {before} requests are running or queued (limit {limit}). Retry later."),
                1,
            ));
        }
        Ok(guard)
    }

    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::Release);
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }
}
