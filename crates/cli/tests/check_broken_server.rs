//! `hearth check` against a deliberately broken fake server: wrong shapes, a 500 health
//! endpoint, a stream without `[DONE]`, no errors for bad requests. The report names the
//! failures and the command exits non-zero.

mod support;

use std::process::Command;

use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

async fn chat(Json(body): Json<Value>) -> axum::response::Response {
    if body["stream"] == true {
        // no role, no finish_reason, no [DONE]
        let events = "data: {\"id\":\"a\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\n";
        return ([("content-type", "text/event-stream")], events).into_response();
    }
    // wrong shape: numeric id, no role, no usage, 200 even for unknown models
    Json(json!({"id": 1, "choices": [{"message": {"content": "no code here"}}]})).into_response()
}

fn fake_server() -> std::net::SocketAddr {
    support::serve_on_localhost(
        Router::new()
            .route("/health", get(|| async { (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "boom") }))
            .route("/v1/models", get(|| async { Json(json!({"object": "list", "data": [{"id": "fake"}]})) }))
            .route("/v1/chat/completions", post(chat)),
    )
}

#[test]
fn a_broken_server_fails_the_check() {
    let addr = fake_server();
    let report_path = std::env::temp_dir().join(format!("hearth-check-broken-{}.md", std::process::id()));
    let output = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["check", &format!("http://{addr}"), "--skip-performance", "--json", "--report"])
        .arg(&report_path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", String::from_utf8_lossy(&output.stderr));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    let status = |name: &str| {
        let result = report["results"].as_array().unwrap().iter().find(|r| r["name"] == name).unwrap();
        result["status"].as_str().unwrap().to_string()
    };
    assert_eq!(status("Health endpoint"), "fail");
    assert_eq!(status("Model availability"), "pass");
    for name in ["Chat completion compliance", "Streaming (SSE)", "Sampling controls", "Error handling", "Code generation quality"] {
        assert_eq!(status(name), "fail", "{name}");
    }
    let markdown = std::fs::read_to_string(&report_path).unwrap();
    let _ = std::fs::remove_file(&report_path);
    assert!(markdown.contains("FAIL: 6 required check(s) failed"), "{markdown}");
    assert!(markdown.contains("[ ] the last event is `data: [DONE]`"), "{markdown}");
    assert!(markdown.contains("[ ] choices[0].message.role is \"assistant\""), "{markdown}");
    assert!(markdown.contains("[ ] unknown model: status 404 (got 200)"), "{markdown}");
}
