//! OpenAI compliance checks: chat shape and usage, streaming framing, sampling controls, errors.

use serde_json::{json, Value};

use crate::http::{sse_data, Http};
use crate::result::CheckResult;

fn chat_body(model: &str, content: &str, extra: Value) -> Value {
    let mut body = json!({"model": model, "messages": [{"role": "user", "content": content}]});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    body
}

/// Checks `usage` arithmetic; true when it holds.
fn check_usage(r: &mut CheckResult, usage: &Value) -> bool {
    let field = |k: &str| usage[k].as_u64();
    let (p, c, t) = (field("prompt_tokens"), field("completion_tokens"), field("total_tokens"));
    r.check("usage has integer prompt_tokens, completion_tokens, total_tokens", p.is_some() && c.is_some() && t.is_some())
        && r.check("usage.total_tokens = prompt_tokens + completion_tokens", p.zip(c).map(|(p, c)| p + c) == t)
}

/// Validates a non-streaming chat completion body.
pub fn validate_chat(r: &mut CheckResult, v: &Value) {
    r.check("id is a non-empty string", v["id"].as_str().is_some_and(|s| !s.is_empty()));
    r.check("object is \"chat.completion\"", v["object"] == "chat.completion");
    r.check("created is an integer", v["created"].is_u64());
    r.check("model is a string", v["model"].is_string());
    let choice = &v["choices"][0];
    r.check("choices[0] exists with index 0", choice["index"] == 0);
    r.check("choices[0].message.role is \"assistant\"", choice["message"]["role"] == "assistant");
    r.check("choices[0].message.content is a string", choice["message"]["content"].is_string());
    let reason = choice["finish_reason"].as_str().unwrap_or("");
    r.check(format!("finish_reason is stop or length (got {reason:?})"), matches!(reason, "stop" | "length"));
    check_usage(r, &v["usage"]);
}

pub async fn chat_completion(http: &Http, model: &str) -> CheckResult {
    let mut r = CheckResult::new("Chat completion compliance", true);
    let body = chat_body(model, "Say hello in one short sentence.", json!({"max_tokens": 32, "temperature": 0}));
    let x = http.post("/v1/chat/completions", &body).await;
    if r.record(&x) && r.check("status 200", x.status == 200) {
        match x.json() {
            Some(v) => validate_chat(&mut r, &v),
            None => {
                r.check("the body is JSON", false);
            }
        }
    }
    r
}

pub async fn streaming(http: &Http, model: &str) -> CheckResult {
    let mut r = CheckResult::new("Streaming (SSE)", true);
    let extra = json!({"max_tokens": 24, "temperature": 0, "stream": true, "stream_options": {"include_usage": true}});
    let x = http.post("/v1/chat/completions", &chat_body(model, "Count from 1 to 5.", extra)).await;
    if !r.record(&x) || !r.check("status 200", x.status == 200) {
        return r;
    }
    r.check("content-type is text/event-stream", x.content_type.starts_with("text/event-stream"));
    let events = match sse_data(&x.body) {
        Ok(events) => events,
        Err(e) => {
            r.check(format!("SSE framing: {e}"), false);
            return r;
        }
    };
    r.check("SSE framing: every event is `data: ...` and a blank line", true);
    r.check("the last event is `data: [DONE]`", events.last().is_some_and(|e| e == "[DONE]"));
    let chunks: Vec<Value> = events.iter().filter(|e| *e != "[DONE]").filter_map(|e| serde_json::from_str(e).ok()).collect();
    r.check("every other event is a JSON chunk", chunks.len() + 1 == events.len());
    validate_chunks(&mut r, &chunks);
    r
}

fn validate_chunks(r: &mut CheckResult, chunks: &[Value]) {
    let Some(first) = chunks.first() else {
        r.check("at least one chunk", false);
        return;
    };
    r.check("object is \"chat.completion.chunk\" on every chunk", chunks.iter().all(|c| c["object"] == "chat.completion.chunk"));
    r.check("one id for all chunks", chunks.iter().all(|c| c["id"] == first["id"]));
    r.check("the first chunk's delta has role \"assistant\"", first["choices"][0]["delta"]["role"] == "assistant");
    let text: String = chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
    r.check("content deltas carry text", !text.is_empty());
    let finishes = chunks.iter().filter(|c| c["choices"][0]["finish_reason"].is_string()).count();
    r.check(format!("exactly one chunk carries finish_reason (found {finishes})"), finishes == 1);
    let last = chunks.last().expect("not empty");
    let usage_last = last["choices"].as_array().is_some_and(|c| c.is_empty()) && last["usage"].is_object();
    if r.check("with include_usage, a last chunk with empty choices and usage", usage_last) {
        check_usage(r, &last["usage"]);
    }
    r.note(format!("{} chunks, text {:?}", chunks.len(), crate::http::trim(&text, 80)));
}

