//! The acceptance requests users run against vLLM, replayed against hearth on the default
//! model (Qwen2.5-Coder-1.5B-Instruct): health, model listing, the prime-function chat, and the
//! "Count from 1 to 5" stream, whose greedy text must equal the reference runtime's.

use hearth_engine::EngineConfig;
use serde_json::{json, Value};
use crate::support::*;

const SERVED: &str = "Qwen/Qwen2.5-Coder-1.5B-Instruct";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_acceptance_requests_pass_on_qwen() {
    let config = hearth_server::ServerConfig { served_model_names: vec![SERVED.into()], ..server_config() };
    let server = start_unloaded(config).await;
    let engine = EngineConfig { kv_cache_memory: Some(64 << 20), max_model_len: Some(2048), ..Default::default() };
    load_model(&server.state, hearth_testkit::QWEN, &engine);

    let (status, health) = get(&server, "/health").await;
    assert_eq!((status, health), (200, json!({"status": "ok"})));
    let (status, models) = get(&server, "/v1/models").await;
    assert_eq!(status, 200);
    assert_eq!(models["object"], "list");
    assert!(models["data"].as_array().unwrap().iter().any(|m| m["id"] == SERVED));

    let body = json!({"model": SERVED, "temperature": 0, "max_tokens": 120, "messages": [
        {"role": "user", "content": "Write a one-line Python function to check if a number is prime."}]});
    let (status, response) = post(&server, "/v1/chat/completions", &body).await;
    assert_eq!(status, 200, "{response}");
    assert_eq!(response["object"], "chat.completion");
    assert_eq!(response["choices"][0]["message"]["role"], "assistant");
    let code = response["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(code.contains("def "), "{code}");
    let usage = &response["usage"];
    assert_eq!(usage["total_tokens"].as_u64(), Some(usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap()));

    let body = json!({"model": SERVED, "temperature": 0, "stream": true, "messages": [
        {"role": "system", "content": "You are a terse assistant."}, {"role": "user", "content": "Count from 1 to 5"}]});
    let chunks = stream(&server, "/v1/chat/completions", &body).await;
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let text: String = chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
    assert_eq!(text, golden_count_text());
    assert_eq!(chunks.last().unwrap()["choices"][0]["finish_reason"], "stop");
}

/// The reference runtime's greedy answer to the same conversation.
fn golden_count_text() -> String {
    let path = hearth_testkit::testdata_dir().join("greedy.json");
    let data: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let case = data["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["model"] == hearth_testkit::QWEN && c["prompt"].as_str().unwrap().contains("Count from 1 to 5"))
        .expect("golden case");
    case["greedy_text"].as_str().unwrap().to_string()
}
