//! Tool calls and structured outputs on Qwen2.5-Coder-1.5B-Instruct (greedy unless said):
//! parsed calls whose arguments validate, a strict schema enforced under "auto" by the lazy
//! grammar, tool_choice none / named / required, a round trip
//! with a tool result, streamed calls that assemble to the same answer, and JSON Schema and
//! json_object outputs sampled at temperature 1 that always validate.

use hearth_engine::EngineConfig;
use serde_json::{json, Value};
use crate::support::*;

fn weather_tools() -> Value {
    json!([
        {"type": "function", "function": {"name": "get_weather", "description": "Get the current weather in a city",
            "parameters": {"type": "object", "properties": {
                "city": {"type": "string", "description": "City name"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["city"]}}},
        {"type": "function", "function": {"name": "get_time", "description": "Get the local time in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
    ])
}

fn ask(question: &str, extra: Value) -> Value {
    let mut body = json!({"temperature": 0, "max_tokens": 120, "tools": weather_tools(),
        "messages": [{"role": "user", "content": question}]});
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    body
}

async fn start_qwen() -> TestServer {
    let server = start_unloaded(server_config()).await;
    let engine = EngineConfig { kv_cache_memory: Some(256 << 20), max_model_len: Some(2048), ..Default::default() };
    load_model(&server.state, hearth_testkit::QWEN, &engine);
    server
}

/// (content, [(name, arguments)], finish_reason) of a non-streamed answer.
async fn answer(server: &TestServer, body: &Value) -> (Option<String>, Vec<(String, Value)>, String) {
    let (status, response) = post(server, "/v1/chat/completions", body).await;
    assert_eq!(status, 200, "{response}");
    let choice = &response["choices"][0];
    let calls = choice["message"]["tool_calls"].as_array().cloned().unwrap_or_default();
    let calls = calls
        .iter()
        .map(|c| {
            assert_eq!(c["type"], "function");
            assert!(c["id"].as_str().unwrap().starts_with("call_"));
            let arguments = c["function"]["arguments"].as_str().expect("arguments are a JSON string");
            (c["function"]["name"].as_str().unwrap().to_string(), serde_json::from_str(arguments).unwrap())
        })
        .collect();
    let content = choice["message"]["content"].as_str().map(str::to_string);
    (content, calls, choice["finish_reason"].as_str().unwrap().to_string())
}

/// The same answer assembled from the stream; also checks the chunk shapes.
async fn streamed_answer(server: &TestServer, body: &Value) -> (Option<String>, Vec<(String, Value)>, String) {
    let mut body = body.clone();
    body["stream"] = json!(true);
    let chunks = stream(server, "/v1/chat/completions", &body).await;
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let mut content: Option<String> = None;
    let mut calls: Vec<(String, String)> = Vec::new();
    let mut finish = String::new();
    for chunk in &chunks {
        let choice = &chunk["choices"][0];
        if let Some(text) = choice["delta"]["content"].as_str().filter(|t| !t.is_empty()) {
            content.get_or_insert_with(String::new).push_str(text);
        }
        for call in choice["delta"]["tool_calls"].as_array().into_iter().flatten() {
            let index = call["index"].as_u64().unwrap() as usize;
            if let Some(name) = call["function"]["name"].as_str() {
                assert_eq!(index, calls.len(), "calls are numbered in order");
                assert!(call["id"].as_str().unwrap().starts_with("call_"));
                calls.push((name.to_string(), String::new()));
            }
            calls[index].1.push_str(call["function"]["arguments"].as_str().unwrap_or(""));
        }
        if let Some(reason) = choice["finish_reason"].as_str() {
            finish = reason.to_string();
        }
    }
    let calls = calls.into_iter().map(|(name, args)| (name, serde_json::from_str(&args).unwrap())).collect();
    (content, calls, finish)
}

fn assert_valid(schema: &Value, instance: &Value) {
    let validator = jsonschema::validator_for(schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(instance).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{instance} does not validate: {errors:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_calls_on_qwen() {
    let server = start_qwen().await;
    let weather_schema = weather_tools()[0]["function"]["parameters"].clone();

    // auto: the model's own (fenced JSON) call is parsed
    let body = ask("What is the weather in Paris?", json!({}));
    let (content, calls, finish) = answer(&server, &body).await;
    assert_eq!((content.as_deref(), finish.as_str()), (None, "tool_calls"));
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].0, "get_weather");
    assert!(calls[0].1["city"].as_str().unwrap().contains("Paris"), "{calls:?}");
    assert_valid(&weather_schema, &calls[0].1);
    assert_eq!(streamed_answer(&server, &body).await, (content, calls.clone(), finish));

    // Ollama's /api/chat: the same call, arguments as an object
    let body = json!({"model": MODEL_NAME, "stream": false, "tools": weather_tools(), "options": {"temperature": 0},
        "messages": [{"role": "user", "content": "What is the weather in Paris?"}]});
    let (status, ollama) = post(&server, "/api/chat", &body).await;
    assert_eq!(status, 200, "{ollama}");
    let call = &ollama["message"]["tool_calls"][0]["function"];
    assert_eq!(call["name"], "get_weather", "{ollama}");
    assert!(call["arguments"]["city"].as_str().is_some_and(|c| c.contains("Paris")), "{ollama}");

    // under auto the call follows the tool's schema once it has begun (a lazy grammar): the
    // model would write "celsius", the strict schema allows only "kelvin"
    let strict = json!([{"type": "function", "function": {"name": "get_weather", "strict": true,
        "parameters": {"type": "object", "additionalProperties": false, "required": ["city", "unit"],
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["kelvin"]}}}}}]);
    let body = ask("What is the weather in Paris in celsius?", json!({"tools": strict}));
    let (_, calls, finish) = answer(&server, &body).await;
    assert_eq!((calls.len(), finish.as_str()), (1, "tool_calls"), "{calls:?}");
    assert_eq!(calls[0].1, json!({"city": "Paris", "unit": "kelvin"}));

    // none: text only
    let body = ask("What is the weather in Paris?", json!({"tool_choice": "none", "max_tokens": 40}));
    let (content, calls, _) = answer(&server, &body).await;
    assert!(calls.is_empty() && !content.unwrap().is_empty());

    // a named function is forced even when the prompt asks for another
    let forced = json!({"tool_choice": {"type": "function", "function": {"name": "get_time"}}});
    let body = ask("What is the weather in Paris?", forced);
    let (content, calls, finish) = answer(&server, &body).await;
    assert_eq!((content.as_deref(), finish.as_str(), calls.len()), (None, "tool_calls", 1), "{calls:?}");
    assert_eq!(calls[0].0, "get_time");
    assert_eq!(streamed_answer(&server, &body).await, (content, calls, finish));

    // required with two tools: a call, even to a greeting; one call when parallel calls are off
    let body = ask("Hi there!", json!({"tool_choice": "required", "parallel_tool_calls": false}));
    let (content, calls, finish) = answer(&server, &body).await;
    assert_eq!((content.as_deref(), finish.as_str(), calls.len()), (None, "tool_calls", 1), "{calls:?}");
    assert!(["get_weather", "get_time"].contains(&calls[0].0.as_str()));
    assert_eq!(streamed_answer(&server, &body).await, (content, calls, finish));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_result_gets_a_final_answer() {
    let server = start_qwen().await;
    let question = json!({"role": "user", "content": "What is the weather in Paris?"});
    let body = json!({"temperature": 0, "max_tokens": 80, "tools": weather_tools(), "messages": [question]});
    let (status, first) = post(&server, "/v1/chat/completions", &body).await;
    assert_eq!(status, 200, "{first}");
    // the agent sends the call back as the SDK returned it, with the tool's result
    let mut assistant = first["choices"][0]["message"].clone();
    let call_id = assistant["tool_calls"][0]["id"].clone();
    assistant.as_object_mut().unwrap().insert("content".into(), Value::Null);
    let result = json!({"role": "tool", "tool_call_id": call_id, "content": "{\"temperature\": 22, \"sky\": \"sunny\"}"});
    let messages = json!([question, assistant, result]);

    // Under "auto" this 1.5B model calls again, copying the doubled braces of its template's
    // example ({{"name": ...}}); that form is parsed as a call too.
    let body = json!({"temperature": 0, "max_tokens": 80, "tools": weather_tools(), "messages": messages});
    let (_, calls, finish) = answer(&server, &body).await;
    assert_eq!((calls.len(), finish.as_str()), (1, "tool_calls"), "{calls:?}");

    // Ending the loop with tool_choice "none" gets the answer in text.
    let body = json!({"temperature": 0, "max_tokens": 60, "tools": weather_tools(), "tool_choice": "none", "messages": messages});
    let (content, calls, finish) = answer(&server, &body).await;
    assert!(calls.is_empty(), "{calls:?}");
    assert_eq!(finish, "stop");
    let text = content.unwrap();
    assert!(text.contains("22") && text.to_lowercase().contains("sunny"), "{text}");
    assert_eq!(streamed_answer(&server, &body).await, (Some(text), calls, finish));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn structured_outputs_always_validate() {
    let server = start_qwen().await;
    let schema = json!({"type": "object", "additionalProperties": false,
        "required": ["name", "age", "role", "skills", "address"],
        "properties": {
            "name": {"type": "string", "maxLength": 40},
            "age": {"type": "integer", "minimum": 0, "maximum": 120},
            "role": {"enum": ["engineer", "designer", "manager"]},
            "skills": {"type": "array", "items": {"type": "string", "maxLength": 24}, "minItems": 1, "maxItems": 4},
            "address": {"type": "object", "additionalProperties": false, "required": ["city", "zip"],
                "properties": {"city": {"type": "string", "maxLength": 30}, "zip": {"type": "string", "pattern": "^[0-9]{5}$"}}}}});
    let format = json!({"type": "json_schema", "json_schema": {"name": "person", "schema": schema, "strict": true}});
    // Sampled at temperature 1 so the grammar, not the model's habits, keeps every answer valid;
    // seeded so the test is the same on every run (a grammar cannot make an answer end within
    // max_tokens, and an unseeded draw now and then writes a long one).
    let body = json!({"temperature": 1.0, "seed": 11, "max_tokens": 300, "n": 20, "response_format": format,
        "messages": [{"role": "user", "content": "Invent a colleague and describe them."}]});
    for streamed in [false, true] {
        for text in texts(&server, &body, streamed).await {
            assert_valid(&schema, &serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}")));
        }
    }
    let body = json!({"temperature": 1.0, "seed": 5, "max_tokens": 300, "n": 4, "response_format": {"type": "json_object"},
        "messages": [{"role": "user", "content": "Describe a cat as a small JSON object with three keys."}]});
    for text in texts(&server, &body, false).await {
        let value: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        assert!(value.is_object());
    }
}

/// The content of every choice.
async fn texts(server: &TestServer, body: &Value, streamed: bool) -> Vec<String> {
    let n = body["n"].as_u64().unwrap() as usize;
    let mut out = vec![String::new(); n];
    if streamed {
        let mut body = body.clone();
        body["stream"] = json!(true);
        for chunk in stream(server, "/v1/chat/completions", &body).await {
            for choice in chunk["choices"].as_array().into_iter().flatten() {
                let text = choice["delta"]["content"].as_str().unwrap_or("");
                out[choice["index"].as_u64().unwrap() as usize].push_str(text);
            }
        }
    } else {
        let (status, response) = post(server, "/v1/chat/completions", body).await;
        assert_eq!(status, 200, "{response}");
        for (i, choice) in response["choices"].as_array().unwrap().iter().enumerate() {
            assert_eq!(choice["finish_reason"], "stop", "{choice}");
            out[i] = choice["message"]["content"].as_str().unwrap().to_string();
        }
    }
    out
}
