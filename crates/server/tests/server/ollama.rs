//! Ollama's native API on SmolLM2: version, tags, ps, show, chat and generate (NDJSON streams
//! that assemble to the non-streamed answer, the counts Ollama reports), a schema `format`,
//! the management routes' 501, Ollama's error shape, and the official `ollama` Python client.

use serde_json::{json, Value};
use crate::support::*;

/// The JSON lines of an NDJSON answer.
pub async fn ndjson(server: &TestServer, path: &str, body: &Value) -> Vec<Value> {
    let response = client().post(server.url(path)).json(body).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let text = response.text().await.unwrap();
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ollama_listing_and_show() {
    let server = start().await;
    let (status, version) = get(&server, "/api/version").await;
    assert_eq!(status, 200);
    assert!(version["version"].as_str().is_some_and(|v| v.split('.').count() == 3));
    let (_, tags) = get(&server, "/api/tags").await;
    assert_eq!(tags["models"][0]["name"], MODEL_NAME);
    assert!(tags["models"][0]["size"].as_u64().unwrap() > 1_000_000);
    let (_, ps) = get(&server, "/api/ps").await;
    assert_eq!(ps["models"][0]["model"], MODEL_NAME);
    let (status, show) = post(&server, "/api/show", &json!({"model": format!("{MODEL_NAME}:latest")})).await;
    assert_eq!(status, 200, "{show}");
    assert!(show["template"].as_str().is_some_and(|t| t.contains("im_start")));
    assert!(show["capabilities"].as_array().unwrap().contains(&json!("completion")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ollama_chat_and_generate_stream_and_not() {
    let server = start().await;
    let greedy = json!({"temperature": 0, "num_predict": 24});
    let body = json!({"model": MODEL_NAME, "stream": false, "options": greedy,
        "messages": [{"role": "user", "content": "Count from 1 to 5."}]});
    let (status, answer) = post(&server, "/api/chat", &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["message"]["role"], "assistant");
    assert_eq!((answer["done"].as_bool(), answer["model"].as_str()), (Some(true), Some(MODEL_NAME)));
    assert!(answer["eval_count"].as_u64().unwrap() > 0 && answer["prompt_eval_count"].as_u64().unwrap() > 5);
    assert!(answer["created_at"].as_str().unwrap().ends_with('Z'));
    let mut streamed = body.clone();
    streamed.as_object_mut().unwrap().remove("stream"); // Ollama streams by default
    let lines = ndjson(&server, "/api/chat", &streamed).await;
    assert!(lines[..lines.len() - 1].iter().all(|l| l["done"] == false) && lines.last().unwrap()["done"] == true);
    let text: String = lines.iter().filter_map(|l| l["message"]["content"].as_str()).collect();
    assert_eq!(text, answer["message"]["content"].as_str().unwrap());
    assert_eq!(lines.last().unwrap()["eval_count"], answer["eval_count"]);

    let body = json!({"model": MODEL_NAME, "prompt": "The capital of France is", "stream": false, "options": greedy});
    let (status, generated) = post(&server, "/api/generate", &body).await;
    assert_eq!(status, 200, "{generated}");
    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let lines = ndjson(&server, "/api/generate", &streamed).await;
    let text: String = lines.iter().filter_map(|l| l["response"].as_str()).collect();
    assert_eq!(text, generated["response"].as_str().unwrap());

    // a schema as `format` (this 135M model rambles inside free JSON strings, so they are bounded)
    let schema = json!({"type": "object", "additionalProperties": false, "required": ["name", "age"],
        "properties": {"name": {"type": "string", "maxLength": 20}, "age": {"type": "integer"}}});
    let body = json!({"model": MODEL_NAME, "stream": false, "format": schema, "options": {"temperature": 0, "num_predict": 120},
        "messages": [{"role": "user", "content": "Describe a cat as JSON."}]});
    let (_, answer) = post(&server, "/api/chat", &body).await;
    let content = answer["message"]["content"].as_str().unwrap();
    let value: Value = serde_json::from_str(content).unwrap_or_else(|e| panic!("{e}: {content}"));
    assert!(value["name"].is_string() && value["age"].is_i64(), "{value}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ollama_errors_and_management_routes() {
    let server = start().await;
    let (status, body) = post(&server, "/api/chat", &json!({"model": "llama3:8b", "messages": []})).await;
    assert_eq!(status, 404);
    assert!(body["error"].as_str().is_some_and(|e| e.contains("llama3")), "{body}");
    let (status, body) = post(&server, "/api/chat", &json!({"messages": []})).await;
    assert!(status == 400 && body["error"].is_string(), "{body}");
    let (status, body) = post(&server, "/api/generate", &json!({"model": MODEL_NAME, "prompt": "x", "format": 7})).await;
    assert!(status == 400 && body["error"].is_string(), "{body}");
    let raw = client().post(server.url("/api/chat")).body("{oops").send().await.unwrap();
    assert_eq!(raw.status(), 400);
    assert!(raw.json::<Value>().await.unwrap()["error"].is_string());
    for path in ["/api/pull", "/api/create", "/api/embed"] {
        let (status, body) = post(&server, path, &json!({"model": "x"})).await;
        assert!(status == 501 && body["error"].is_string(), "{path}: {body}");
    }
}

/// The official `ollama` Python package (from `scripts/python-clients.sh`); without that venv
/// the test says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ollama_sdk_works_unchanged() {
    let server = start().await;
    run_sdk_script(&server, "ollama_sdk.py").await;
}

/// `--ollama-port`: the same API on a second address, for clients that assume Ollama's port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_port_serves_the_same_api() {
    let mut server = hearth_server::Server::bind("127.0.0.1:0".parse().unwrap(), server_config()).await.unwrap();
    let second = server.listen_also("127.0.0.1:0".parse().unwrap()).await.unwrap();
    load_model(&server.state(), hearth_testkit::SMOLLM, &engine_config());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));
    let version: serde_json::Value = client().get(format!("http://{second}/api/version")).send().await.unwrap().json().await.unwrap();
    assert!(version["version"].is_string());
    let body = serde_json::json!({"model": MODEL_NAME, "prompt": "Say hi.", "stream": false, "options": {"num_predict": 4, "temperature": 0}});
    let answer: serde_json::Value = client().post(format!("http://{second}/api/generate")).json(&body).send().await.unwrap().json().await.unwrap();
    assert_eq!(answer["done"], true, "{answer}");
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}
