//! Stub backends on random local ports (OpenAI-style and Ollama-style) that can be told to
//! answer, fail with a status, hang (before or after the headers), break off, stall, send a
//! corrupt event or end early mid-body, or report a context overflow; and a gateway in front
//! of them.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::future::IntoFuture;

use axum::routing::{get, post as route_post};
use axum::{Json, Router};
use hearth_gateway::config::{MAPPINGS_FILE, PROVIDERS_FILE};
use hearth_gateway::{FrontLimits, Gateway, GatewayConfig, KeyStore};
use hearth_testkit::ScratchDir;
use serde_json::{json, Value};

#[derive(Debug, Clone, PartialEq)]
pub enum Behaviour {
    Answer,
    Status(u16),
    Hang,
    /// Streams two chunks, then drops the connection.
    BreakMidStream,
    ContextOverflow,
    /// Sends 200 and its headers, then nothing.
    HangAfterHeaders,
    /// Sends two stream chunks (half of a complete answer), then nothing.
    StallMidBody,
    /// Sends two stream chunks, then an event that is not JSON, then the rest (a complete
    /// answer: junk, then the answer).
    CorruptEvent,
    /// Sends two stream chunks (half of a complete answer), then ends the body cleanly.
    EndEarly,
}

impl Behaviour {
    /// The faults that come after a 200 and its headers.
    pub const MID_BODY: [Behaviour; 4] = [Behaviour::HangAfterHeaders, Behaviour::StallMidBody, Behaviour::CorruptEvent, Behaviour::EndEarly];
}

/// The words every stub streams, one per chunk.
pub const WORDS: [&str; 5] = ["Hello", " from", " the", " stub", "!"];

pub struct Stub {
    pub addr: SocketAddr,
    pub name: String,
    pub behaviour: Mutex<Behaviour>,
    pub healthy: Mutex<bool>,
    pub requests: AtomicUsize,
    pub last_model: Mutex<String>,
    /// What its `/metrics` page reports as `vllm:num_requests_waiting`.
    pub waiting: AtomicUsize,
}

impl Stub {
    pub fn set(&self, b: Behaviour) {
        *self.behaviour.lock().unwrap() = b;
    }
    pub fn count(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

async fn health(State(stub): State<Arc<Stub>>) -> StatusCode {
    if *stub.healthy.lock().unwrap() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }
}

/// Runs the behaviour shared by both stub kinds; Ok(()) means: answer normally.
async fn metrics(State(stub): State<Arc<Stub>>) -> String {
    let waiting = stub.waiting.load(Ordering::SeqCst);
    format!("vllm:num_requests_waiting{{model_name=\"stub\"}} {waiting}\nvllm:num_requests_running{{model_name=\"stub\"}} 0\nvllm:kv_cache_usage_perc{{model_name=\"stub\"}} 0.1\n")
}

async fn misbehave(stub: &Stub, body: &Value) -> Result<(), Response> {
    stub.requests.fetch_add(1, Ordering::SeqCst);
    *stub.last_model.lock().unwrap() = body["model"].as_str().unwrap_or("").to_string();
    let behaviour = stub.behaviour.lock().unwrap().clone();
    match behaviour {
        Behaviour::Answer | Behaviour::BreakMidStream => Ok(()),
        Behaviour::HangAfterHeaders | Behaviour::StallMidBody | Behaviour::CorruptEvent | Behaviour::EndEarly => Ok(()),
        Behaviour::Status(code) => Err((StatusCode::from_u16(code).unwrap(), Json(json!({"error": {"message": "stub failure", "type": "server_error"}}))).into_response()),
        Behaviour::Hang => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Err(StatusCode::GATEWAY_TIMEOUT.into_response())
        }
        Behaviour::ContextOverflow => Err((StatusCode::BAD_REQUEST, Json(json!({"error": {"message": "This model's maximum context length is 100 tokens. However, you requested 500 tokens (490 in the messages, 10 in the completion). Please reduce the length of the messages or completion.", "type": "invalid_request_error", "code": "context_length_exceeded"}}))).into_response()),
    }
}

