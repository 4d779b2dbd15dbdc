//! `hearth download` against a fake Hugging Face hub on 127.0.0.1 (`HF_ENDPOINT`): the model
//! directory's files, and only those, land in the cache layout under `HF_HOME`, where
//! `hearth serve ORG/NAME` finds them; `HF_HUB_OFFLINE=1` forbids the download.

mod support;

use std::collections::HashMap;
use std::process::Command;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

type Requests = Arc<Mutex<Vec<String>>>;

fn files() -> HashMap<&'static str, Vec<u8>> {
    HashMap::from([
        ("config.json", br#"{"model_type": "qwen2"}"#.to_vec()),
        ("model.safetensors", (0..5000u32).map(|i| (i % 251) as u8).collect()),
        ("tokenizer.json", b"{}".to_vec()),
        ("README.md", b"# not needed".to_vec()),
    ])
}

async fn info(Path((org, name, _rev)): Path<(String, String, String)>) -> impl IntoResponse {
    let siblings: Vec<_> = files().keys().map(|f| json!({ "rfilename": f })).collect();
    Json(json!({ "id": format!("{org}/{name}"), "sha": COMMIT, "siblings": siblings }))
}

/// Serves a file with the headers hf-hub reads (etag, x-repo-commit, Content-Range).
async fn resolve(State(requests): State<Requests>, Path((_, _, _, file)): Path<(String, String, String, String)>, headers: HeaderMap) -> axum::response::Response {
    requests.lock().unwrap().push(file.clone());
    let Some(body) = files().remove(file.as_str()) else { return StatusCode::NOT_FOUND.into_response() };
    let range = headers.get("range").and_then(|v| v.to_str().ok()).and_then(|r| r.strip_prefix("bytes=")).unwrap_or("0-").to_string();
    let (start, end) = range.split_once('-').unwrap();
    let start: usize = start.parse().unwrap();
    let end: usize = if end.is_empty() { body.len() - 1 } else { end.parse().unwrap() };
    let content_range = format!("bytes {start}-{end}/{}", body.len());
    let etag = format!("\"etag-{file}-{}\"", body.len());
    let headers = [("etag", etag), ("x-repo-commit", COMMIT.to_string()), ("content-range", content_range)];
    (StatusCode::PARTIAL_CONTENT, headers, body[start..=end].to_vec()).into_response()
}

fn fake_hub(requests: Requests) -> std::net::SocketAddr {
    support::serve_on_localhost(
        Router::new()
            .route("/api/models/{org}/{name}/revision/{rev}", get(info))
            .route("/{org}/{name}/resolve/{rev}/{*file}", get(resolve))
            .with_state(requests),
    )
}

#[test]
fn downloads_the_model_files_into_the_hub_cache() {
    let requests = Requests::default();
    let addr = fake_hub(requests.clone());
    let home = std::env::temp_dir().join(format!("hearth-fake-hub-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    let hearth = |offline: bool| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hearth"));
        cmd.args(["download", "TestOrg/Tiny-Model"]).env("HF_HOME", &home).env("HF_ENDPOINT", format!("http://{addr}")).env_remove("HF_HUB_CACHE");
        if offline {
            cmd.env("HF_HUB_OFFLINE", "1");
        }
        cmd.output().unwrap()
    };

    let refused = hearth(true);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("HF_HUB_OFFLINE is set"), "{}", String::from_utf8_lossy(&refused.stderr));

    let out = hearth(false);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let snapshot = home.join("hub/models--TestOrg--Tiny-Model/snapshots").join(COMMIT);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), snapshot.display().to_string());
    for (name, body) in files() {
        if name == "README.md" {
            assert!(!snapshot.join(name).exists(), "README.md is not part of a model directory");
        } else {
            assert_eq!(std::fs::read(snapshot.join(name)).unwrap(), body, "{name}");
        }
    }
    assert_eq!(std::fs::read_to_string(home.join("hub/models--TestOrg--Tiny-Model/refs/main")).unwrap().trim(), COMMIT);
    assert!(!requests.lock().unwrap().iter().any(|f| f == "README.md"));

    // a second run finds the files in the cache and downloads nothing
    let before = requests.lock().unwrap().len();
    assert!(hearth(false).status.success());
    assert_eq!(requests.lock().unwrap().len(), before, "cached files are not fetched again");
    let _ = std::fs::remove_dir_all(&home);
}
