//! Requests recorded from real agents (Claude Code 2.1.328, Codex CLI 0.169.0, the OpenAI
//! Agents SDK 0.25.0), replayed: `tests/fixtures/agents/*.json` keep every field and block the
//! agent sent, with long texts cut (scripts/agents/make_fixtures.py). Each must be answered
//! with 200 and a well-formed answer, streamed as recorded and with the stream flag flipped,
//! so that a client's change is caught by a failing test rather than by a user.

use std::path::PathBuf;

use hearth_engine::EngineConfig;
use serde_json::{json, Value};

use crate::support::*;

fn fixtures() -> Vec<(String, Value)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/agents");
    let mut found: Vec<(String, Value)> = std::fs::read_dir(&dir)
        .expect("fixtures folder")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .map(|path| {
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            (name, serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap())
        })
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

/// Sends a fixture's request with its recorded headers; returns status and body text.
async fn replay(server: &TestServer, fixture: &Value, body: &Value) -> (u16, String) {
    let mut request = client().post(server.url(fixture["path"].as_str().unwrap())).json(body);
    for (name, value) in fixture["headers"].as_object().unwrap() {
        request = request.header(name.as_str(), value.as_str().unwrap());
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// The SSE frames of a body as (event name, data); the event name is empty where none is given.
fn frames(text: &str) -> Vec<(String, String)> {
    text.split("\n\n")
        .filter(|frame| !frame.trim().is_empty())
        .map(|frame| {
            let event = frame.lines().find_map(|l| l.strip_prefix("event: ")).unwrap_or("").to_string();
            let data = frame.lines().find_map(|l| l.strip_prefix("data: ")).unwrap_or_else(|| panic!("a frame without data: {frame:?}"));
            (event, data.to_string())
        })
        .collect()
}

/// Checks a streamed answer of `path`'s API: typed events named as their data, in order, to
/// the API's final event.
fn assert_well_formed_stream(name: &str, path: &str, text: &str) {
    let frames = frames(text);
    assert!(!frames.is_empty(), "{name}: an empty stream");
    if path.starts_with("/v1/chat/completions") {
        assert_eq!(frames.last().unwrap().1, "[DONE]", "{name}");
        let first: Value = serde_json::from_str(&frames[0].1).unwrap();
        assert_eq!(first["choices"][0]["delta"]["role"], "assistant", "{name}: role first");
        return;
    }
    let events: Vec<(String, Value)> = frames.iter().map(|(e, d)| (e.clone(), serde_json::from_str(d).unwrap())).collect();
    for (event, data) in &events {
        assert_eq!(data["type"], event.as_str(), "{name}: the event name is its data's type");
    }
    let names: Vec<&str> = events.iter().map(|(e, _)| e.as_str()).collect();
    if path.starts_with("/v1/messages") {
        assert_eq!(names[0], "message_start", "{name}");
        assert_eq!(&names[names.len() - 2..], ["message_delta", "message_stop"], "{name}");
    } else {
        assert_eq!(names[0], "response.created", "{name}");
        assert!(matches!(*names.last().unwrap(), "response.completed" | "response.incomplete"), "{name}: {names:?}");
    }
}

/// Checks a non-streamed answer's shape.
fn assert_well_formed_answer(name: &str, path: &str, text: &str) {
    let answer: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{name}: not JSON ({e}): {text}"));
    if path.starts_with("/v1/messages") {
        assert_eq!((answer["type"].as_str(), answer["role"].as_str()), (Some("message"), Some("assistant")), "{name}");
        assert!(answer["stop_reason"].is_string() && answer["usage"]["output_tokens"].as_u64() > Some(0), "{name}: {answer}");
    } else if path.starts_with("/v1/responses") {
        assert!(matches!(answer["status"].as_str(), Some("completed" | "incomplete")), "{name}: {answer}");
    } else {
        assert!(answer["choices"][0]["finish_reason"].is_string(), "{name}: {answer}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorded_agent_requests_are_answered_streamed_and_not() {
    // The recorded max_tokens (32000) meet a context just longer than the longest fixture's
    // prompt (~330 tokens on SmolLM2, whose template shows no tools): answers run to its end
    // with the length reason, which bounds the test's time at the recorded temperature.
    let engine = EngineConfig { kv_cache_memory: Some(64 << 20), max_model_len: Some(384), ..Default::default() };
    let server = start_with(server_config(), engine).await;
    let fixtures = fixtures();
    assert!(fixtures.len() >= 5, "the recorded fixtures are there");
    for (name, fixture) in &fixtures {
        let path = fixture["path"].as_str().unwrap();
        let recorded = &fixture["body"];
        let streamed = recorded["stream"].as_bool().unwrap_or(false);
        let (status, text) = replay(&server, fixture, recorded).await;
        assert_eq!(status, 200, "{name} as recorded: {text}");
        match streamed {
            true => assert_well_formed_stream(name, path, &text),
            false => assert_well_formed_answer(name, path, &text),
        }
        let mut flipped = recorded.clone();
        flipped["stream"] = json!(!streamed);
        if streamed {
            flipped.as_object_mut().unwrap().remove("stream_options");
        }
        let (status, text) = replay(&server, fixture, &flipped).await;
        assert_eq!(status, 200, "{name} with stream {}: {text}", !streamed);
        match streamed {
            true => assert_well_formed_answer(name, path, &text),
            false => assert_well_formed_stream(name, path, &text),
        }
    }
}
