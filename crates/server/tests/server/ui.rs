//! The web pages and `/status` of `hearth serve`: pages and status need no API key while the
//! API does, `--no-ui` turns the pages off, and `/status` follows the engine (loading, model,
//! KV capacity, kernel path, counters and latency histograms after a request).

use serde_json::{json, Value};
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_are_open_and_the_api_keeps_its_key() {
    let config = hearth_server::ServerConfig { api_key: Some("sekret".into()), ..server_config() };
    let server = start_with(config, engine_config()).await;
    let http = client();
    let page = http.get(server.url("/")).header("accept-encoding", "gzip").send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    assert_eq!(page.headers()["content-encoding"], "gzip");
    assert!(page.headers()["content-security-policy"].to_str().unwrap().contains("default-src 'none'"));
    let dashboard = http.get(server.url("/dashboard")).send().await.unwrap();
    assert_eq!(dashboard.status(), 200);
    assert!(dashboard.text().await.unwrap().contains("/ui/dashboard."), "the page names its hashed script");

    let refused = http.get(server.url("/v1/models")).send().await.unwrap();
    assert_eq!(refused.status(), 401, "the page is open, the API is not");
    let listed = http.get(server.url("/v1/models")).bearer_auth("sekret").send().await.unwrap();
    assert_eq!(listed.status(), 200);
    let (status, body) = get(&server, "/status").await;
    assert_eq!(status, 200, "like /metrics, /status needs no key");
    assert_eq!(body["model"]["id"], MODEL_NAME);

    let unknown = http.get(server.url("/ui/nothing.js")).send().await.unwrap();
    assert_eq!(unknown.status(), 404);
    let body: Value = unknown.json().await.unwrap();
    assert!(body["error"]["message"].is_string(), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_follows_the_engine() {
    let server = start_unloaded(server_config()).await;
    let (code, loading) = get(&server, "/status").await;
    assert_eq!(code, 200);
    assert_eq!(loading["kind"], "server");
    assert_eq!(loading["state"], "loading");
    assert!(loading["model"].is_null(), "{loading}");
    load_model(&server.state, hearth_testkit::SMOLLM, &engine_config());

    let (_, before) = get(&server, "/status").await;
    assert_eq!(before["state"], "ready");
    assert_eq!(before["model"]["aliases"], json!(["smollm-alias"]));
    assert!(before["model"]["weights_bytes"].as_u64().unwrap() > 50_000_000, "{before}");
    let kv = &before["kv_cache"];
    assert_eq!(kv["tokens"].as_u64().unwrap(), kv["blocks"].as_u64().unwrap() * kv["block_size"].as_u64().unwrap());
    assert!(before["engine"]["kernels"].as_str().unwrap().contains(hearth_kernels::isa::active().name()), "{before}");
    assert!(before["engine"]["threads"].as_u64().unwrap() >= 1);
    assert_eq!(before["tokens"]["generation"], 0);

    let (code, _) = post(&server, "/v1/chat/completions", &chat("Say hi.", json!({"max_tokens": 8, "temperature": 0}))).await;
    assert_eq!(code, 200);
    let (_, after) = get(&server, "/status").await;
    assert!(after["tokens"]["generation"].as_u64().unwrap() >= 1, "{after}");
    assert!(after["tokens"]["prompt"].as_u64().unwrap() > 3, "{after}");
    assert_eq!(after["requests"]["running"], 0);
    assert_eq!(after["requests"]["waiting"], 0);
    let ttft = &after["latency"]["ttft_s"];
    assert_eq!(ttft["count"], 1, "{ttft}");
    let bounds = ttft["bounds"].as_array().unwrap();
    let cumulative: Vec<u64> = ttft["cumulative"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
    assert_eq!(bounds.len(), cumulative.len());
    assert!(cumulative.windows(2).all(|w| w[0] <= w[1]) && cumulative.last() == Some(&1), "{cumulative:?}");
    assert!(after["prefix_cache"]["queries"].as_u64().unwrap() >= 1, "{after}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_ui_turns_the_pages_off() {
    let server = start_unloaded(hearth_server::ServerConfig { ui: false, ..server_config() }).await;
    for path in ["/", "/dashboard", "/ui/chat.js"] {
        let response = client().get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["type"], "invalid_request_error", "{path}: {body}");
    }
    let (code, _) = get(&server, "/status").await;
    assert_eq!(code, 200, "status stays");
}
