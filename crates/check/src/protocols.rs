//! The other wire protocols agents speak, checked like chat: OpenAI's Responses API (Codex CLI,
//! the Agents SDK) and Anthropic's Messages API (Claude Code): answer shape and usage, the
//! typed event stream (names, order, sequence numbers, the text it assembles) and errors.

use serde_json::{json, Value};

use crate::http::{Exchange, Http};
use crate::result::CheckResult;

/// (event name, data) of each frame of a typed-event stream; Err names the first framing fault.
/// Lines may end with LF or CRLF.
pub fn typed_events(body: &str) -> Result<Vec<(String, Value)>, String> {
    let body = &body.replace("\r\n", "\n");
    let mut events = Vec::new();
    for frame in body.split("\n\n").filter(|f| !f.trim().is_empty()) {
        let mut name = None;
        let mut data = None;
        for line in frame.lines().filter(|l| !l.starts_with(':')) {
            if let Some(event) = line.strip_prefix("event:") {
                name = Some(event.trim().to_string());
            } else if let Some(payload) = line.strip_prefix("data:") {
                data = Some(serde_json::from_str::<Value>(payload.trim()).map_err(|e| format!("data is not JSON ({e}): {line:?}"))?);
            } else {
                return Err(format!("a line that is neither `event:` nor `data:`: {line:?}"));
            }
        }
        match (name, data) {
            (Some(name), Some(data)) => events.push((name, data)),
            (None, None) => {} // only comments (keep-alives)
            _ => return Err(format!("a frame without both `event:` and `data:`: {frame:?}")),
        }
    }
    Ok(events)
}

/// Every event's name is its data's `type`.
fn names_match_types(events: &[(String, Value)]) -> bool {
    events.iter().all(|(name, data)| data["type"] == name.as_str())
}

fn stream_of(r: &mut CheckResult, x: &Exchange, label: &str) -> Option<Vec<(String, Value)>> {
    if !(r.record(x) && r.check(format!("{label}: status 200"), x.status == 200)) {
        return None;
    }
    r.check(format!("{label}: content-type text/event-stream"), x.content_type.starts_with("text/event-stream"));
    match typed_events(&x.body) {
        Ok(events) => {
            r.check(format!("{label}: each `event:` name is its data's type"), names_match_types(&events));
            Some(events)
        }
        Err(fault) => {
            r.check(format!("{label}: SSE framing ({fault})"), false);
            None
        }
    }
}

fn output_text(response: &Value) -> String {
    let items = response["output"].as_array().cloned().unwrap_or_default();
    let messages = items.iter().filter(|item| item["type"] == "message");
    messages.flat_map(|m| m["content"].as_array().cloned().unwrap_or_default()).filter_map(|p| p["text"].as_str().map(str::to_string)).collect()
}

