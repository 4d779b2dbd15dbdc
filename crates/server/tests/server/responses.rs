//! OpenAI's Responses API on SmolLM2: the official `openai` package against it, `store` and
//! `previous_response_id` (in memory, and in SQLite across a restart), the stored response's
//! routes, and errors in OpenAI's shape with a 4xx on every route.

use serde_json::{json, Value};
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_sdk_drives_responses() {
    let server = start().await;
    run_sdk_script(&server, "openai_responses.py").await;
}

fn ask(input: Value, extra: Value) -> Value {
    let mut body = json!({"model": MODEL_NAME, "input": input, "temperature": 0, "max_output_tokens": 16});
    body.as_object_mut().unwrap().extend(extra.as_object().cloned().unwrap_or_default());
    body
}

fn output_text(response: &Value) -> String {
    let message = response["output"].as_array().unwrap().iter().find(|item| item["type"] == "message").expect("a message item");
    message["content"][0]["text"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_responses_continue_and_can_be_deleted() {
    let server = start().await;
    let (status, first) = post(&server, "/v1/responses", &ask(json!("Name a color."), json!({"instructions": "Answer in one word."}))).await;
    assert_eq!(status, 200, "{first}");
    let id = first["id"].as_str().unwrap();
    assert!(id.starts_with("resp_") && first["store"] == true);
    assert_eq!(first["instructions"], "Answer in one word.");

    // previous_response_id replays the earlier input and output, and not the instructions
    let next = json!([{"role": "user", "content": "And another one?"}]);
    let (status, continued) = post(&server, "/v1/responses", &ask(next.clone(), json!({"previous_response_id": id}))).await;
    assert_eq!(status, 200, "{continued}");
    let replay = json!([{"role": "user", "content": "Name a color."},
        {"role": "assistant", "content": [{"type": "output_text", "text": output_text(&first)}]}, next[0]]);
    let (_, replayed) = post(&server, "/v1/responses", &ask(replay, json!({"store": false}))).await;
    assert_eq!(output_text(&continued), output_text(&replayed));
    assert_eq!(continued["usage"]["input_tokens"], replayed["usage"]["input_tokens"]);

    let (status, fetched) = get(&server, &format!("/v1/responses/{id}")).await;
    assert_eq!((status, &fetched), (200, &first));
    let (status, cancel) = post(&server, &format!("/v1/responses/{id}/cancel"), &json!({})).await;
    assert_eq!(status, 400, "{cancel}");
    let deleted = client().delete(server.url(&format!("/v1/responses/{id}"))).send().await.unwrap();
    assert_eq!(deleted.json::<Value>().await.unwrap(), json!({"id": id, "object": "response", "deleted": true}));
    let (status, gone) = get(&server, &format!("/v1/responses/{id}")).await;
    assert_eq!((status, gone["error"]["type"].as_str()), (404, Some("invalid_request_error")));

    // store: false keeps nothing
    let unstored_id = replayed["id"].as_str().unwrap();
    assert_eq!(get(&server, &format!("/v1/responses/{unstored_id}")).await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sqlite_store_survives_a_restart() {
    let dir = std::env::temp_dir().join(format!("hearth-responses-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = || hearth_server::ServerConfig { responses_store: Some(dir.join("responses.db")), ..server_config() };
    let server = start_with(config(), engine_config()).await;
    let (status, first) = post(&server, "/v1/responses", &ask(json!("Name a color."), json!({}))).await;
    assert_eq!(status, 200, "{first}");
    server.shutdown().await;

    let server = start_with(config(), engine_config()).await;
    let id = first["id"].as_str().unwrap();
    assert_eq!(get(&server, &format!("/v1/responses/{id}")).await, (200, first.clone()));
    let body = ask(json!("And another one?"), json!({"previous_response_id": id}));
    let (status, continued) = post(&server, "/v1/responses", &body).await;
    assert_eq!(status, 200, "{continued}");
    assert!(continued["usage"]["input_tokens"].as_u64() > first["usage"]["input_tokens"].as_u64());
    server.shutdown().await;
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_errors_are_openai_errors() {
    let server = start().await;
    let cases = [
        (json!({"input": []}), "input"),
        (json!({"input": 5}), "input"),
        (json!({"input": [{"type": "message", "content": "x"}]}), "input[0].role"),
        (json!({"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "data:"}]}]}), "input[0].content[0]"),
        (json!({"input": [{"type": "computer_call_output", "call_id": "c"}]}), "input[0].type"),
        (json!({"input": "hi", "previous_response_id": "resp_missing"}), "previous_response_id"),
        (json!({"input": "hi", "background": true}), "background"),
        (json!({"input": "hi", "text": {"format": {"type": "yaml"}}}), "text.format.type"),
        (json!({"input": "hi", "tool_choice": {"type": "web_search"}}), "tool_choice"),
        (json!({"input": "hi", "max_output_tokens": -1}), "max_output_tokens"),
        (json!({"input": "hi", "temperature": "hot"}), "temperature"),
    ];
    for (body, param) in cases {
        let (status, response) = post(&server, "/v1/responses", &body).await;
        assert_eq!(status, 400, "{body} -> {response}");
        assert_eq!(response["error"]["type"], "invalid_request_error", "{response}");
        assert_eq!(response["error"]["param"], param, "{body} -> {response}");
    }
    let (status, response) = post(&server, "/v1/responses", &json!({"model": "nope", "input": "hi"})).await;
    assert_eq!((status, response["error"]["code"].as_str()), (404, Some("model_not_found")));
    for (method, path) in [("POST", "/v1/responses"), ("POST", "/v1/responses/resp_x/cancel")] {
        let request = client().request(method.parse().unwrap(), server.url(path)).body("{\"input\": [");
        let response = request.header("content-type", "application/json").send().await.unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        assert!((400..500).contains(&status) && body["error"]["message"].is_string(), "{path}: {status} {body}");
    }
    let (status, missing) = get(&server, "/v1/responses/resp_x").await;
    assert_eq!((status, missing["error"]["type"].as_str()), (404, Some("invalid_request_error")));
}
