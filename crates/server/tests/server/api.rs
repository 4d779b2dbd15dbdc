//! The HTTP API over raw requests: SSE framing and chunk order, usage arithmetic,
//! determinism, seeds, stop strings, every sampling parameter, tokenize, metrics.

use serde_json::{json, Value};
use crate::support::*;

fn content(response: &Value, i: usize) -> &str {
    response["choices"][i]["message"]["content"].as_str().expect("content")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_stream_chunks_come_in_order() {
    let server = start().await;
    let body = chat("Count from 1 to 5", json!({"temperature": 0, "max_tokens": 16, "stream": true}));
    let chunks = stream(&server, "/v1/chat/completions", &body).await;
    let id = chunks[0]["id"].as_str().unwrap();
    assert!(id.starts_with("chatcmpl-"));
    assert!(chunks.iter().all(|c| c["id"] == id && c["object"] == "chat.completion.chunk" && c["model"] == MODEL_NAME));
    assert!(chunks.iter().all(|c| c.get("usage").is_none()), "no usage field without include_usage");
    assert_eq!(chunks[0]["choices"][0]["delta"], json!({"role": "assistant", "content": ""}));
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "length");
    for chunk in &chunks[1..chunks.len() - 1] {
        assert!(chunk["choices"][0]["delta"].get("role").is_none());
        assert!(chunk["choices"][0]["finish_reason"].is_null());
        assert!(!chunk["choices"][0]["delta"]["content"].as_str().unwrap().is_empty());
    }
    let streamed: String = chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();

    let with_usage = chat("Count from 1 to 5", json!({"temperature": 0, "max_tokens": 16, "stream": true,
        "stream_options": {"include_usage": true}}));
    let chunks = stream(&server, "/v1/chat/completions", &with_usage).await;
    let (usage_chunk, rest) = chunks.split_last().unwrap();
    assert_eq!(usage_chunk["choices"], json!([]));
    assert!(rest.iter().all(|c| c["usage"].is_null() && c.get("usage").is_some()), "usage: null on the others");
    assert_eq!(usage_chunk["usage"]["completion_tokens"], 16);

    let (status, full) = post(&server, "/v1/chat/completions", &chat("Count from 1 to 5", json!({"temperature": 0, "max_tokens": 16}))).await;
    assert_eq!(status, 200);
    assert_eq!(content(&full, 0), streamed);
    assert_eq!(full["usage"], usage_chunk["usage"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_matches_the_tokenizer() {
    let server = start().await;
    let messages = json!([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a color."}]);
    let (_, tokenized) = post(&server, "/tokenize", &json!({"model": MODEL_NAME, "messages": messages})).await;
    let (status, response) = post(&server, "/v1/chat/completions",
        &json!({"model": MODEL_NAME, "messages": messages, "temperature": 0, "max_tokens": 30})).await;
    assert_eq!(status, 200);
    let usage = &response["usage"];
    assert_eq!(usage["prompt_tokens"], tokenized["count"]);
    let (_, text_tokens) = post(&server, "/tokenize", &json!({"prompt": content(&response, 0), "add_special_tokens": false})).await;
    let completion = usage["completion_tokens"].as_u64().unwrap();
    // The end-of-turn token counts as a completion token but has no text.
    let expected = text_tokens["count"].as_u64().unwrap() + u64::from(response["choices"][0]["finish_reason"] == "stop");
    assert_eq!(completion, expected, "{response}");
    assert_eq!(usage["total_tokens"].as_u64().unwrap(), usage["prompt_tokens"].as_u64().unwrap() + completion);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temperature_zero_and_seeds_are_deterministic() {
    let server = start().await;
    let greedy = chat("Write a haiku about the sea.", json!({"temperature": 0, "max_tokens": 24}));
    let (_, a) = post(&server, "/v1/chat/completions", &greedy).await;
    let (_, b) = post(&server, "/v1/chat/completions", &greedy).await;
    assert_eq!(content(&a, 0), content(&b, 0));

    let seeded = |seed: u64| chat("Write a haiku about the sea.", json!({"temperature": 1.0, "seed": seed, "max_tokens": 24}));
    let (_, s1) = post(&server, "/v1/chat/completions", &seeded(42)).await;
    let (_, s2) = post(&server, "/v1/chat/completions", &seeded(42)).await;
    assert_eq!(content(&s1, 0), content(&s2, 0), "same seed, same text");
    let others: Vec<String> = futures_util::future::join_all((1..4).map(|s| {
        let body = seeded(s);
        let server = &server;
        async move { content(&post(server, "/v1/chat/completions", &body).await.1, 0).to_string() }
    }))
    .await;
    assert!(others.iter().any(|t| t != content(&s1, 0)), "other seeds sample other text");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_strings_end_the_text() {
    let server = start().await;
    let (_, free) = post(&server, "/v1/chat/completions", &chat("Count from 1 to 10, one number per line.", json!({"temperature": 0, "max_tokens": 40}))).await;
    assert!(content(&free, 0).contains('3'), "{free}");
    let body = chat("Count from 1 to 10, one number per line.", json!({"temperature": 0, "max_tokens": 40, "stop": ["3"]}));
    let (_, stopped) = post(&server, "/v1/chat/completions", &body).await;
    let text = content(&stopped, 0);
    assert!(!text.contains('3'), "{text:?}");
    assert!(content(&free, 0).starts_with(text));
    assert_eq!(stopped["choices"][0]["finish_reason"], "stop");

    let mut body = body;
    body["stream"] = json!(true);
    let chunks = stream(&server, "/v1/chat/completions", &body).await;
    let streamed: String = chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
    assert_eq!(streamed, text);
    assert_eq!(chunks.last().unwrap()["choices"][0]["finish_reason"], "stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sampling_parameters_are_honoured() {
    let server = start().await;
    let base = json!({"temperature": 0, "max_tokens": 6});
    let (_, plain) = post(&server, "/v1/chat/completions", &chat("Say hello.", base.clone())).await;
    let (_, first) = post(&server, "/tokenize", &json!({"prompt": content(&plain, 0), "add_special_tokens": false})).await;
    let first_token = first["tokens"][0].as_u64().unwrap();

    // logit_bias -100 on the greedy first token changes the first token.
    let body = chat("Say hello.", json!({"temperature": 0, "max_tokens": 6, "logprobs": true,
        "logit_bias": {first_token.to_string(): -100}}));
    let (status, biased) = post(&server, "/v1/chat/completions", &body).await;
    assert_eq!(status, 200, "{biased}");
    let first_logprob = &biased["choices"][0]["logprobs"]["content"][0];
    let (_, first_text) = post(&server, "/detokenize", &json!({"tokens": [first_token]})).await;
    assert_ne!(first_logprob["token"], first_text["prompt"]);

    // n, top_k, top_p, min_p, penalties, user and seed together.
    let body = chat("Say hello.", json!({"n": 3, "temperature": 0.8, "top_k": 20, "top_p": 0.9, "min_p": 0.05,
        "presence_penalty": 0.5, "frequency_penalty": 0.5, "repetition_penalty": 1.1, "seed": 1, "user": "test",
        "max_tokens": 6}));
    let (status, many) = post(&server, "/v1/chat/completions", &body).await;
    assert_eq!(status, 200, "{many}");
    let choices = many["choices"].as_array().unwrap();
    assert_eq!(choices.iter().map(|c| c["index"].as_u64().unwrap()).collect::<Vec<_>>(), vec![0, 1, 2]);
    let completion: u64 = 3 * 6;
    assert!(many["usage"]["completion_tokens"].as_u64().unwrap() <= completion);

    // min_tokens with ignore_eos: exactly max_tokens come out.
    let body = chat("Say hi.", json!({"temperature": 0, "max_tokens": 40, "min_tokens": 40, "ignore_eos": true}));
    let (_, long) = post(&server, "/v1/chat/completions", &body).await;
    assert_eq!(long["usage"]["completion_tokens"], 40);
    assert_eq!(long["choices"][0]["finish_reason"], "length");

    // top_logprobs: alternatives sorted, the chosen token's logprob present.
    let body = chat("Say hello.", json!({"temperature": 0, "max_completion_tokens": 3, "logprobs": true, "top_logprobs": 3}));
    let (_, lp) = post(&server, "/v1/chat/completions", &body).await;
    let entries = lp["choices"][0]["logprobs"]["content"].as_array().unwrap();
    assert_eq!(entries.len(), 3);
    for entry in entries {
        let top = entry["top_logprobs"].as_array().unwrap();
        assert_eq!(top.len(), 3);
        assert_eq!(top[0]["token"], entry["token"], "greedy picks the most likely token");
        assert!(top[0]["logprob"].as_f64().unwrap() >= top[1]["logprob"].as_f64().unwrap());
        assert!(entry["logprob"].as_f64().unwrap() <= 0.0);
        assert!(entry["bytes"].is_array());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_take_every_prompt_form() {
    let server = start().await;
    let body = json!({"model": MODEL_NAME, "prompt": "The capital of France is", "max_tokens": 5, "temperature": 0,
        "logprobs": 2});
    let (status, r) = post(&server, "/v1/completions", &body).await;
    assert_eq!(status, 200, "{r}");
    assert!(r["id"].as_str().unwrap().starts_with("cmpl-"));
    let text = r["choices"][0]["text"].as_str().unwrap();
    let lp = &r["choices"][0]["logprobs"];
    let tokens: Vec<&str> = lp["tokens"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    assert_eq!(tokens.len(), 5);
    assert_eq!(tokens.concat(), text, "the tokens spell the text");
    assert_eq!(lp["top_logprobs"][0].as_object().unwrap().len(), 2);
    assert_eq!(lp["text_offset"][1], tokens[0].len());

    let body = json!({"prompt": "The capital of France is", "max_tokens": 5, "temperature": 0, "echo": true});
    let (_, echoed) = post(&server, "/v1/completions", &body).await;
    assert_eq!(echoed["choices"][0]["text"].as_str().unwrap(), format!("The capital of France is{text}"));
    let mut streamed_body = body.clone();
    streamed_body["stream"] = json!(true);
    let chunks = stream(&server, "/v1/completions", &streamed_body).await;
    let streamed: String = chunks.iter().filter_map(|c| c["choices"][0]["text"].as_str()).collect();
    assert_eq!(streamed, echoed["choices"][0]["text"].as_str().unwrap());

    let (_, tokens) = post(&server, "/tokenize", &json!({"prompt": "The capital of France is"})).await;
    let ids = tokens["tokens"].clone();
    let body = json!({"prompt": [ids.clone(), ids], "max_tokens": 5, "temperature": 0, "n": 2});
    let (status, r) = post(&server, "/v1/completions", &body).await;
    assert_eq!(status, 200, "{r}");
    let choices = r["choices"].as_array().unwrap();
    assert_eq!(choices.len(), 4);
    let texts: Vec<&str> = choices.iter().map(|c| c["text"].as_str().unwrap()).collect();
    assert!(texts.iter().all(|t| *t == texts[0]), "greedy: all the same {texts:?}");
    assert_eq!(r["usage"]["prompt_tokens"].as_u64().unwrap(), 2 * tokens["count"].as_u64().unwrap());
    assert_eq!(r["usage"]["completion_tokens"], 20);

    let (_, defaulted) = post(&server, "/v1/completions", &json!({"prompt": "Once upon a time", "ignore_eos": true})).await;
    assert_eq!(defaulted["usage"]["completion_tokens"], 16, "OpenAI's default max_tokens for completions");

    let body = json!({"prompt": ["Hello", "Goodbye"], "max_tokens": 4, "stream": true,
        "stream_options": {"include_usage": true}});
    let chunks = stream(&server, "/v1/completions", &body).await;
    let finished: Vec<u64> = chunks.iter()
        .flat_map(|c| c["choices"].as_array().unwrap().clone())
        .filter(|c| !c["finish_reason"].is_null())
        .map(|c| c["index"].as_u64().unwrap()).collect();
    assert_eq!({ let mut f = finished; f.sort(); f }, vec![0, 1]);
    assert_eq!(chunks.last().unwrap()["usage"]["completion_tokens"], 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokenize_detokenize_and_info_endpoints() {
    let server = start().await;
    let (status, t) = post(&server, "/tokenize", &json!({"model": MODEL_NAME, "prompt": "Hello world", "return_token_strs": true})).await;
    assert_eq!(status, 200);
    assert_eq!(t["count"], t["tokens"].as_array().unwrap().len());
    assert_eq!(t["max_model_len"], 2048);
    assert_eq!(t["token_strs"], json!(["Hello", " world"]));
    let (_, d) = post(&server, "/detokenize", &json!({"tokens": t["tokens"]})).await;
    assert_eq!(d["prompt"], "Hello world");

    let (status, version) = get(&server, "/version").await;
    assert_eq!(status, 200);
    assert!(version["version"].is_string());
    let (status, model) = get(&server, "/v1/models/smollm").await;
    assert_eq!((status, model["id"].as_str()), (200, Some("smollm")));
    assert_eq!(model["max_model_len"], 2048);

    let response = client().get(server.url("/health")).header("x-request-id", "abc-123").send().await.unwrap();
    assert_eq!(response.headers()["x-request-id"], "abc-123");
    let response = client().get(server.url("/health")).send().await.unwrap();
    assert_eq!(response.headers()["x-request-id"].len(), 24);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_follow_the_requests() {
    let server = start().await;
    post(&server, "/v1/chat/completions", &chat("Hi", json!({"temperature": 0, "max_tokens": 5}))).await;
    post(&server, "/v1/chat/completions", &chat("Hi", json!({"temperature": 0, "max_tokens": 5}))).await;
    let text = client().get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    for name in ["num_requests_running", "num_requests_waiting", "kv_cache_usage_perc", "prefix_cache_queries_total",
        "prefix_cache_hits_total", "prompt_tokens_total", "generation_tokens_total", "time_to_first_token_seconds_bucket",
        "inter_token_latency_seconds_bucket", "e2e_request_latency_seconds_count", "request_success_total",
        "num_preemptions_total"] {
        assert!(text.contains(&format!("hearth:{name}{{")), "{name} missing");
    }
    assert_eq!(metric(&server, "generation_tokens_total").await, 10.0);
    assert!(metric(&server, "prefix_cache_hits_total").await > 0.0, "the second prompt reuses the first's blocks");
    assert!(text.contains("hearth:request_success_total{model_name=\"smollm\",finished_reason=\"length\"} 2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_choices_stream_side_by_side() {
    let server = start().await;
    let body = chat("Name a fruit.", json!({"n": 2, "temperature": 1.0, "seed": 5, "max_tokens": 12, "stream": true,
        "stream_options": {"include_usage": true}}));
    let chunks = stream(&server, "/v1/chat/completions", &body).await;
    let (usage_chunk, rest) = chunks.split_last().unwrap();
    let mut texts = [String::new(), String::new()];
    let mut finished = [0, 0];
    for (i, c) in rest.iter().enumerate() {
        let choice = &c["choices"][0];
        let index = choice["index"].as_u64().unwrap() as usize;
        if i < 2 {
            assert_eq!(choice["delta"]["role"], "assistant", "each choice opens with the role");
        }
        texts[index].push_str(choice["delta"]["content"].as_str().unwrap_or(""));
        finished[index] += usize::from(choice["finish_reason"].is_string());
    }
    assert_eq!(finished, [1, 1], "each choice finishes once");
    let (status, whole) = post(&server, "/v1/chat/completions", &chat("Name a fruit.", json!({"n": 2, "temperature": 1.0, "seed": 5, "max_tokens": 12}))).await;
    assert_eq!(status, 200);
    for (i, text) in texts.iter().enumerate() {
        assert_eq!(content(&whole, i), text, "choice {i} streams the same text as it returns");
    }
    for field in ["prompt_tokens", "completion_tokens", "total_tokens"] {
        assert_eq!(usage_chunk["usage"][field], whole["usage"][field], "{field}");
    }
    assert!(whole["usage"]["prompt_tokens_details"]["cached_tokens"].as_u64().unwrap() > 0, "the repeated prompt hit the prefix cache");
}
