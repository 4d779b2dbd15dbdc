//! The gateway's `/status` (per backend: health, breaker, in flight, requests, answer latency)
//! and its web pages, which `--no-ui` turns off.

use hearth_gateway::FrontLimits;
use serde_json::Value;
use crate::support::*;

fn mapping() -> String {
    "models:\n  - name: coder\n    routes:\n      - provider: a\n        model: up-a\n      - provider: b\n        model: up-b\n".to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_tells_each_backend_and_the_pages_are_served() {
    let (a, b) = (start_stub("a", false).await, start_stub("b", false).await);
    let providers = format!("providers:\n{}{}", provider_yaml(&a, false, ""), provider_yaml(&b, false, ""));
    let (url, _gw, _config) = start_gateway(&providers, &mapping(), None).await;
    assert_eq!(post(&url, &chat("coder", false)).await.status(), 200);
    a.set(Behaviour::Status(500));
    assert_eq!(post(&url, &chat("coder", false)).await.status(), 200, "served by b after a failed");

    let status: Value = reqwest::get(format!("{url}/status")).await.unwrap().json().await.unwrap();
    assert_eq!(status["kind"], "gateway");
    assert_eq!(status["models"], serde_json::json!(["coder"]));
    assert_eq!(status["requests"]["served"], 2);
    let backends = status["backends"].as_array().unwrap();
    assert_eq!(backends.len(), 2);
    let (first, second) = (&backends[0], &backends[1]);
    assert_eq!(first["name"], "a");
    assert_eq!(first["models"], serde_json::json!(["coder"]));
    assert_eq!(first["requests"], 1);
    assert_eq!(first["failures"], 1);
    assert_eq!(first["in_flight"], 0);
    assert_eq!(first["healthy"], true);
    assert_eq!(first["breaker"], "closed", "one failure does not open it");
    assert_eq!(second["requests"], 1);
    for backend in backends {
        let latency = &backend["latency_s"];
        assert_eq!(latency["count"], 1, "{backend}");
        assert_eq!(latency["bounds"].as_array().unwrap().len(), latency["cumulative"].as_array().unwrap().len());
        assert!(latency["sum"].as_f64().unwrap() > 0.0);
    }
    let metrics = reqwest::get(format!("{url}/metrics")).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("hearth_gateway:backend_latency_seconds_count{backend=\"b\"} 1"), "{metrics}");

    let page = reqwest::get(format!("{url}/")).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-security-policy"].to_str().unwrap().contains("script-src 'self'"));
    assert_eq!(reqwest::get(format!("{url}/dashboard")).await.unwrap().status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_ui_leaves_only_the_api() {
    let a = start_stub("a", false).await;
    let b = start_stub("b", false).await;
    let providers = format!("providers:\n{}{}", provider_yaml(&a, false, ""), provider_yaml(&b, false, ""));
    let front = FrontLimits { ui: false, ..Default::default() };
    let (url, _gw, _config) = start_gateway_with_front(&providers, &mapping(), None, front).await;
    for path in ["/", "/dashboard"] {
        let response = reqwest::get(format!("{url}{path}")).await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }
    assert_eq!(reqwest::get(format!("{url}/status")).await.unwrap().status(), 200);
}
