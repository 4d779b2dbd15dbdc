//! `hearth serve` with n-gram speculation: answers equal those of a request that opts out,
//! the spec-decode counters move only for requests that speculate, and a bad opt-out value is
//! a 400.

use hearth_engine::{EngineConfig, SpecConfig};
use serde_json::json;
use crate::support::*;

const ASK: &str = "Repeat this line three times exactly: let total = items.iter().map(|item| item.price * item.count).sum();";

async fn answer(server: &TestServer, extra: serde_json::Value) -> String {
    let mut fields = json!({"temperature": 0, "max_tokens": 64});
    fields.as_object_mut().unwrap().extend(extra.as_object().cloned().unwrap_or_default());
    let (status, body) = post(server, "/v1/chat/completions", &chat(ASK, fields)).await;
    assert_eq!(status, 200, "{body}");
    body["choices"][0]["message"]["content"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speculation_changes_speed_only_and_can_be_refused_per_request() {
    let spec = SpecConfig { always_draft: true, ..SpecConfig::default() };
    let engine = EngineConfig { speculative: Some(spec), ..engine_config() };
    let server = start_with(server_config(), engine).await;
    let speculated = answer(&server, json!({})).await;
    let drafts = metric(&server, "spec_decode_num_drafts_total").await;
    let accepted = metric(&server, "spec_decode_num_accepted_tokens_total").await;
    assert!(drafts > 0.0 && accepted > 0.0, "the answer repeats its prompt, so drafts were verified: {drafts} / {accepted}");
    let refused = answer(&server, json!({"speculative": false})).await;
    assert_eq!(refused, speculated, "speculation must not change a greedy answer");
    assert_eq!(metric(&server, "spec_decode_num_drafts_total").await, drafts, "an opted-out request drafts nothing");
    // streamed, the deltas add up to the same answer
    let events = stream(&server, "/v1/chat/completions", &chat(ASK, json!({"temperature": 0, "max_tokens": 64, "stream": true}))).await;
    let streamed: String = events.iter().filter_map(|e| e["choices"][0]["delta"]["content"].as_str()).collect();
    assert_eq!(streamed, speculated);
    let (status, body) = post(&server, "/v1/chat/completions", &chat(ASK, json!({"speculative": "yes"}))).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["type"], "invalid_request_error", "{body}");
    server.shutdown().await;
}
