//! `max_tokens` beyond what the context has left after the prompt (agents send 32000 or the
//! whole context whatever the prompt): on every route the answer runs to the context's end
//! with that API's length reason; a prompt that does not fit by itself is still the 400; with
//! the strict policy (`--strict-max-tokens`, vLLM's behaviour) the request is refused.

use hearth_engine::{EngineConfig, MaxTokensPolicy};
use serde_json::{json, Value};

use crate::support::*;

/// A context small enough that a short prompt leaves a few dozen tokens.
const CONTEXT: u64 = 128;

fn small_context(policy: MaxTokensPolicy) -> EngineConfig {
    EngineConfig { max_model_len: Some(CONTEXT as usize), max_tokens_policy: policy, ..engine_config() }
}

/// A raw text the model continues (for `/v1/completions`).
const STORY: &str = "Once upon a time, in a castle by the sea, there lived an old dragon who loved to tell stories. Every evening, the children of the village";

const ASK: &str = "Write a very long story about a dragon who lives in a castle by the sea, with many chapters and many characters, each of them described at length.";

fn messages() -> Value {
    json!([{"role": "user", "content": ASK}])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_generates_to_the_context_end_with_its_length_reason() {
    let server = start_with(server_config(), small_context(MaxTokensPolicy::UpToContext)).await;
    let fills = |prompt: &Value, completion: &Value| prompt.as_u64().unwrap() + completion.as_u64().unwrap() == CONTEXT;

    let (status, chat) = post(&server, "/v1/chat/completions", &json!({"model": MODEL_NAME, "messages": messages(), "max_tokens": 32000, "temperature": 0})).await;
    assert_eq!(status, 200, "{chat}");
    assert_eq!(chat["choices"][0]["finish_reason"], "length", "{chat}");
    assert!(fills(&chat["usage"]["prompt_tokens"], &chat["usage"]["completion_tokens"]), "{chat}");

    let body = json!({"model": MODEL_NAME, "messages": messages(), "max_tokens": 32000, "temperature": 0, "stream": true,
        "stream_options": {"include_usage": true}});
    let events = stream(&server, "/v1/chat/completions", &body).await;
    let reasons: Vec<&Value> = events.iter().map(|e| &e["choices"][0]["finish_reason"]).filter(|r| !r.is_null()).collect();
    assert_eq!(reasons, [&json!("length")]);
    let streamed: String = events.iter().filter_map(|e| e["choices"][0]["delta"]["content"].as_str()).collect();
    assert_eq!(streamed, chat["choices"][0]["message"]["content"].as_str().unwrap(), "streamed equals non-streamed");

    let (status, completion) = post(&server, "/v1/completions", &json!({"model": MODEL_NAME, "prompt": STORY, "max_tokens": 32000, "temperature": 0})).await;
    assert_eq!(status, 200, "{completion}");
    assert_eq!(completion["choices"][0]["finish_reason"], "length", "{completion}");
    assert!(fills(&completion["usage"]["prompt_tokens"], &completion["usage"]["completion_tokens"]), "{completion}");

    let (status, message) = post(&server, "/v1/messages", &json!({"model": MODEL_NAME, "messages": messages(), "max_tokens": 32000, "temperature": 0})).await;
    assert_eq!(status, 200, "{message}");
    assert_eq!(message["stop_reason"], "max_tokens", "{message}");
    assert!(fills(&message["usage"]["input_tokens"], &message["usage"]["output_tokens"]), "{message}");

    let (status, response) = post(&server, "/v1/responses", &json!({"model": MODEL_NAME, "input": ASK, "max_output_tokens": 32000, "temperature": 0})).await;
    assert_eq!(status, 200, "{response}");
    assert_eq!((response["status"].as_str(), response["incomplete_details"]["reason"].as_str()), (Some("incomplete"), Some("max_output_tokens")), "{response}");
    assert!(fills(&response["usage"]["input_tokens"], &response["usage"]["output_tokens"]), "{response}");

    let body = json!({"model": MODEL_NAME, "messages": messages(), "stream": false, "options": {"num_predict": 32000, "temperature": 0}});
    let (status, ollama) = post(&server, "/api/chat", &body).await;
    assert_eq!(status, 200, "{ollama}");
    assert_eq!(ollama["done_reason"], "length", "{ollama}");
    assert!(fills(&ollama["prompt_eval_count"], &ollama["eval_count"]), "{ollama}");

    // a prompt longer than the context by itself keeps the 400 with LiteLLM's sentence
    let long = json!({"model": MODEL_NAME, "messages": [{"role": "user", "content": "word ".repeat(200)}], "max_tokens": 32000});
    let (status, error) = post(&server, "/v1/chat/completions", &long).await;
    assert_eq!(status, 400, "{error}");
    assert!(error["error"]["message"].as_str().unwrap().contains("maximum context length is 128 tokens"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_strict_policy_refuses_as_vllm_does() {
    let server = start_with(server_config(), small_context(MaxTokensPolicy::Strict)).await;
    let (status, error) = post(&server, "/v1/chat/completions", &json!({"model": MODEL_NAME, "messages": messages(), "max_tokens": 32000})).await;
    assert_eq!(status, 400, "{error}");
    assert_eq!(error["error"]["code"], "context_length_exceeded");
    assert!(error["error"]["message"].as_str().unwrap().contains("32000 in the completion"), "{error}");
    let (status, message) = post(&server, "/v1/messages", &json!({"model": MODEL_NAME, "messages": messages(), "max_tokens": 32000})).await;
    assert_eq!((status, message["type"].as_str()), (400, Some("error")), "{message}");
    let (status, fits) = post(&server, "/v1/chat/completions", &json!({"model": MODEL_NAME, "messages": messages(), "max_tokens": 4, "temperature": 0})).await;
    assert_eq!(status, 200, "a max_tokens that fits is answered: {fits}");
}
