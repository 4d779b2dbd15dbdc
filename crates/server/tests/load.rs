//! The server under load and at its edges: 32 concurrent streaming clients, clients that
//! disconnect (their requests stop at once), graceful shutdown that finishes in-flight work.

mod support;

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::json;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_two_streaming_clients_all_complete() {
    let server = start().await;
    let clients = (0..32).map(|i| {
        let body = chat(&format!("Write a sentence about the number {i}."), json!({"max_tokens": 24, "temperature": 0.7,
            "seed": i, "stream": true, "stream_options": {"include_usage": true}}));
        let server = &server;
        async move { stream(server, "/v1/chat/completions", &body).await }
    });
    let results = futures_util::future::join_all(clients).await;
    for chunks in &results {
        assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
        let usage = &chunks.last().unwrap()["usage"];
        let text: String = chunks.iter().filter_map(|c| c["choices"].get(0)?["delta"]["content"].as_str()).collect();
        assert!(usage["completion_tokens"].as_u64().unwrap() >= 1);
        assert!(!text.is_empty());
    }
    let ids: std::collections::HashSet<_> = results.iter().map(|c| c[0]["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids.len(), 32, "each request has its own id");
    assert!(wait_for_metric(&server, "num_requests_running", 0.0).await);
    let finished = |reason: &str| format!("request_success_total{{model_name=\"smollm\",finished_reason=\"{reason}\"}}");
    let stopped = metric_line(&server, &finished("stop")).await;
    let length = metric_line(&server, &finished("length")).await;
    assert_eq!(stopped + length, 32.0, "every request ran to its end");
    assert_eq!(metric_line(&server, &finished("abort")).await, 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnected_clients_stop_their_requests() {
    let server = start().await;
    let long = |stream: bool| chat("Tell a very long story.", json!({"max_tokens": 1500, "ignore_eos": true, "stream": stream}));

    // Streaming: read the first chunk, then go away.
    let response = client().post(server.url("/v1/chat/completions")).json(&long(true)).send().await.unwrap();
    let mut body = response.bytes_stream();
    body.next().await.expect("first chunk").unwrap();
    assert!(wait_for_metric(&server, "num_requests_running", 1.0).await);
    drop(body);
    assert!(wait_for_metric(&server, "num_requests_running", 0.0).await, "the streaming request was aborted");

    // Not streaming: the client times out and closes the connection.
    let impatient = reqwest::Client::builder().timeout(Duration::from_millis(400)).build().unwrap();
    let result = impatient.post(server.url("/v1/chat/completions")).json(&long(false)).send().await;
    assert!(result.is_err(), "the client gave up");
    assert!(wait_for_metric(&server, "num_requests_running", 0.0).await, "the request was aborted");
    assert_eq!(metric(&server, "kv_cache_usage_perc").await, 0.0, "its KV blocks are free");
    let aborted = metric_line(&server, "request_success_total{model_name=\"smollm\",finished_reason=\"abort\"}").await;
    assert_eq!(aborted, 2.0);
    assert!(metric(&server, "generation_tokens_total").await < 1500.0);
}

async fn metric_line(server: &TestServer, prefix: &str) -> f64 {
    let text = client().get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let line = text.lines().find(|l| l.starts_with(&format!("hearth:{prefix}"))).expect("metric line");
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_in_flight_requests() {
    let mut server = start().await;
    let body = chat("Count to twenty.", json!({"max_tokens": 60, "ignore_eos": true, "stream": true}));
    let response = client().post(server.url("/v1/chat/completions")).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let url = server.url("/health");
    server.signal_shutdown();
    let events = sse_events(response).await;
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<serde_json::Value> = events[..events.len() - 1].iter().map(|e| serde_json::from_str(e).unwrap()).collect();
    assert_eq!(chunks.last().unwrap()["choices"][0]["finish_reason"], "length", "the request ran to its end");
    let task = server.task.take().unwrap();
    task.await.unwrap().unwrap();
    assert!(client().get(url).send().await.is_err(), "no longer listening");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_cut_off_by_shutdown_end_with_an_error_event() {
    let config = hearth_server::ServerConfig { shutdown_grace: Duration::ZERO, ..server_config() };
    let mut server = start_with(config, engine_config()).await;
    let body = chat("Tell a very long story.", json!({"max_tokens": 1500, "ignore_eos": true, "stream": true}));
    let response = client().post(server.url("/v1/chat/completions")).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 200);
    server.signal_shutdown();
    let events = sse_events(response).await;
    let (done, rest) = events.split_last().unwrap();
    assert_eq!(done, "[DONE]");
    let error: serde_json::Value = serde_json::from_str(rest.last().unwrap()).unwrap();
    assert!(error["error"]["message"].as_str().unwrap().contains("shutting down"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_allows_the_configured_origins() {
    let config = hearth_server::ServerConfig { cors_allow_origins: vec!["http://localhost:3000".into()], ..server_config() };
    let server = start_with(config, engine_config()).await;
    let preflight = client()
        .request(reqwest::Method::OPTIONS, server.url("/v1/chat/completions"))
        .header("origin", "http://localhost:3000")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization,content-type")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.headers()["access-control-allow-origin"], "http://localhost:3000");
    let other = client().get(server.url("/v1/models")).header("origin", "http://evil.example").send().await.unwrap();
    assert!(!other.headers().contains_key("access-control-allow-origin"));
}
