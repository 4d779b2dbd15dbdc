//! The gateway against stub backends: ordered fallback, no retry after the first streamed
//! byte, circuit breaker, health probes, load balancing, Ollama translation, context-window
//! fallback, timeouts, keys with limits and recorded usage, streaming passthrough.

use std::time::Duration;

use serde_json::{json, Value};
use crate::support::*;

fn two_route_mapping(first: &str, second: &str) -> String {
    format!("models:\n  - name: coder\n    aliases: [Qwen/Qwen2.5-Coder-7B-Instruct-AWQ]\n    routes:\n      - provider: {first}\n        model: up-{first}\n      - provider: {second}\n        model: up-{second}\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_fall_back_in_order_under_the_public_name() {
    let (a, b) = (start_stub("a", false).await, start_stub("b", false).await);
    let providers = format!("providers:\n{}{}", provider_yaml(&a, false, ""), provider_yaml(&b, false, ""));
    let (url, _, _config) = start_gateway(&providers, &two_route_mapping("a", "b"), None).await;
    let r = post(&url, &chat("coder", false)).await;
    assert_eq!(r.headers()["x-hearth-backend"], "a");
    assert_eq!(r.headers()["x-hearth-attempts"], "1");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["model"], "coder", "the public name, not the upstream one");
    assert_eq!(*a.last_model.lock().unwrap(), "up-a", "the backend got its own model name");

    for failure in [Behaviour::Status(500), Behaviour::Status(429), Behaviour::Hang] {
        a.set(failure.clone());
        let r = post(&url, &chat("Qwen/Qwen2.5-Coder-7B-Instruct-AWQ", false)).await;
        assert_eq!(r.status(), 200, "{failure:?}");
        assert_eq!(r.headers()["x-hearth-backend"], "b", "{failure:?}");
        assert_eq!(r.headers()["x-hearth-attempts"], "2", "{failure:?}");
    }
    a.set(Behaviour::Hang);
    let r = post(&url, &chat("coder", true)).await;
    assert_eq!(r.headers()["x-hearth-backend"], "b", "a stream without a first chunk in time moves on");
    b.set(Behaviour::Status(503));
    a.set(Behaviour::Status(503));
    let r = post(&url, &chat("coder", false)).await;
    assert_eq!(r.status(), 503);
    let body: Value = r.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("All backends for `coder` failed"), "{body}");

    let r = post(&url, &chat("gpt-5", false)).await;
    assert_eq!(r.status(), 404);
    let r = reqwest::Client::new().post(format!("{url}/v1/chat/completions")).body("{oops").send().await.unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_pass_through_and_are_never_retried_after_the_first_byte() {
    let (a, b) = (start_stub("a", false).await, start_stub("b", false).await);
    let providers = format!("providers:\n{}{}", provider_yaml(&a, false, ""), provider_yaml(&b, false, ""));
    let (url, _, _config) = start_gateway(&providers, &two_route_mapping("a", "b"), None).await;
    let ev = events(post(&url, &chat("coder", true)).await).await;
    assert_eq!(streamed_text(&ev), WORDS.concat(), "same content bytes");
    assert_eq!(ev.last().unwrap(), "[DONE]");
    assert_eq!(ev.len(), WORDS.len() + 3, "role chunk, words, finish chunk, [DONE]; the usage chunk it asked for is hidden");
    let first: Value = serde_json::from_str(&ev[0]).unwrap();
    assert_eq!(first["model"], "coder");

    let mut with_usage = chat("coder", true);
    with_usage["stream_options"] = json!({"include_usage": true});
    let ev = events(post(&url, &with_usage).await).await;
    let usage: Value = serde_json::from_str(&ev[ev.len() - 2]).unwrap();
    assert_eq!(usage["usage"]["total_tokens"], 12);

    a.set(Behaviour::BreakMidStream);
    let before = b.count();
    let ev = events(post(&url, &chat("coder", true)).await).await;
    assert_eq!(ev.last().unwrap(), "[DONE]");
    let error: Value = serde_json::from_str(&ev[ev.len() - 2]).unwrap();
    assert!(error["error"]["message"].is_string(), "an error event after the broken stream: {ev:?}");
    assert_eq!(b.count(), before, "no retry once the client has bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_circuit_breaker_opens_half_opens_and_closes() {
    let (a, b) = (start_stub("a", false).await, start_stub("b", false).await);
    let providers = format!(
        "providers:\n{}{}circuit_breaker:\n  failures: 2\n  window_s: 60\n  cooldown_s: 0.5\n",
        provider_yaml(&a, false, "    health: {enabled: false}\n"),
        provider_yaml(&b, false, "    health: {enabled: false}\n")
    );
    let (url, _, _config) = start_gateway(&providers, &two_route_mapping("a", "b"), None).await;
    a.set(Behaviour::Status(500));
    for _ in 0..2 {
        assert_eq!(post(&url, &chat("coder", false)).await.headers()["x-hearth-backend"], "b");
    }
    assert_eq!(a.count(), 2);
    let r = post(&url, &chat("coder", false)).await;
    assert_eq!(r.headers()["x-hearth-attempts"], "1", "the open breaker skips a");
    assert_eq!(a.count(), 2, "a was not called while open");
    tokio::time::sleep(Duration::from_millis(600)).await;
    a.set(Behaviour::Answer);
    let r = post(&url, &chat("coder", false)).await;
    assert_eq!(r.headers()["x-hearth-backend"], "a", "the half-open probe went to a and succeeded");
    assert_eq!(post(&url, &chat("coder", false)).await.headers()["x-hearth-backend"], "a", "closed again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_probes_take_backends_out_and_back() {
    let (a, b) = (start_stub("a", false).await, start_stub("b", true).await);
    let fast = "    health: {interval_s: 0.05}\n";
    let providers = format!("providers:\n{}{}", provider_yaml(&a, false, fast), provider_yaml(&b, true, fast));
    let (url, _, _config) = start_gateway(&providers, &two_route_mapping("a", "b"), None).await;
    let ready = || async { reqwest::get(format!("{url}/health/readiness")).await.unwrap().status() };
    assert_eq!(ready().await, 200);
    *a.healthy.lock().unwrap() = false;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = post(&url, &chat("coder", false)).await;
    assert_eq!((r.headers()["x-hearth-backend"].to_str().unwrap(), r.headers()["x-hearth-attempts"].to_str().unwrap()), ("b", "1"));
    assert_eq!(a.count(), 0, "a unhealthy: not even tried");
    assert_eq!(ready().await, 200, "b still serves the model");
    *b.healthy.lock().unwrap() = false;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(ready().await, 503);
    *a.healthy.lock().unwrap() = true;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(post(&url, &chat("coder", false)).await.headers()["x-hearth-backend"], "a");
    let metrics = reqwest::get(format!("{url}/metrics")).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("hearth_gateway:backend_up{backend=\"b\"} 0"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn equal_routes_share_the_load() {
    let (a, b) = (start_stub("a", false).await, start_stub("b", false).await);
    let providers = format!("providers:\n{}{}", provider_yaml(&a, false, ""), provider_yaml(&b, false, ""));
    let mappings = "models:\n  - name: coder\n    routes:\n      - {provider: a, model: m, order: 1}\n      - {provider: b, model: m, order: 1}\n";
    let (url, _, _config) = start_gateway(&providers, mappings, None).await;
    let requests = (0..40).map(|_| {
        let url = url.clone();
        async move { post(&url, &chat("coder", true)).await.text().await.unwrap() }
    });
    futures_util::future::join_all(requests).await;
    let (na, nb) = (a.count(), b.count());
    assert_eq!(na + nb, 40);
    assert!(na >= 10 && nb >= 10, "spread: a {na}, b {nb}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ollama_backends_speak_openai_through_the_gateway() {
    let (a, o) = (start_stub("a", false).await, start_stub("ollama", true).await);
    let providers = format!("providers:\n{}{}", provider_yaml(&a, false, ""), provider_yaml(&o, true, ""));
    let (url, _, _config) = start_gateway(&providers, &two_route_mapping("a", "ollama"), None).await;
    a.set(Behaviour::Status(500));
    let r = post(&url, &chat("coder", false)).await;
    assert_eq!(r.headers()["x-hearth-backend"], "ollama");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], WORDS.concat());
    assert_eq!(body["usage"], json!({"prompt_tokens": 9, "completion_tokens": 5, "total_tokens": 14}));
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(*o.last_model.lock().unwrap(), "up-ollama");

    let mut streaming = chat("coder", true);
    streaming["stream_options"] = json!({"include_usage": true});
    let ev = events(post(&url, &streaming).await).await;
    let first: Value = serde_json::from_str(&ev[0]).unwrap();
    assert_eq!(first["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(streamed_text(&ev), WORDS.concat());
    assert_eq!(ev.last().unwrap(), "[DONE]");
    let usage: Value = serde_json::from_str(&ev[ev.len() - 2]).unwrap();
    assert_eq!(usage["usage"]["total_tokens"], 14);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn context_overflow_moves_to_the_long_context_model() {
    let (a, long) = (start_stub("a", false).await, start_stub("long", false).await);
    let providers = format!("providers:\n{}{}", provider_yaml(&a, false, ""), provider_yaml(&long, false, ""));
    let mappings = "models:\n  - name: coder\n    routes:\n      - {provider: a, model: small}\n    context_window_fallback: coder-long\n  - name: coder-long\n    routes:\n      - {provider: long, model: big}\n";
    let (url, _, _config) = start_gateway(&providers, mappings, None).await;
    a.set(Behaviour::ContextOverflow);
    let r = post(&url, &chat("coder", false)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-hearth-backend"], "long");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["model"], "coder-long");
    long.set(Behaviour::ContextOverflow);
    let r = post(&url, &chat("coder", false)).await;
    assert_eq!(r.status(), 400, "no further fallback: the client sees the overflow");
    let body: Value = r.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("maximum context length"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_limits_and_usage_records() {
    keys_flow("gateway.db").await;
}

/// The same with the keys in Postgres, when `HEARTH_TEST_POSTGRES_URL` names one (`.ci/run` starts one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_limits_and_usage_records_in_postgres() {
    match std::env::var("HEARTH_TEST_POSTGRES_URL").ok().filter(|url| !url.is_empty()) {
        Some(url) => keys_flow(&url).await,
        None => eprintln!("HEARTH_TEST_POSTGRES_URL is not set: the Postgres key store is not exercised here"),
    }
}

async fn keys_flow(location: &str) {
    let a = start_stub("a", false).await;
    let providers = format!("providers:\n{}", provider_yaml(&a, false, ""));
    let mappings = "models:\n  - name: coder\n    routes:\n      - {provider: a, model: m}\n";
    let (url, gateway, _config) = start_gateway(&providers, mappings, Some(location)).await;
    let store = gateway.keys.clone().unwrap();
    let name = format!("team-{}", rand::random::<u32>());
    let key = store.create(&hearth_gateway::KeyPolicy { name: name.clone(), rpm: Some(2), ..Default::default() }).await.unwrap();
    let client = reqwest::Client::new();
    let send = |key: Option<&str>| {
        let mut r = client.post(format!("{url}/v1/chat/completions")).json(&chat("coder", false));
        if let Some(k) = key {
            r = r.bearer_auth(k);
        }
        r.send()
    };
    assert_eq!(send(None).await.unwrap().status(), 401);
    assert_eq!(send(Some("sk-hearth-nope")).await.unwrap().status(), 401);
    assert_eq!(send(Some(&key)).await.unwrap().status(), 200);
    assert_eq!(send(Some(&key)).await.unwrap().status(), 200);
    let limited = send(Some(&key)).await.unwrap();
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().contains_key("retry-after"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let usage = store.usage_summary().await.unwrap();
    let mine: Vec<_> = usage.into_iter().filter(|row| row.0.as_deref() == Some(name.as_str())).collect();
    assert_eq!(mine, vec![(Some(name.clone()), "coder".to_string(), "a".to_string(), 14, 10)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_route_to_openai_and_ollama_backends() {
    let (a, o) = (start_stub("a", false).await, start_stub("ollama", true).await);
    let providers = format!("providers:\n{}{}", provider_yaml(&a, false, ""), provider_yaml(&o, true, ""));
    let (url, _, _config) = start_gateway(&providers, &two_route_mapping("a", "ollama"), None).await;
    let client = reqwest::Client::new();
    let send = |body: Value| client.post(format!("{url}/v1/completions")).json(&body).send();
    let r = send(json!({"model": "coder", "prompt": "Say", "max_tokens": 5})).await.unwrap();
    assert_eq!(r.headers()["x-hearth-backend"], "a");
    let v: Value = r.json().await.unwrap();
    assert_eq!((v["model"].as_str(), v["choices"][0]["text"].as_str()), (Some("coder"), Some(WORDS.concat().as_str())));

    a.set(Behaviour::Status(502));
    let r = send(json!({"model": "coder", "prompt": "Say", "max_tokens": 5, "stream": true})).await.unwrap();
    assert_eq!(r.headers()["x-hearth-backend"], "ollama");
    let ev = events(r).await;
    let text: String = ev.iter().filter_map(|e| serde_json::from_str::<Value>(e).ok()).filter_map(|c| c["choices"][0]["text"].as_str().map(str::to_string)).collect();
    assert_eq!(text, WORDS.concat());
    let last: Value = serde_json::from_str(&ev[ev.len() - 2]).unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "length");
    assert_eq!(last["object"], "text_completion");
    assert_eq!(ev.last().unwrap(), "[DONE]");
}
