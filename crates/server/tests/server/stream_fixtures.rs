//! The streamed bytes of `/v1/responses` and `/v1/messages` against fixtures written from
//! OpenAI's and Anthropic's published event specifications: event names, their order, the
//! `event:`/`data:` framing and every field of every event, byte by byte. Only what differs
//! from run to run (ids, clocks, generated text, prefix-cache hits) is masked before comparing.
//! `HEARTH_WRITE_FIXTURES=1` rewrites the files (review the diff against the specification).

use serde_json::{json, Value};
use crate::support::*;

/// String fields whose values are ids or generated text.
const MASKED_STRINGS: [&str; 7] = ["id", "item_id", "call_id", "delta", "text", "arguments", "partial_json"];
/// Number fields that are clocks or depend on what the prefix cache holds.
const MASKED_NUMBERS: [&str; 4] = ["created_at", "completed_at", "cached_tokens", "cache_read_input_tokens"];

/// `body` with the values of the masked fields replaced by `"…"` and `0`.
fn masked(body: &str) -> String {
    let mut out = body.to_string();
    for key in MASKED_STRINGS {
        out = mask_after(&out, &format!("\"{key}\":\""), |rest| {
            let mut escaped = false;
            let end = rest.char_indices().find(|&(_, c)| {
                let closes = c == '"' && !escaped;
                escaped = c == '\\' && !escaped;
                closes
            });
            (end.map_or(rest.len(), |(i, _)| i), "…")
        });
    }
    for key in MASKED_NUMBERS {
        out = mask_after(&out, &format!("\"{key}\":"), |rest| (rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len()), "0"));
    }
    out
}

/// Replaces, after each `marker`, the span `value_len` measures with its replacement (spans
/// of length 0, such as `null` after a number field, are left alone).
fn mask_after(text: &str, marker: &str, value_len: impl Fn(&str) -> (usize, &'static str)) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(marker) {
        let (head, tail) = rest.split_at(at + marker.len());
        out.push_str(head);
        let (len, replacement) = value_len(tail);
        out.push_str(if len == 0 { "" } else { replacement });
        rest = &tail[len..];
    }
    out.push_str(rest);
    out
}

async fn check_fixture(server: &TestServer, path: &str, body: Value, fixture: &str) {
    let response = client().post(server.url(path)).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let got = masked(&response.text().await.unwrap());
    let file = format!("{}/tests/fixtures/{fixture}", env!("CARGO_MANIFEST_DIR"));
    if std::env::var_os("HEARTH_WRITE_FIXTURES").is_some() {
        std::fs::write(&file, &got).unwrap();
    }
    let want = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{file}: {e}"));
    if got != want {
        let line = got.lines().zip(want.lines()).position(|(g, w)| g != w).unwrap_or(0);
        panic!("{fixture} differs at line {}:\n got: {}\nwant: {}", line + 1, got.lines().nth(line).unwrap_or(""), want.lines().nth(line).unwrap_or(""));
    }
}

fn weather_function() -> Value {
    json!({"type": "object", "additionalProperties": false, "required": ["city"], "properties": {"city": {"type": "string", "maxLength": 24}}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_streams_match_their_fixtures() {
    let server = start().await;
    let text = json!({"model": MODEL_NAME, "input": "Say hi.", "temperature": 0, "max_output_tokens": 4, "stream": true});
    check_fixture(&server, "/v1/responses", text, "responses_text.sse").await;
    let call = json!({"model": MODEL_NAME, "input": "What is the weather in Paris?", "temperature": 0, "max_output_tokens": 60,
        "stream": true, "store": false, "tool_choice": "required",
        "tools": [{"type": "function", "name": "get_weather", "parameters": weather_function()}]});
    check_fixture(&server, "/v1/responses", call, "responses_function_call.sse").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_streams_match_their_fixtures() {
    let server = start().await;
    let text = json!({"model": MODEL_NAME, "max_tokens": 4, "temperature": 0, "stream": true,
        "messages": [{"role": "user", "content": "Say hi."}]});
    check_fixture(&server, "/v1/messages", text, "messages_text.sse").await;
    let tool_use = json!({"model": MODEL_NAME, "max_tokens": 60, "temperature": 0, "stream": true,
        "tool_choice": {"type": "any"}, "tools": [{"name": "get_weather", "input_schema": weather_function()}],
        "messages": [{"role": "user", "content": "What is the weather in Paris?"}]});
    check_fixture(&server, "/v1/messages", tool_use, "messages_tool_use.sse").await;
}

#[test]
fn masking_keeps_everything_but_the_masked_values() {
    let body = r#"data: {"type":"x","id":"msg_1","delta":"a \"quoted\" word","created_at":17,"completed_at":null,"n":3}"#;
    assert_eq!(masked(body), r#"data: {"type":"x","id":"…","delta":"…","created_at":0,"completed_at":null,"n":3}"#);
}