fn stream_of(lines: Vec<String>, sep: &'static str, break_after: Option<usize>) -> Response {
    let pieces: Vec<Result<Bytes, std::io::Error>> = lines
        .into_iter()
        .enumerate()
        .map(|(i, l)| match break_after {
            Some(n) if i >= n => Err(std::io::Error::other("stub broke off")),
            _ => Ok(Bytes::from(format!("{l}{sep}"))),
        })
        .collect();
    paced(pieces)
}

/// The pieces sent 5 ms apart.
fn paced(pieces: Vec<Result<Bytes, std::io::Error>>) -> Response {
    let stream = futures_util::StreamExt::then(futures_util::stream::iter(pieces), |p| async move {
        tokio::time::sleep(Duration::from_millis(5)).await;
        p
    });
    Body::from_stream(stream).into_response()
}

/// The body as `fault` spoils it after its first `keep` pieces (`junk`: the corrupt piece);
/// None when the behaviour is no mid-body fault.
fn spoiled(fault: &Behaviour, pieces: Vec<String>, keep: usize, junk: &str) -> Option<Response> {
    let ok = |p: String| Ok::<_, std::io::Error>(Bytes::from(p));
    let (head, tail) = (pieces[..keep].to_vec(), pieces[keep..].to_vec());
    let then_nothing = |head: Vec<String>| {
        let head = futures_util::stream::iter(head.into_iter().map(ok));
        Body::from_stream(futures_util::StreamExt::chain(head, futures_util::stream::pending())).into_response()
    };
    Some(match fault {
        Behaviour::HangAfterHeaders => then_nothing(Vec::new()),
        Behaviour::StallMidBody => then_nothing(head),
        Behaviour::CorruptEvent => paced(head.into_iter().chain([junk.to_string()]).chain(tail).map(ok).collect()),
        Behaviour::EndEarly => paced(head.into_iter().map(ok).collect()),
        _ => return None,
    })
}

/// A complete JSON answer, or the same spoiled by the stub's mid-body fault.
fn complete(stub: &Stub, answer: Value) -> Response {
    let text = answer.to_string();
    let half = text.len() / 2;
    let pieces = vec![text[..half].to_string(), text[half..].to_string()];
    let fault = stub.behaviour.lock().unwrap().clone();
    if fault == Behaviour::CorruptEvent {
        // junk first: a cut inside a string value could otherwise still make valid JSON
        let pieces = ["<html>oops</html>".to_string()].into_iter().chain(pieces).map(|p| Ok(Bytes::from(p))).collect();
        return paced(pieces);
    }
    spoiled(&fault, pieces, 1, "").unwrap_or_else(|| Json(answer).into_response())
}

/// A stream of SSE events or NDJSON lines, or the same spoiled by the stub's fault.
fn streamed(stub: &Stub, events: Vec<String>, ndjson: bool, break_after: Option<usize>) -> Response {
    let fault = stub.behaviour.lock().unwrap().clone();
    let (sep, junk) = if ndjson { ("\n", CORRUPT_NDJSON) } else { ("\n\n", CORRUPT_SSE) };
    let pieces: Vec<String> = events.iter().map(|e| format!("{e}{sep}")).collect();
    spoiled(&fault, pieces, 2, junk).unwrap_or_else(|| stream_of(events, sep, break_after))
}

/// A corrupt SSE event: not JSON, and on two lines.
pub const CORRUPT_SSE: &str = "data: <html>not json\ndata: a second line</html>\n\n";
/// A corrupt NDJSON line.
pub const CORRUPT_NDJSON: &str = "<html>not json</html>\n";

