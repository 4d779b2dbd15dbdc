//! Anthropic's Messages API on SmolLM2: the answer's shape and usage, the streaming events in
//! their order (each `event:` name matching its data's type), a forced tool_use and a
//! tool_result round trip, count_tokens, x-api-key, and errors in Anthropic's shape.

use serde_json::{json, Value};
use crate::support::*;

/// (event name, data) of each frame of an Anthropic stream.
async fn anthropic_events(server: &TestServer, body: &Value) -> Vec<(String, Value)> {
    typed_events(server, "/v1/messages", body).await
}

fn weather_tool() -> Value {
    json!([{"name": "get_weather", "description": "Get the weather in a city",
        "input_schema": {"type": "object", "additionalProperties": false, "required": ["city"], "properties": {"city": {"type": "string", "maxLength": 24}}}}])
}

fn assert_anthropic_error(status: u16, body: &Value, want_status: u16, kind: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["type"], "error", "{body}");
    assert_eq!(body["error"]["type"], kind, "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_answer_and_stream_in_anthropic_shapes() {
    let server = start().await;
    let body = json!({"model": MODEL_NAME, "max_tokens": 24, "temperature": 0, "system": "You are terse.",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Count from 1 to 5."}]}]});
    let (status, message) = post(&server, "/v1/messages", &body).await;
    assert_eq!(status, 200, "{message}");
    assert!(message["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!((message["type"].as_str(), message["role"].as_str()), (Some("message"), Some("assistant")));
    assert_eq!(message["model"], MODEL_NAME);
    assert_eq!(message["content"][0]["type"], "text");
    let text = message["content"][0]["text"].as_str().unwrap().to_string();
    assert!(["end_turn", "max_tokens"].contains(&message["stop_reason"].as_str().unwrap()), "{message}");
    let usage = &message["usage"];
    assert!(usage["input_tokens"].as_u64().unwrap() > 5 && usage["output_tokens"].as_u64().unwrap() > 0);

    let (status, counted) = post(&server, "/v1/messages/count_tokens", &body).await;
    assert_eq!((status, &counted["input_tokens"]), (200, &usage["input_tokens"]));

    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let events = anthropic_events(&server, &streamed).await;
    for (name, data) in &events {
        assert_eq!(data["type"], name.as_str(), "the event name is the data's type");
    }
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(&names[..3], ["message_start", "ping", "content_block_start"]);
    assert_eq!(&names[names.len() - 3..], ["content_block_stop", "message_delta", "message_stop"]);
    assert!(names[3..names.len() - 3].iter().all(|n| *n == "content_block_delta"), "{names:?}");
    assert_eq!(events[0].1["message"]["usage"]["input_tokens"], usage["input_tokens"]);
    let deltas: String = events.iter().filter_map(|(_, d)| d["delta"]["text"].as_str()).collect();
    assert_eq!(deltas, text, "the stream assembles to the same greedy text");
    let delta = &events[names.len() - 2].1;
    assert_eq!(delta["delta"]["stop_reason"], message["stop_reason"]);
    assert_eq!(delta["usage"]["output_tokens"], usage["output_tokens"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_use_and_tool_result_round_trip() {
    let server = start().await;
    let body = json!({"model": MODEL_NAME, "max_tokens": 80, "temperature": 0, "tools": weather_tool(),
        "tool_choice": {"type": "tool", "name": "get_weather"},
        "messages": [{"role": "user", "content": "What is the weather in Paris?"}]});
    let (status, message) = post(&server, "/v1/messages", &body).await;
    assert_eq!(status, 200, "{message}");
    assert_eq!(message["stop_reason"], "tool_use", "{message}");
    let tool_use = message["content"].as_array().unwrap().iter().find(|b| b["type"] == "tool_use").expect("a tool_use block").clone();
    assert!(tool_use["id"].as_str().unwrap().starts_with("toolu_"));
    assert_eq!(tool_use["name"], "get_weather");
    assert!(tool_use["input"]["city"].is_string(), "{tool_use}");

    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let events = anthropic_events(&server, &streamed).await;
    let start = events.iter().find(|(n, d)| n == "content_block_start" && d["content_block"]["type"] == "tool_use").expect("tool_use block");
    assert_eq!(start.1["content_block"]["input"], json!({}));
    let partial: String = events.iter().filter_map(|(_, d)| d["delta"]["partial_json"].as_str()).collect();
    assert_eq!(serde_json::from_str::<Value>(&partial).unwrap(), tool_use["input"]);
    assert_eq!(events.iter().rev().nth(1).unwrap().1["delta"]["stop_reason"], "tool_use");

    let follow_up = json!({"model": MODEL_NAME, "max_tokens": 24, "temperature": 0, "tools": weather_tool(),
        "messages": [
            {"role": "user", "content": "What is the weather in Paris?"},
            {"role": "assistant", "content": [tool_use]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_use["id"], "content": "22 degrees, sunny"}]}]});
    let (status, answer) = post(&server, "/v1/messages", &follow_up).await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer["content"].as_array().is_some_and(|c| !c.is_empty()), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_errors_use_anthropic_shapes() {
    let server = start().await;
    let user = json!([{"role": "user", "content": "hi"}]);
    let cases = [
        (json!({"messages": user}), 400, "invalid_request_error"),
        (json!({"max_tokens": 0, "messages": user}), 400, "invalid_request_error"),
        (json!({"max_tokens": 8, "messages": [{"role": "user", "content": [{"type": "image", "source": {}}]}]}), 400, "invalid_request_error"),
        (json!({"max_tokens": 8, "messages": [{"role": "robot", "content": "hi"}]}), 400, "invalid_request_error"),
        (json!({"max_tokens": 8, "messages": user, "tool_choice": {"type": "tool"}}), 400, "invalid_request_error"),
        (json!({"max_tokens": 8, "model": "no-such-model", "messages": user}), 404, "not_found_error"),
    ];
    for (body, status, kind) in cases {
        let (got, response) = post(&server, "/v1/messages", &body).await;
        assert_anthropic_error(got, &response, status, kind);
    }
    let raw = client().post(server.url("/v1/messages")).body("{\"messages\": [").send().await.unwrap();
    let status = raw.status().as_u16();
    assert_anthropic_error(status, &raw.json().await.unwrap(), 400, "invalid_request_error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_api_key_is_accepted() {
    let config = hearth_server::ServerConfig { api_key: Some("sekret".into()), ..server_config() };
    let server = start_with(config, engine_config()).await;
    let body = json!({"max_tokens": 4, "messages": [{"role": "user", "content": "hi"}]});
    let denied = client().post(server.url("/v1/messages")).json(&body).send().await.unwrap();
    let status = denied.status().as_u16();
    assert_anthropic_error(status, &denied.json().await.unwrap(), 401, "authentication_error");
    let allowed = client()
        .post(server.url("/v1/messages"))
        .header("x-api-key", "sekret")
        .header("anthropic-version", "2023-06-01")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), 200);
}

/// The official `anthropic` Python package (from `scripts/python-clients.sh`, which `.ci/run`
/// runs) drives create, stream, tool_use and count_tokens; without that venv the test says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_anthropic_sdk_works_unchanged() {
    let server = start().await;
    run_sdk_script(&server, "anthropic_sdk.py").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_sequence_is_reported() {
    let server = start().await;
    let body = json!({"model": MODEL_NAME, "max_tokens": 40, "temperature": 0, "stop_sequences": ["3"],
        "messages": [{"role": "user", "content": "Count from 1 to 5, separated by commas."}]});
    let (status, message) = post(&server, "/v1/messages", &body).await;
    assert_eq!(status, 200, "{message}");
    assert_eq!((message["stop_reason"].as_str(), message["stop_sequence"].as_str()), (Some("stop_sequence"), Some("3")), "{message}");
    assert!(!message["content"][0]["text"].as_str().unwrap().contains('3'));
    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let events = anthropic_events(&server, &streamed).await;
    let delta = &events.iter().find(|(n, _)| n == "message_delta").unwrap().1;
    assert_eq!((delta["delta"]["stop_reason"].as_str(), delta["delta"]["stop_sequence"].as_str()), (Some("stop_sequence"), Some("3")));
}