pub async fn responses(http: &Http, model: &str) -> CheckResult {
    let mut r = CheckResult::new("Responses API", false);
    let body = json!({"model": model, "input": "Say hello in one short sentence.", "temperature": 0, "max_output_tokens": 48, "store": false});
    let x = http.post("/v1/responses", &body).await;
    if !(r.record(&x) && r.check("status 200", x.status == 200)) {
        return r;
    }
    let v = x.json().unwrap_or(Value::Null);
    r.check("object is \"response\" with an id", v["object"] == "response" && v["id"].is_string());
    r.check("status is completed or incomplete", matches!(v["status"].as_str(), Some("completed" | "incomplete")));
    let text = output_text(&v);
    r.check("output holds a message with output_text", !text.is_empty());
    let usage = &v["usage"];
    let (input, output) = (usage["input_tokens"].as_u64().unwrap_or(0), usage["output_tokens"].as_u64().unwrap_or(0));
    r.check("usage: input_tokens and output_tokens > 0, total their sum", input > 0 && output > 0 && usage["total_tokens"].as_u64() == Some(input + output));

    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    if let Some(events) = stream_of(&mut r, &http.post("/v1/responses", &streamed).await, "streamed") {
        let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
        r.check("streamed: response.created, then response.in_progress", names.starts_with(&["response.created", "response.in_progress"]));
        let last = events.last().map(|(_, d)| d.clone()).unwrap_or(Value::Null);
        r.check("streamed: ends with response.completed or .incomplete", matches!(last["type"].as_str(), Some("response.completed" | "response.incomplete")));
        let numbers: Vec<u64> = events.iter().filter_map(|(_, d)| d["sequence_number"].as_u64()).collect();
        r.check("streamed: sequence_number counts up from 0", numbers == (0..events.len() as u64).collect::<Vec<_>>());
        let deltas: String = events.iter().filter(|(n, _)| n == "response.output_text.delta").filter_map(|(_, d)| d["delta"].as_str()).collect();
        r.check("streamed: the text deltas assemble to the final response's text", deltas == output_text(&last["response"]));
        r.check("streamed: the same greedy text as the non-streamed answer", deltas == text);
    }
    let x = http.post_raw("/v1/responses", "{\"input\": [").await;
    if r.record(&x) {
        let error = x.json().unwrap_or(Value::Null);
        r.check("malformed JSON: a 4xx with an error object", (400..500).contains(&x.status) && error["error"]["message"].is_string());
    }
    r
}

pub async fn messages(http: &Http, model: &str) -> CheckResult {
    let mut r = CheckResult::new("Messages API", false);
    let body = json!({"model": model, "max_tokens": 48, "temperature": 0, "messages": [{"role": "user", "content": "Say hello in one short sentence."}]});
    let x = http.post("/v1/messages", &body).await;
    if !(r.record(&x) && r.check("status 200", x.status == 200)) {
        return r;
    }
    let v = x.json().unwrap_or(Value::Null);
    r.check("type \"message\", role \"assistant\"", v["type"] == "message" && v["role"] == "assistant");
    let text = v["content"][0]["text"].as_str().unwrap_or("").to_string();
    r.check("content opens with a text block", v["content"][0]["type"] == "text" && !text.is_empty());
    r.check("stop_reason is end_turn or max_tokens", matches!(v["stop_reason"].as_str(), Some("end_turn" | "max_tokens")));
    let usage = &v["usage"];
    r.check("usage: input_tokens and output_tokens > 0", usage["input_tokens"].as_u64() > Some(0) && usage["output_tokens"].as_u64() > Some(0));

    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    if let Some(events) = stream_of(&mut r, &http.post("/v1/messages", &streamed).await, "streamed") {
        let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).filter(|n| *n != "ping").collect();
        r.check("streamed: message_start first, message_delta then message_stop last", names.first() == Some(&"message_start") && names.ends_with(&["message_delta", "message_stop"]));
        let deltas: String = events.iter().filter_map(|(_, d)| d["delta"]["text"].as_str()).collect();
        r.check("streamed: the text deltas assemble to the non-streamed text", deltas == text);
    }
    let x = http.post("/v1/messages", &json!({"model": model, "messages": [{"role": "user", "content": "hi"}]})).await;
    if r.record(&x) {
        let error = x.json().unwrap_or(Value::Null);
        let shaped = error["type"] == "error" && error["error"]["type"].is_string() && error["error"]["message"].is_string();
        r.check("no max_tokens: a 4xx in Anthropic's error shape", (400..500).contains(&x.status) && shaped);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_frames_parse_and_faults_are_named() {
        let body = "event: message_start\ndata: {\"type\":\"message_start\"}\n\n: keep-alive\n\nevent: ping\ndata: {\"type\":\"ping\"}\n\n";
        let events = typed_events(body).unwrap();
        assert_eq!(events.len(), 2);
        assert!(names_match_types(&events));
        assert!(typed_events("data: {\"type\":\"x\"}\n\n").is_err(), "no event line");
        assert!(typed_events("event: x\ndata: not json\n\n").is_err());
        assert!(!names_match_types(&[("a".into(), json!({"type": "b"}))]));
    }
}