async fn openai_chat(State(stub): State<Arc<Stub>>, Json(body): Json<Value>) -> Response {
    if let Err(r) = misbehave(&stub, &body).await {
        return r;
    }
    let model = body["model"].clone();
    if body["stream"] != true {
        return complete(&stub, json!({"id": "chatcmpl-stub", "object": "chat.completion", "created": 1, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": WORDS.concat()}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12}}));
    }
    let chunk = |delta: Value, finish: Value| format!("data: {}", json!({"id": "chatcmpl-stub", "object": "chat.completion.chunk", "created": 1, "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}));
    let mut lines = vec![chunk(json!({"role": "assistant", "content": ""}), Value::Null)];
    lines.extend(WORDS.iter().map(|w| chunk(json!({"content": w}), Value::Null)));
    lines.push(chunk(json!({}), json!("stop")));
    if body["stream_options"]["include_usage"] == true {
        lines.push(format!("data: {}", json!({"id": "chatcmpl-stub", "object": "chat.completion.chunk", "created": 1, "model": model, "choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12}})));
    }
    lines.push("data: [DONE]".into());
    let break_after = (*stub.behaviour.lock().unwrap() == Behaviour::BreakMidStream).then_some(3);
    streamed(&stub, lines, false, break_after)
}

async fn ollama_chat(State(stub): State<Arc<Stub>>, Json(body): Json<Value>) -> Response {
    if let Err(r) = misbehave(&stub, &body).await {
        return r;
    }
    let done = json!({"model": body["model"], "message": {"role": "assistant", "content": ""}, "done": true, "done_reason": "stop", "prompt_eval_count": 9, "eval_count": 5});
    if body["stream"] == false {
        let mut whole = done.clone();
        whole["message"]["content"] = json!(WORDS.concat());
        return complete(&stub, whole);
    }
    let mut lines: Vec<String> = WORDS.iter().map(|w| json!({"model": body["model"], "message": {"role": "assistant", "content": w}, "done": false}).to_string()).collect();
    lines.push(done.to_string());
    streamed(&stub, lines, true, None)
}

async fn openai_completion(State(stub): State<Arc<Stub>>, Json(body): Json<Value>) -> Response {
    if let Err(r) = misbehave(&stub, &body).await {
        return r;
    }
    Json(json!({"id": "cmpl-stub", "object": "text_completion", "created": 1, "model": body["model"],
        "choices": [{"index": 0, "text": WORDS.concat(), "finish_reason": "length"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}})).into_response()
}

async fn ollama_generate(State(stub): State<Arc<Stub>>, Json(body): Json<Value>) -> Response {
    if let Err(r) = misbehave(&stub, &body).await {
        return r;
    }
    let mut lines: Vec<String> = WORDS.iter().map(|w| json!({"model": body["model"], "response": w, "done": false}).to_string()).collect();
    lines.push(json!({"model": body["model"], "response": "", "done": true, "done_reason": "length", "prompt_eval_count": 2, "eval_count": 5}).to_string());
    stream_of(lines, "\n", None)
}

pub async fn start_stub(name: &str, ollama: bool) -> Arc<Stub> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let stub = Arc::new(Stub {
        addr: listener.local_addr().unwrap(),
        name: name.into(),
        behaviour: Mutex::new(Behaviour::Answer),
        healthy: Mutex::new(true),
        requests: AtomicUsize::new(0),
        last_model: Mutex::new(String::new()),
        waiting: AtomicUsize::new(0),
    });
    let app = if ollama {
        Router::new().route("/api/tags", get(health)).route("/api/chat", route_post(ollama_chat)).route("/api/generate", route_post(ollama_generate))
    } else {
        Router::new()
            .route("/health", get(health))
            .route("/metrics", get(metrics))
            .route("/v1/chat/completions", route_post(openai_chat))
            .route("/v1/completions", route_post(openai_completion))
    };
    tokio::spawn(axum::serve(listener, app.with_state(stub.clone())).into_future());
    stub
}

pub fn provider_yaml(stub: &Stub, ollama: bool, extra: &str) -> String {
    let (kind, base) = if ollama { ("ollama", format!("http://{}", stub.addr)) } else { ("openai", format!("http://{}/v1", stub.addr)) };
    format!("  - name: {}\n    kind: {kind}\n    base_url: {base}\n    first_token_timeout_s: 1\n    timeout_s: 2\n{extra}", stub.name)
}

/// Writes the config files and starts a gateway on a random port.
/// `keys`: a key store location (SQLite file name inside the config folder, or a Postgres URL).
/// The config folder comes back as a `ScratchDir`: hold it while the gateway runs (its SQLite
/// key store lives there); it is removed when dropped.
pub async fn start_gateway(providers: &str, mappings: &str, keys: Option<&str>) -> (String, Arc<Gateway>, ScratchDir) {
    start_gateway_with_front(providers, mappings, keys, FrontLimits::default()).await
}

/// `start_gateway` with the given limits on its clients.
pub async fn start_gateway_with_front(providers: &str, mappings: &str, keys: Option<&str>, front: FrontLimits) -> (String, Arc<Gateway>, ScratchDir) {
    let scratch = ScratchDir::new(&format!("gw-{}", rand::random::<u32>()));
    let dir = scratch.path().to_path_buf();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(PROVIDERS_FILE), providers).unwrap();
    std::fs::write(dir.join(MAPPINGS_FILE), mappings).unwrap();
    let config = GatewayConfig::load(&dir).unwrap_or_else(|e| panic!("{e}\n{providers}\n{mappings}"));
    let store = match keys {
        Some(url) if url.starts_with("postgres") => Some(Arc::new(KeyStore::open(url).await.unwrap())),
        Some(file) => Some(Arc::new(KeyStore::open(dir.join(file).to_str().unwrap()).await.unwrap())),
        None => None,
    };
    let gateway = Gateway::new(config, store, front);
    gateway.spawn_health_probes();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let serving = gateway.clone();
    tokio::spawn(async move { serving.serve(listener, std::future::pending()).await });
    (url, gateway, scratch)
}

/// hearth itself (SmolLM2, served as `smollm`) on a random port; sending on the returned
/// channel stops it (no grace period), and the handle ends when it has.
pub async fn start_hearth() -> (SocketAddr, tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<std::io::Result<()>>) {
    use hearth_server::{ServedModel, Server, ServerConfig};
    let config = ServerConfig { served_model_names: vec!["smollm".into()], shutdown_grace: Duration::ZERO, ..Default::default() };
    let server = Server::bind("127.0.0.1:0".parse().unwrap(), config).await.unwrap();
    let addr = server.local_addr().unwrap();
    hearth_kernels::threads::init(None);
    let bundle = hearth_engine::ModelBundle::load(&hearth_testkit::model_path(hearth_testkit::SMOLLM)).unwrap();
    let engine = hearth_engine::EngineConfig { kv_cache_memory: Some(128 << 20), max_model_len: Some(1024), ..Default::default() };
    server.state().set_model(ServedModel::start(bundle, &engine, None).unwrap());
    let (kill, killed) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async move {
        let _ = killed.await;
    }));
    (addr, kill, task)
}

pub fn chat(model: &str, stream: bool) -> Value {
    json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": "hi"}]})
}

pub async fn post(url: &str, body: &Value) -> reqwest::Response {
    reqwest::Client::new().post(format!("{url}/v1/chat/completions")).json(body).send().await.unwrap()
}

/// The SSE payloads of a response (`[DONE]` included).
pub async fn events(response: reqwest::Response) -> Vec<String> {
    let text = response.text().await.unwrap();
    text.split("\n\n").filter(|e| !e.is_empty()).map(|e| e.trim_start_matches("data: ").to_string()).collect()
}

pub fn streamed_text(events: &[String]) -> String {
    events
        .iter()
        .filter_map(|e| serde_json::from_str::<Value>(e).ok())
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str().map(str::to_string))
        .collect()
}
