//! The gateway routes the Responses and Messages APIs: to hearth under the public model name,
//! streamed and not, past a backend that speaks only Chat Completions (its 404 sends the
//! request on to the next route), with Anthropic-shaped errors and `x-api-key` on /v1/messages,
//! and a clear error naming the backends when none speaks the API.

use serde_json::{json, Value};
use crate::support::*;

async fn send(url: &str, path: &str, body: &Value) -> reqwest::Response {
    reqwest::Client::new().post(format!("{url}{path}")).json(body).send().await.unwrap()
}

/// (event name, data) of each frame.
async fn typed_events(response: reqwest::Response) -> Vec<(String, Value)> {
    let text = response.text().await.unwrap();
    text.split("\n\n")
        .filter(|frame| !frame.trim().is_empty())
        .map(|frame| {
            let (event, data) = frame.split_once('\n').expect("event and data lines");
            (event.strip_prefix("event: ").expect("event line").to_string(), serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_and_messages_reach_a_backend_that_speaks_them() {
    let (hearth_addr, _kill, _hearth) = start_hearth().await;
    let chat_only = start_stub("chat-only", false).await;
    let providers = format!(
        "providers:\n{}  - name: hearth\n    kind: hearth\n    base_url: http://{hearth_addr}/v1\n",
        provider_yaml(&chat_only, false, "")
    );
    let mappings = "models:\n  - name: coder\n    routes:\n      - {provider: chat-only, model: x}\n      - {provider: hearth, model: smollm}\n  - name: old\n    routes:\n      - {provider: chat-only, model: x}\n";
    let (url, _gateway, _config) = start_gateway(&providers, mappings, None).await;

    let ask = json!({"model": "coder", "input": "Say hi.", "temperature": 0, "max_output_tokens": 8});
    let response = send(&url, "/v1/responses", &ask).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-hearth-backend"], "hearth");
    let answer: Value = response.json().await.unwrap();
    assert_eq!((answer["object"].as_str(), answer["model"].as_str()), (Some("response"), Some("coder")));
    assert!(answer["usage"]["output_tokens"].as_u64().unwrap() > 0);

    let mut streamed = ask.clone();
    streamed["stream"] = json!(true);
    let events = typed_events(send(&url, "/v1/responses", &streamed).await).await;
    assert!(events.iter().all(|(name, data)| data["type"] == name.as_str()));
    assert_eq!(events[0].0, "response.created");
    let last = &events.last().unwrap().1;
    let text = |response: &Value| response["output"][0]["content"][0]["text"].as_str().map(str::to_string);
    assert_eq!(last["response"]["model"], "coder");
    assert_eq!(text(&last["response"]), text(&answer), "the same greedy answer, streamed");

    let message = json!({"model": "coder", "max_tokens": 8, "temperature": 0, "messages": [{"role": "user", "content": "Say hi."}]});
    let response = reqwest::Client::new().post(format!("{url}/v1/messages")).header("x-api-key", "unused").json(&message).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!((answer["type"].as_str(), answer["model"].as_str()), (Some("message"), Some("coder")));
    let mut streamed = message.clone();
    streamed["stream"] = json!(true);
    let events = typed_events(send(&url, "/v1/messages", &streamed).await).await;
    assert_eq!(events[0].1["message"]["model"], "coder");
    assert_eq!(events.last().unwrap().0, "message_stop");
    let text: String = events.iter().filter_map(|(_, d)| d["delta"]["text"].as_str()).collect();
    assert_eq!(text, answer["content"][0]["text"].as_str().unwrap());

    // hearth's own 400 passes through in Anthropic's shape; the gateway's own errors too
    let (bad, unknown) = (json!({"model": "coder", "messages": []}), json!({"model": "nope", "max_tokens": 8, "messages": []}));
    for (body, status, kind) in [(bad, 400, "invalid_request_error"), (unknown, 404, "not_found_error")] {
        let response = send(&url, "/v1/messages", &body).await;
        assert_eq!(response.status(), status);
        let error: Value = response.json().await.unwrap();
        assert_eq!((error["type"].as_str(), error["error"]["type"].as_str()), (Some("error"), Some(kind)), "{error}");
    }

    // a model whose only backend speaks Chat Completions alone: a clear 503 naming it
    let response = send(&url, "/v1/responses", &json!({"model": "old", "input": "hi"})).await;
    assert_eq!(response.status(), 503);
    let error: Value = response.json().await.unwrap();
    let text = error["error"]["message"].as_str().unwrap();
    assert!(text.contains("chat-only") && text.contains("does not serve /responses"), "{text}");
}