async fn chat_text(http: &Http, r: &mut CheckResult, body: &Value) -> Option<Value> {
    let x = http.post("/v1/chat/completions", body).await;
    (r.record(&x) && r.check("status 200", x.status == 200)).then(|| x.json()).flatten()
}

pub async fn sampling(http: &Http, model: &str) -> CheckResult {
    let mut r = CheckResult::new("Sampling controls", true);
    let body = chat_body(model, "Write a long story about a dragon.", json!({"max_tokens": 5, "temperature": 0}));
    if let Some(v) = chat_text(http, &mut r, &body).await {
        r.check("max_tokens 5 ends with finish_reason \"length\"", v["choices"][0]["finish_reason"] == "length");
        r.check("max_tokens 5 gives 5 completion tokens", v["usage"]["completion_tokens"] == 5);
    }
    let body = chat_body(model, "Count from 1 to 10, separated by commas.", json!({"max_tokens": 60, "temperature": 0, "stop": ["5"]}));
    if let Some(v) = chat_text(http, &mut r, &body).await {
        let text = v["choices"][0]["message"]["content"].as_str().unwrap_or("");
        r.check("a stop string does not appear in the text", !text.contains('5'));
        r.check("a stop string ends with finish_reason \"stop\"", v["choices"][0]["finish_reason"] == "stop");
    }
    let same = chat_body(model, "Name three fruits.", json!({"max_tokens": 24, "temperature": 0}));
    let (a, b) = (chat_text(http, &mut r, &same).await, chat_text(http, &mut r, &same).await);
    let content = |v: &Option<Value>| v.as_ref().map(|v| v["choices"][0]["message"]["content"].clone());
    r.check("temperature 0 gives the same text twice", content(&a).is_some() && content(&a) == content(&b));
    let seeded = chat_body(model, "Name three fruits.", json!({"max_tokens": 24, "temperature": 1.0, "seed": 1234}));
    let (a, b) = (chat_text(http, &mut r, &seeded).await, chat_text(http, &mut r, &seeded).await);
    r.check("the same seed gives the same text twice", content(&a).is_some() && content(&a) == content(&b));
    r
}

fn check_error(r: &mut CheckResult, what: &str, x: &crate::http::Exchange, status: u16) -> Option<String> {
    r.check(format!("{what}: status {status} (got {})", x.status), x.status == status);
    let message = x.json().and_then(|v| v["error"]["message"].as_str().map(str::to_string));
    r.check(format!("{what}: an OpenAI error object with a message"), message.is_some());
    message
}

pub async fn errors(http: &Http, model: &str) -> CheckResult {
    let mut r = CheckResult::new("Error handling", true);
    let x = http.post("/v1/chat/completions", &chat_body("no-such-model-xyz", "hi", json!({}))).await;
    if r.record(&x) {
        check_error(&mut r, "unknown model", &x, 404);
    }
    let x = http.post_raw("/v1/chat/completions", "{\"model\": \"x\", \"messages\": [").await;
    if r.record(&x) {
        check_error(&mut r, "malformed JSON", &x, 400);
    }
    // a prompt longer than the context by itself (each "word " is a token or more)
    let words = context_length(http, model).await.map_or(150_000, |tokens| tokens as usize + 64);
    let x = http.post("/v1/chat/completions", &chat_body(model, &"word ".repeat(words), json!({"max_tokens": 16}))).await;
    if r.record(&x) {
        let message = check_error(&mut r, "prompt longer than the context", &x, 400).unwrap_or_default();
        r.check("context overflow: the message says \"maximum context length\" (LiteLLM's trigger)", message.contains("maximum context length"));
    }
    r
}

/// The context length `/v1/models` gives for `model` (vLLM's and hearth's `max_model_len`).
pub async fn context_length(http: &Http, model: &str) -> Option<u64> {
    let listing = http.get("/v1/models").await.json()?;
    let entry = listing["data"].as_array()?.iter().find(|m| m["id"] == model)?.clone();
    entry["max_model_len"].as_u64()
}
