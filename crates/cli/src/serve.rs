//! `hearth serve`: the OpenAI-compatible server on one model (vLLM's flags).

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use hearth_engine::ModelBundle;
use hearth_server::{ServedModel, Server, ServerConfig};
use hearth_tokenizer::ChatTemplate;

use crate::common::{models_dir, ConnectionArgs, EngineArgs};

/// The name clients use for the default model when no other is given.
const DEFAULT_SERVED_NAME: &str = "Qwen/Qwen2.5-Coder-1.5B-Instruct";

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// A GGUF file, a Hugging Face model directory, a folder holding one GGUF file, a model in
    /// the Hugging Face cache (ORG/NAME), or a model name in the model folder
    /// (e.g. Qwen/Qwen2.5-Coder-1.5B-Instruct) [default: Qwen2.5-Coder-1.5B-Instruct Q4_K_M]
    pub model: Option<String>,
    /// Address to listen on
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Port to listen on
    #[arg(long, default_value_t = 8001)]
    pub port: u16,
    /// Names clients may use for the model (repeat for aliases); the first is listed in
    /// /v1/models [default: the MODEL argument as given]
    #[arg(long)]
    pub served_model_name: Vec<String>,
    /// Require `Authorization: Bearer <KEY>` on the API (/health, /version, /metrics stay open)
    #[arg(long, env = "HEARTH_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// A Jinja chat template file that replaces the model's own
    #[arg(long)]
    pub chat_template: Option<PathBuf>,
    /// Requests that may wait for a place in the running batch; beyond that the server answers
    /// 503 with Retry-After
    #[arg(long, default_value_t = 256)]
    pub max_queued_requests: usize,
    /// Largest request body in bytes (larger ones get 413), e.g. 32MiB
    #[arg(long, default_value = "32MiB", value_parser = crate::common::parse_bytes)]
    pub max_request_body: u64,
    /// Compute threads [default: one per core]
    #[arg(long, short = 't')]
    pub threads: Option<usize>,
    /// Origins allowed to call the API from a browser (repeatable; `*` for any) [default: no CORS]
    #[arg(long)]
    pub cors_allow_origin: Vec<String>,
    /// Log format
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Seconds in-flight requests may run after SIGTERM/SIGINT before they are cancelled
    #[arg(long, default_value_t = 30)]
    pub shutdown_timeout: u64,
    /// Keep stored Responses API responses (`store: true`) in this SQLite file, so that
    /// `previous_response_id` works across restarts [default: in memory]
    #[arg(long)]
    pub responses_store: Option<PathBuf>,
    /// Most stored responses kept; the oldest are dropped first
    #[arg(long, default_value_t = 1000)]
    pub max_stored_responses: usize,
    /// Also serve the API on this port (11434 for clients that assume Ollama's port)
    #[arg(long)]
    pub ollama_port: Option<u16>,
    /// Do not serve the web playground (/) and dashboard (/dashboard)
    #[arg(long)]
    pub no_ui: bool,
    #[command(flatten)]
    pub connections: ConnectionArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let open_files = crate::common::raise_open_files_limit();
    let path = resolve_model(args.model.as_deref())?;
    let names = match (&args.served_model_name[..], &args.model) {
        ([], Some(model)) => vec![model.clone()],
        ([], None) => vec![DEFAULT_SERVED_NAME.to_string()],
        (names, _) => names.to_vec(),
    };
    let template = match &args.chat_template {
        Some(file) => Some(std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?),
        None => None,
    };
    let config = ServerConfig {
        served_model_names: names,
        model_root: path.display().to_string(),
        api_key: args.api_key.clone().filter(|k| !k.is_empty()),
        max_queued_requests: args.max_queued_requests,
        max_body_bytes: args.max_request_body as usize,
        connections: args.connections.limits(open_files),
        cors_allow_origins: args.cors_allow_origin.clone(),
        shutdown_grace: Duration::from_secs(args.shutdown_timeout),
        responses_store: args.responses_store.clone(),
        max_stored_responses: args.max_stored_responses,
        ui: !args.no_ui,
        launch_settings: args.engine.summary(),
    };
    crate::common::init_kernels()?;
    let threads = hearth_kernels::threads::init(args.threads);
    let runtime = crate::common::runtime(2)?;
    runtime.block_on(serve(args, config, path, template, threads))
}

