//! Starts hearth's server in-process on a random port with a real model, and small HTTP helpers.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use hearth_engine::{EngineConfig, ModelBundle};
use hearth_server::{AppState, ServedModel, Server, ServerConfig};
use serde_json::Value;
use tokio::sync::oneshot;

pub const MODEL_NAME: &str = "smollm";

/// A running server; dropping it stops the server.
pub struct TestServer {
    pub addr: SocketAddr,
    pub state: Arc<AppState>,
    stop: Option<oneshot::Sender<()>>,
    pub task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Signals shutdown (as SIGTERM would) and waits for the server to end.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task").expect("server result");
        }
    }

    pub fn signal_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

pub fn engine_config() -> EngineConfig {
    EngineConfig { kv_cache_memory: Some(96 << 20), max_model_len: Some(2048), ..Default::default() }
}

pub fn server_config() -> ServerConfig {
    ServerConfig { served_model_names: vec![MODEL_NAME.into(), "smollm-alias".into()], ..Default::default() }
}

/// Binds and runs a server without a model (it answers 503 until `load_model`).
pub async fn start_unloaded(config: ServerConfig) -> TestServer {
    let server = Server::bind("127.0.0.1:0".parse().unwrap(), config).await.expect("bind");
    let addr = server.local_addr().unwrap();
    let state = server.state();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));
    TestServer { addr, state, stop: Some(stop), task: Some(task) }
}

pub fn load_model(state: &AppState, model_file: &str, engine: &EngineConfig) {
    hearth_kernels::threads::init(None);
    let bundle = ModelBundle::load(&hearth_testkit::model_path(model_file)).expect("model loads");
    assert!(state.set_model(ServedModel::start(bundle, engine, None).expect("engine starts")));
}

/// A server on SmolLM2 with the given settings.
pub async fn start_with(config: ServerConfig, engine: EngineConfig) -> TestServer {
    let server = start_unloaded(config).await;
    load_model(&server.state, hearth_testkit::SMOLLM, &engine);
    server
}

pub async fn start() -> TestServer {
    start_with(server_config(), engine_config()).await
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(300)).build().unwrap()
}

/// POSTs JSON; returns status and parsed body.
pub async fn post(server: &TestServer, path: &str, body: &Value) -> (u16, Value) {
    let response = client().post(server.url(path)).json(body).send().await.expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON body"))
}

pub async fn get(server: &TestServer, path: &str) -> (u16, Value) {
    let response = client().get(server.url(path)).send().await.expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON body"))
}

/// The `data:` payloads of an SSE response, in order (`[DONE]` included as a string).
pub async fn sse_events(response: reqwest::Response) -> Vec<String> {
    let mut text = String::new();
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        text.push_str(std::str::from_utf8(&chunk.expect("body chunk")).expect("UTF-8 chunk"));
    }
    assert!(text.ends_with("\n\n"), "events end with a blank line: {text:?}");
    text.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| e.strip_prefix("data: ").unwrap_or_else(|| panic!("event without data: {e:?}")).to_string())
        .collect()
}

/// Streams a request and returns its events as JSON (the final `[DONE]` checked and removed).
pub async fn stream(server: &TestServer, path: &str, body: &Value) -> Vec<Value> {
    let response = client().post(server.url(path)).json(body).send().await.expect("request");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut events = sse_events(response).await;
    assert_eq!(events.pop().as_deref(), Some("[DONE]"));
    assert!(!events.iter().any(|e| e == "[DONE]"), "[DONE] only at the end");
    events.iter().map(|e| serde_json::from_str(e).expect("chunk is JSON")).collect()
}

/// (event name, data) of each frame of a typed SSE stream (Anthropic's and the Responses API's).
pub async fn typed_events(server: &TestServer, path: &str, body: &Value) -> Vec<(String, Value)> {
    let response = client().post(server.url(path)).json(body).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    text.split("\n\n")
        .filter(|frame| !frame.trim().is_empty())
        .map(|frame| {
            let mut lines = frame.lines();
            let event = lines.next().and_then(|l| l.strip_prefix("event: ")).expect("event line").to_string();
            let data = lines.next().and_then(|l| l.strip_prefix("data: ")).expect("data line");
            assert!(lines.next().is_none(), "one event and one data line per frame: {frame:?}");
            (event, serde_json::from_str(data).unwrap())
        })
        .collect()
}

pub fn chat(content: &str, extra: Value) -> Value {
    let mut body = serde_json::json!({
        "model": MODEL_NAME,
        "messages": [{"role": "user", "content": content}],
    });
    body.as_object_mut().unwrap().extend(extra.as_object().cloned().unwrap_or_default());
    body
}

/// A gauge or counter from /metrics.
pub async fn metric(server: &TestServer, name: &str) -> f64 {
    let text = client().get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("hearth:{name}{{")))
        .unwrap_or_else(|| panic!("metric {name} missing in:\n{text}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

/// Waits until `name` reaches `value` (the engine updates gauges between steps).
pub async fn wait_for_metric(server: &TestServer, name: &str, value: f64) -> bool {
    for _ in 0..200 {
        if metric(server, name).await == value {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    false
}

/// Runs one of `tests/clients/*.py` (an official SDK driving this server) with the Python from
/// `scripts/python-clients.sh`; without `HEARTH_CLIENTS_PYTHON` it says the test did not run.
pub async fn run_sdk_script(server: &TestServer, script: &str) {
    let Some(python) = std::env::var_os("HEARTH_CLIENTS_PYTHON") else {
        eprintln!("HEARTH_CLIENTS_PYTHON is not set (run scripts/python-clients.sh): {script} did not run");
        return;
    };
    let path = format!("{}/tests/clients/{script}", env!("CARGO_MANIFEST_DIR"));
    let output =
        tokio::process::Command::new(python).arg(&path).arg(server.url("")).arg(MODEL_NAME).output().await.expect("python runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success() && stdout.trim() == "ok", "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
}
