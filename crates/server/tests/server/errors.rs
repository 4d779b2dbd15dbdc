//! Errors as OpenAI error objects with the right status: bad JSON and parameters, unknown
//! models, context overflow (LiteLLM's sentence), API keys, body size, a full queue, loading.

use serde_json::{json, Value};
use crate::support::*;

fn assert_error(status: u16, body: &Value, want_status: u16, param: Option<&str>) {
    assert_eq!(status, want_status, "{body}");
    let error = &body["error"];
    assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    assert!(error["type"].is_string(), "{body}");
    assert!(error.get("param").is_some() && error.get("code").is_some(), "{body}");
    if let Some(param) = param {
        assert_eq!(error["param"], param, "{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_400_naming_the_problem() {
    let server = start().await;
    let raw = client().post(server.url("/v1/chat/completions")).body("{\"messages\": [").send().await.unwrap();
    assert_eq!(raw.status(), 400);
    let body: Value = raw.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("not valid JSON"), "{body}");

    let cases = [
        (json!({"messages": [{"role": "user", "content": "hi"}], "temperature": "hot"}), "temperature"),
        (json!({"messages": [{"role": "user", "content": "hi"}], "max_tokens": -3}), "max_tokens"),
        (json!({"messages": [{"role": "user", "content": "hi"}], "n": 0}), "n"),
        (json!({"messages": [{"role": "wizard", "content": "hi"}]}), "messages[0].role"),
        (json!({"messages": []}), "messages"),
        (json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}), "messages[0].content[0]"),
        (json!({"messages": [{"role": "user", "content": "hi"}], "top_logprobs": 2}), "top_logprobs"),
        (json!({"messages": [{"role": "user", "content": "hi"}], "response_format": {"type": "xml"}}), "response_format"),
        (
            json!({"messages": [{"role": "user", "content": "hi"}], "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"$ref": "#/missing"}}}}),
            "response_format",
        ),
        (json!({"messages": [{"role": "user", "content": "hi"}], "tool_choice": "required"}), "tool_choice"),
        (
            json!({"messages": [{"role": "user", "content": "hi"}], "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": {"type": "function", "function": {"name": "g"}}}),
            "tool_choice",
        ),
        (json!({"messages": [{"role": "user", "content": "hi"}], "tools": [{"type": "browser"}]}), "tools[0].type"),
        (json!({"messages": [{"role": "user", "content": "hi"}], "logit_bias": {"abc": 1}}), "logit_bias"),
        (json!({"messages": [{"role": "user", "content": "hi"}], "stop": ""}), "stop"),
    ];
    for (body, param) in cases {
        let (status, response) = post(&server, "/v1/chat/completions", &body).await;
        assert_error(status, &response, 400, Some(param));
    }
    let (status, response) = post(&server, "/v1/chat/completions", &json!({"messages": [{"role": "user", "content": "hi"}], "top_p": 1.5})).await;
    assert_error(status, &response, 400, None);
    assert!(response["error"]["message"].as_str().unwrap().contains("top_p"));
    let (status, response) = post(&server, "/v1/completions", &json!({"prompt": "hi", "logprobs": 9})).await;
    assert_error(status, &response, 400, Some("logprobs"));
    let (status, response) = post(&server, "/v1/completions", &json!({"prompt": "hi", "logprobs": 1, "echo": true})).await;
    assert_error(status, &response, 400, Some("echo"));
    let (status, response) = post(&server, "/v1/completions", &json!({"prompt": "hi", "suffix": "x"})).await;
    assert_error(status, &response, 400, Some("suffix"));
    let (status, response) = post(&server, "/v1/completions", &json!({"prompt": [[1, 2, 999999]]})).await;
    assert_error(status, &response, 400, None);
    let (status, response) = post(&server, "/detokenize", &json!({"tokens": [999999]})).await;
    assert_error(status, &response, 400, Some("tokens"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_models_and_endpoints_get_404() {
    let server = start().await;
    let (status, body) = post(&server, "/v1/chat/completions", &json!({"model": "gpt-5", "messages": [{"role": "user", "content": "hi"}]})).await;
    assert_error(status, &body, 404, Some("model"));
    assert_eq!(body["error"]["message"], "The model `gpt-5` does not exist.");
    let (status, body) = post(&server, "/v1/completions", &json!({"model": "gpt-5", "prompt": "hi"})).await;
    assert_error(status, &body, 404, Some("model"));
    let (status, body) = get(&server, "/v1/models/gpt-5").await;
    assert_error(status, &body, 404, Some("model"));
    let (status, body) = get(&server, "/v1/nothing-here").await;
    assert_error(status, &body, 404, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn context_overflow_uses_the_sentence_litellm_knows() {
    let server = start().await; // max_model_len 2048
    let long = "word ".repeat(3000);
    let (status, body) = post(&server, "/v1/chat/completions", &chat(&long, json!({"max_tokens": 10}))).await;
    assert_error(status, &body, 400, Some("messages"));
    let message = body["error"]["message"].as_str().unwrap();
    let (_, t) = post(&server, "/tokenize", &json!({"messages": [{"role": "user", "content": long}]})).await;
    let prompt = t["count"].as_u64().unwrap();
    assert_eq!(message, format!("This model's maximum context length is 2048 tokens. However, you requested {} tokens ({prompt} in the messages, 10 in the completion). Please reduce the length of the messages or completion.", prompt + 10));
    assert_eq!(body["error"]["code"], "context_length_exceeded");

    let (status, body) = post(&server, "/v1/completions", &json!({"prompt": long, "max_tokens": 1})).await;
    assert_error(status, &body, 400, Some("prompt"));
    assert!(body["error"]["message"].as_str().unwrap().starts_with("This model's maximum context length is 2048 tokens."));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_key_guards_the_api_but_not_health() {
    let mut config = server_config();
    config.api_key = Some("secret-key".into());
    let server = start_with(config, engine_config()).await;
    let c = client();
    let no_key = c.get(server.url("/v1/models")).send().await.unwrap();
    assert_eq!(no_key.status(), 401);
    let body: Value = no_key.json().await.unwrap();
    assert_error(401, &body, 401, None);
    let wrong = c.post(server.url("/v1/chat/completions")).bearer_auth("secret-kez").json(&chat("hi", json!({}))).send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    let right = c.get(server.url("/v1/models")).bearer_auth("secret-key").send().await.unwrap();
    assert_eq!(right.status(), 200);
    for open in ["/health", "/version", "/metrics"] {
        assert_eq!(c.get(server.url(open)).send().await.unwrap().status(), 200, "{open} stays open");
    }
    let tokenize = c.post(server.url("/tokenize")).json(&json!({"prompt": "x"})).send().await.unwrap();
    assert_eq!(tokenize.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_get_413() {
    let mut config = server_config();
    config.max_body_bytes = 4096;
    let server = start_with(config, engine_config()).await;
    let (status, body) = post(&server, "/v1/chat/completions", &chat(&"x".repeat(10_000), json!({}))).await;
    assert_error(status, &body, 413, None);
    let (status, _) = post(&server, "/v1/chat/completions", &chat("hi", json!({"max_tokens": 2}))).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_oversized_body_is_refused_before_it_is_sent() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut config = server_config();
    config.max_body_bytes = 4096;
    let server = start_with(config, engine_config()).await;
    // the headers promise 100 MB and no byte of it follows: the answer must not wait for it
    let mut socket = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let head = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000000\r\n\r\n{";
    socket.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 4096];
    let read = tokio::time::timeout(std::time::Duration::from_secs(10), socket.read(&mut answer)).await;
    let n = read.expect("413 comes at once, not after a body that never arrives").unwrap();
    let text = String::from_utf8_lossy(&answer[..n]);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(text.contains("larger than the limit of 4096 bytes"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_methods_get_405_with_an_error_object() {
    let server = start().await;
    let response = client().get(server.url("/v1/chat/completions")).send().await.unwrap();
    assert_eq!(response.status(), 405);
    let body: Value = response.json().await.unwrap();
    assert_error(405, &body, 405, None);
    assert!(body["error"]["message"].as_str().unwrap().contains("GET /v1/chat/completions"), "{body}");
    let response = client().post(server.url("/health")).send().await.unwrap();
    assert_eq!(response.status(), 405);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_choices_than_could_ever_be_queued_is_a_400_naming_n() {
    let mut config = server_config();
    config.max_queued_requests = 3;
    let engine = hearth_engine::EngineConfig { max_num_seqs: 2, ..engine_config() };
    let server = start_with(config, engine).await;
    let (status, body) = post(&server, "/v1/chat/completions", &chat("hi", json!({"n": 6, "max_tokens": 2}))).await;
    assert_error(status, &body, 400, Some("n"));
    assert!(body["error"]["message"].as_str().unwrap().contains("at most 5"), "{body}");
    let (status, body) = post(&server, "/v1/completions", &json!({"prompt": ["a", "b", "c"], "n": 2, "max_tokens": 2})).await;
    assert_error(status, &body, 400, Some("n"));
    let (status, body) = post(&server, "/v1/chat/completions", &chat("hi", json!({"n": 5, "max_tokens": 2}))).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_answers_503_with_retry_after() {
    let mut config = server_config();
    config.max_queued_requests = 0;
    let engine = hearth_engine::EngineConfig { max_num_seqs: 1, ..engine_config() };
    let server = start_with(config, engine).await;
    let long = chat("Tell a long story.", json!({"max_tokens": 1000, "ignore_eos": true, "stream": true}));
    let busy = client().post(server.url("/v1/chat/completions")).json(&long).send().await.unwrap();
    assert_eq!(busy.status(), 200);
    let refused = client().post(server.url("/v1/chat/completions")).json(&chat("hi", json!({}))).send().await.unwrap();
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "1");
    let body: Value = refused.json().await.unwrap();
    assert_error(503, &body, 503, None);
    drop(busy);
    // Once the first request is gone, its place is free again.
    let mut admitted = false;
    for _ in 0..100 {
        let (status, _) = post(&server, "/v1/chat/completions", &chat("hi", json!({"max_tokens": 2}))).await;
        if status == 200 {
            admitted = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(admitted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_503_until_the_model_is_loaded() {
    let server = start_unloaded(server_config()).await;
    let (status, body) = get(&server, "/health").await;
    assert_eq!((status, body), (503, json!({"status": "loading"})));
    let response = client().post(server.url("/v1/chat/completions")).json(&chat("hi", json!({}))).send().await.unwrap();
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    let (status, models) = get(&server, "/v1/models").await;
    assert_eq!(status, 200, "models are listed while loading");
    assert_eq!(models["data"][0]["id"], MODEL_NAME);

    load_model(&server.state, hearth_testkit::SMOLLM, &engine_config());
    let (status, body) = get(&server, "/health").await;
    assert_eq!((status, body), (200, json!({"status": "ok"})));
    let (status, _) = post(&server, "/v1/chat/completions", &chat("hi", json!({"max_tokens": 2}))).await;
    assert_eq!(status, 200);
}
