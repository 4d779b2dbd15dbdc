//! hearth itself as the primary backend and an Ollama stub as the fallback: hearth is killed
//! mid-run and every client request still completes, through the fallback, none lost.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_hearth_mid_run_loses_no_request() {
    let (hearth_addr, kill, hearth) = start_hearth().await;

    let ollama = start_stub("ollama", true).await;
    let providers = format!(
        "providers:\n  - name: hearth\n    kind: hearth\n    base_url: http://{hearth_addr}/v1\n    health: {{interval_s: 0.1}}\n{}",
        provider_yaml(&ollama, true, "")
    );
    let mappings = "models:\n  - name: coder\n    routes:\n      - {provider: hearth, model: smollm}\n      - {provider: ollama, model: qwen2.5-coder:7b}\n";
    let (url, _, _config) = start_gateway(&providers, mappings, None).await;

    let done = Arc::new(AtomicUsize::new(0));
    let clients = (0..8).map(|i| {
        let (url, done) = (url.clone(), done.clone());
        async move {
            let mut served_by = Vec::new();
            for j in 0..4 {
                let body = json!({"model": "coder", "max_tokens": 24, "temperature": 0,
                    "messages": [{"role": "user", "content": format!("Say something about {i} and {j}.")}]});
                let r = post(&url, &body).await;
                assert_eq!(r.status(), 200, "client {i} request {j}");
                served_by.push(r.headers()["x-hearth-backend"].to_str().unwrap().to_string());
                let v: Value = r.json().await.unwrap();
                assert!(v["choices"][0]["message"]["content"].is_string());
                assert_eq!(v["model"], "coder");
                done.fetch_add(1, Ordering::SeqCst);
            }
            served_by
        }
    });
    let killer = {
        let done = done.clone();
        async move {
            while done.load(Ordering::SeqCst) < 6 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let _ = kill.send(());
        }
    };
    let (results, _) = tokio::join!(futures_util::future::join_all(clients), killer);
    hearth.await.unwrap().unwrap();
    let all: Vec<String> = results.into_iter().flatten().collect();
    assert_eq!(all.len(), 32, "every request completed");
    let by_hearth = all.iter().filter(|b| *b == "hearth").count();
    assert!(by_hearth >= 6, "hearth served the first requests ({by_hearth})");
    assert!(all.len() - by_hearth >= 1, "the fallback served the rest");
    assert!(ollama.count() >= 1);
}