async fn serve(args: ServeArgs, config: ServerConfig, path: PathBuf, template: Option<String>, threads: usize) -> anyhow::Result<()> {
    let addr = SocketAddr::new(args.host, args.port);
    let mut server = Server::bind(addr, config).await.with_context(|| format!("cannot listen on {addr}"))?;
    announce(server.local_addr()?, !args.no_ui);
    if let Some(port) = args.ollama_port {
        let also = SocketAddr::new(args.host, port);
        let bound = server.listen_also(also).await.with_context(|| format!("cannot listen on {also} (--ollama-port)"))?;
        tracing::info!("also listening on http://{bound} (--ollama-port)");
    }
    let state = server.state();
    let (failed_tx, failed_rx) = tokio::sync::oneshot::channel::<()>();
    let engine_config = args.engine.config();
    let loader = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        tracing::info!(path = %path.display(), threads, "loading model");
        let bundle = ModelBundle::load(&path).with_context(|| format!("cannot load model {}", path.display()))?;
        let template = match template {
            Some(source) => {
                let tok = &bundle.tokenizer;
                let (bos, eos) = (tok.special_text(tok.bos_token()), tok.special_text(tok.eos_token()));
                Some(ChatTemplate::new(&source, bos, eos).context("cannot compile the --chat-template file")?)
            }
            None => None,
        };
        let model = ServedModel::start(bundle, &engine_config, template).map_err(anyhow::Error::msg)?;
        state.set_model(model);
        tracing::info!("model ready: {} is serving", state.config.served_model_names[0]);
        Ok(())
    });
    let load_result = tokio::spawn(async move {
        let result = loader.await.context("model loading panicked").and_then(|r| r);
        if result.is_err() {
            let _ = failed_tx.send(());
        }
        result
    });
    let shutdown = async move {
        tokio::select! {
            _ = shutdown_signal() => {}
            Ok(()) = failed_rx => {}
        }
    };
    server.run(shutdown).await?;
    match load_result.await {
        Ok(Err(e)) => Err(e),
        _ => Ok(()),
    }
}

/// The first lines a newcomer reads: where the playground, the dashboard and the API are.
fn announce(bound: SocketAddr, ui: bool) {
    let base = browser_url(bound);
    if ui {
        tracing::info!("playground: {base}/   dashboard: {base}/dashboard");
    }
    tracing::info!("API: {base}/v1 (OpenAI-compatible; the model is loading, /health answers 503 until it is ready)");
}

/// `http://host:port` as a browser on this machine reaches it (a wildcard address becomes
/// the loopback one).
pub fn browser_url(bound: SocketAddr) -> String {
    match bound.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => format!("http://127.0.0.1:{}", bound.port()),
        IpAddr::V6(ip) if ip.is_unspecified() => format!("http://[::1]:{}", bound.port()),
        _ => format!("http://{bound}"),
    }
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return ctrl_c.await.unwrap_or(()),
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// A file, a Hugging Face directory, a folder with one GGUF file, or a name matched against
/// the model folder's files.
fn resolve_model(model: Option<&str>) -> anyhow::Result<PathBuf> {
    let Some(model) = model else { return crate::common::default_model_path() };
    let path = Path::new(model);
    if path.is_file() {
        return Ok(path.to_path_buf());
    }
    if path.is_dir() {
        return model_in_dir(path);
    }
    if let Some(snapshot) = hearth_model::hf_cache::hub_cache_root().and_then(|root| hearth_model::hf_cache::snapshot_in(&root, model)) {
        return Ok(snapshot);
    }
    // only a bare name needs the model folder (a path works without HOME, as in a container)
    let dir = models_dir()?;
    let wanted = model.rsplit('/').next().unwrap_or(model).to_ascii_lowercase();
    let local: Vec<PathBuf> = gguf_files(&dir)
        .into_iter()
        .filter(|p| p.file_stem().and_then(|s| s.to_str()).is_some_and(|s| s.to_ascii_lowercase().starts_with(&wanted)))
        .collect();
    if local.is_empty() && looks_like_repo(model) && !crate::download::offline() {
        return crate::download::download_model(model, "main");
    }
    match local.as_slice() {
        [one] => Ok(one.clone()),
        [] => bail!(
            "model `{model}` is not a file, a folder, a model in the Hugging Face cache, or a model in {} (ORG/NAME models are downloaded unless HF_HUB_OFFLINE is set)",
            dir.display()
        ),
        many => bail!("model `{model}` matches several files in {}: {many:?}", dir.display()),
    }
}

/// `ORG/NAME`, as the hub spells repositories.
fn looks_like_repo(model: &str) -> bool {
    let ok = |part: &str| !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    model.split_once('/').is_some_and(|(org, name)| ok(org) && ok(name))
}

fn gguf_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> =
        entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|e| e == "gguf")).collect();
    files.sort();
    files
}

fn model_in_dir(dir: &Path) -> anyhow::Result<PathBuf> {
    if dir.join("config.json").exists() {
        return Ok(dir.to_path_buf()); // a Hugging Face model directory
    }
    match gguf_files(dir).as_slice() {
        [one] => Ok(one.clone()),
        [] => bail!("{} holds no .gguf file", dir.display()),
        many => bail!("{} holds several .gguf files; name one: {many:?}", dir.display()),
    }
}
