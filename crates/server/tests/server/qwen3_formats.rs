//! Qwen3's reply formats through all four front doors, streamed and not, on SmolLM2 (it has
//! the same ChatML special tokens) served with Qwen3's and Qwen3-Coder's real chat templates
//! (fetched by scripts/fetch-models.sh): reasoning comes back apart from the answer (Chat's
//! `reasoning_content`, Messages' thinking blocks, Responses' reasoning items, Ollama's
//! `thinking`) and the same in every API; Qwen3-Coder's XML calls, forced by the grammar the
//! template's format asks for, come back as typed calls with no markup in the content; a
//! forced call on a thinking model leaves room for its reasoning.

use hearth_engine::ModelBundle;
use hearth_server::ServedModel;
use hearth_tokenizer::ChatTemplate;
use serde_json::{json, Value};

use crate::ollama::ndjson;
use crate::support::*;

/// A SmolLM2 server whose chat template is `file` (from the models' templates folder) as
/// `edit` changes it.
async fn start_with_template(file: &str, edit: impl Fn(String) -> String) -> TestServer {
    let path = hearth_testkit::models_dir().join("templates").join(file);
    let source = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e} (run scripts/fetch-models.sh)", path.display()));
    let template = ChatTemplate::new(&edit(source), String::new(), "<|im_end|>".into()).expect("template compiles");
    let server = start_unloaded(server_config()).await;
    hearth_kernels::threads::init(None);
    let bundle = ModelBundle::load(&hearth_testkit::model_path(hearth_testkit::SMOLLM)).expect("model loads");
    assert!(server.state.set_model(ServedModel::start(bundle, &engine_config(), Some(template)).expect("engine starts")));
    server
}

/// Qwen3's template with the generation prompt opening the reasoning block (as the Qwen3
/// "Thinking" models' templates do), so that every reply starts as reasoning.
fn thinking_opened(source: String) -> String {
    let prompt = "{{- '<|im_start|>assistant\\n' }}";
    assert!(source.contains(prompt), "Qwen3's generation prompt moved");
    source.replacen(prompt, "{{- '<|im_start|>assistant\\n<think>\\n' }}", 1)
}

const QUESTION: &str = "Why is the sky blue?";

fn concat<'a>(values: impl Iterator<Item = &'a Value>) -> String {
    values.filter_map(Value::as_str).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reasoning_is_returned_apart_in_every_api() {
    let server = start_with_template("Qwen-Qwen3-0.6B.jinja", thinking_opened).await;
    let sampling = json!({"temperature": 0, "max_tokens": 12});
    // Chat Completions
    let (status, answer) = post(&server, "/v1/chat/completions", &chat(QUESTION, sampling.clone())).await;
    assert_eq!(status, 200, "{answer}");
    let message = &answer["choices"][0]["message"];
    let reasoning = message["reasoning_content"].as_str().expect("reasoning_content").to_string();
    assert!(!reasoning.trim().is_empty(), "{answer}");
    let content = message["content"].as_str().unwrap_or_default().to_string();
    assert!(!content.contains("think>") && !reasoning.contains("think>"), "tags never leak: {answer}");
    let mut body = chat(QUESTION, sampling);
    body["stream"] = json!(true);
    let chunks = stream(&server, "/v1/chat/completions", &body).await;
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let deltas: Vec<&Value> = chunks.iter().filter_map(|c| c["choices"].get(0)).map(|c| &c["delta"]).collect();
    assert_eq!(concat(deltas.iter().map(|d| &d["reasoning_content"])), reasoning, "streamed reasoning");
    assert_eq!(concat(deltas.iter().map(|d| &d["content"])), content, "streamed content");

    // Messages: a thinking block first, streamed as thinking deltas and an (empty) signature
    let messages = json!({"model": MODEL_NAME, "max_tokens": 12, "temperature": 0, "messages": [{"role": "user", "content": QUESTION}]});
    let (status, answer) = post(&server, "/v1/messages", &messages).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["content"][0], json!({"type": "thinking", "thinking": reasoning, "signature": ""}), "{answer}");
    let mut streamed = messages.clone();
    streamed["stream"] = json!(true);
    let events = typed_events(&server, "/v1/messages", &streamed).await;
    let start = events.iter().find(|(name, _)| name == "content_block_start").expect("a block starts");
    assert_eq!(start.1["content_block"]["type"], "thinking");
    let thinking = concat(events.iter().map(|(_, data)| &data["delta"]["thinking"]));
    assert_eq!(thinking, reasoning, "streamed thinking");
    assert!(events.iter().any(|(_, data)| data["delta"]["type"] == "signature_delta"), "the block is signed before it stops");
    let omitted = json!({"thinking": {"type": "adaptive", "display": "omitted"}});
    let mut hidden = messages.clone();
    hidden.as_object_mut().unwrap().extend(omitted.as_object().unwrap().clone());
    let (_, answer) = post(&server, "/v1/messages", &hidden).await;
    assert_eq!(answer["content"][0]["thinking"], "", "display omitted: {answer}");

    // Responses: a reasoning item before the message
    let request = json!({"model": MODEL_NAME, "input": QUESTION, "max_output_tokens": 12, "temperature": 0});
    let (status, answer) = post(&server, "/v1/responses", &request).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["output"][0]["type"], "reasoning", "{answer}");
    assert_eq!(answer["output"][0]["content"][0], json!({"type": "reasoning_text", "text": reasoning}));
    let mut streamed = request.clone();
    streamed["stream"] = json!(true);
    let events = typed_events(&server, "/v1/responses", &streamed).await;
    let deltas = events.iter().filter(|(name, _)| name == "response.reasoning_text.delta").map(|(_, data)| &data["delta"]);
    assert_eq!(concat(deltas), reasoning, "streamed reasoning text");
    let (_, last) = events.last().expect("events");
    assert_eq!(last["response"]["output"][0]["content"][0]["text"], reasoning.as_str());

    // Ollama: `thinking` beside the content
    let ollama = json!({"model": MODEL_NAME, "messages": [{"role": "user", "content": QUESTION}], "stream": false,
        "options": {"temperature": 0, "num_predict": 12}});
    let (status, answer) = post(&server, "/api/chat", &ollama).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["message"]["thinking"], reasoning.as_str(), "{answer}");
    let mut streamed = ollama.clone();
    streamed["stream"] = json!(true);
    let lines = ndjson(&server, "/api/chat", &streamed).await;
    assert_eq!(concat(lines.iter().map(|l| &l["message"]["thinking"])), reasoning, "streamed thinking");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thinking_switched_off_leaves_only_the_answer() {
    let server = start_with_template("Qwen-Qwen3-0.6B.jinja", |s| s).await;
    let body = chat(QUESTION, json!({"temperature": 0, "max_tokens": 12, "chat_template_kwargs": {"enable_thinking": false}}));
    let (status, answer) = post(&server, "/v1/chat/completions", &body).await;
    assert_eq!(status, 200, "{answer}");
    let message = &answer["choices"][0]["message"];
    assert!(message.get("reasoning_content").is_none(), "{answer}");
    assert!(message["content"].as_str().is_some_and(|c| !c.trim().is_empty()), "{answer}");
    let ollama = json!({"model": MODEL_NAME, "messages": [{"role": "user", "content": QUESTION}], "stream": false, "think": false,
        "options": {"temperature": 0, "num_predict": 12}});
    let (_, answer) = post(&server, "/api/chat", &ollama).await;
    assert!(answer["message"].get("thinking").is_none(), "{answer}");
    assert_eq!(answer["message"]["content"], message["content"], "the same prompt as Chat's");
    // a forced call on a thinking model: the grammar leaves room for a <think> block first
    let tools = json!([{"type": "function", "function": {"name": "get_weather", "parameters": weather_parameters()}}]);
    let body = chat(QUESTION, json!({"temperature": 0, "max_tokens": 60, "tools": tools, "tool_choice": "required", "parallel_tool_calls": false}));
    let (status, answer) = post(&server, "/v1/chat/completions", &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["choices"][0]["finish_reason"], "tool_calls", "{answer}");
    let arguments = answer["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"].as_str().unwrap();
    assert_weather_arguments(&serde_json::from_str(arguments).unwrap());
}

fn weather_parameters() -> Value {
    json!({"type": "object", "required": ["city", "days"], "properties": {
        "city": {"type": "string", "enum": ["Paris", "Rome", "Oslo"]},
        "days": {"type": "integer", "minimum": 1, "maximum": 7}}})
}

/// The arguments of a forced XML call: every required parameter, typed by the schema.
fn assert_weather_arguments(arguments: &Value) {
    assert!(["Paris", "Rome", "Oslo"].contains(&arguments["city"].as_str().unwrap_or_default()), "{arguments}");
    assert!(arguments["days"].as_i64().is_some_and(|d| (1..=7).contains(&d)), "an integer, not text: {arguments}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xml_calls_are_forced_and_parsed_in_every_api() {
    let server = start_with_template("Qwen3-Coder.jinja", |s| s).await;
    let question = "What is the weather in Paris for the next 3 days?";
    let tools = json!([{"type": "function", "function": {"name": "get_weather", "parameters": weather_parameters()}}]);
    let body = chat(question, json!({"temperature": 0, "max_tokens": 80, "tools": tools, "tool_choice": "required",
        "parallel_tool_calls": false}));
    let (status, answer) = post(&server, "/v1/chat/completions", &body).await;
    assert_eq!(status, 200, "{answer}");
    let choice = &answer["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls", "{answer}");
    assert!(choice["message"]["content"].is_null(), "no markup in content: {answer}");
    let call = &choice["message"]["tool_calls"][0]["function"];
    assert_eq!(call["name"], "get_weather");
    let arguments: Value = serde_json::from_str(call["arguments"].as_str().unwrap()).unwrap();
    assert_weather_arguments(&arguments);
    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let chunks = stream(&server, "/v1/chat/completions", &streamed).await;
    let calls: Vec<&Value> = chunks.iter().filter_map(|c| c["choices"][0]["delta"]["tool_calls"].get(0)).collect();
    assert_eq!(calls[0]["function"]["name"], "get_weather");
    let streamed_arguments = concat(calls.iter().map(|c| &c["function"]["arguments"]));
    assert_eq!(serde_json::from_str::<Value>(&streamed_arguments).unwrap(), arguments, "streamed call");
    assert!(chunks.iter().all(|c| !c["choices"][0]["delta"]["content"].as_str().unwrap_or_default().contains('<')));

    // Messages: tool_choice any
    let tool = json!([{"name": "get_weather", "input_schema": weather_parameters()}]);
    let messages = json!({"model": MODEL_NAME, "max_tokens": 80, "temperature": 0, "tools": tool, "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
        "messages": [{"role": "user", "content": question}]});
    let (status, answer) = post(&server, "/v1/messages", &messages).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["stop_reason"], "tool_use", "{answer}");
    let block = answer["content"].as_array().unwrap().iter().find(|b| b["type"] == "tool_use").expect("a tool_use block").clone();
    assert_eq!(block["input"], arguments, "the same call as Chat's");

    // Responses: tool_choice required, streamed
    let request = json!({"model": MODEL_NAME, "input": question, "max_output_tokens": 80, "temperature": 0, "stream": true,
        "tool_choice": "required", "parallel_tool_calls": false, "tools": [{"type": "function", "name": "get_weather", "parameters": weather_parameters()}]});
    let events = typed_events(&server, "/v1/responses", &request).await;
    let (_, last) = events.last().expect("events");
    let item = last["response"]["output"].as_array().unwrap().iter().find(|i| i["type"] == "function_call").expect("a call").clone();
    assert_eq!(serde_json::from_str::<Value>(item["arguments"].as_str().unwrap()).unwrap(), arguments, "{item}");

    // Ollama (no tool_choice): whatever the model writes, no call markup reaches the content
    let ollama = json!({"model": MODEL_NAME, "messages": [{"role": "user", "content": question}], "stream": false, "tools": tools,
        "options": {"temperature": 0, "num_predict": 80}});
    let (status, answer) = post(&server, "/api/chat", &ollama).await;
    assert_eq!(status, 200, "{answer}");
    assert!(!answer["message"]["content"].as_str().unwrap_or_default().contains("<function="), "{answer}");
    for call in answer["message"]["tool_calls"].as_array().into_iter().flatten() {
        assert_weather_arguments(&call["function"]["arguments"]);
    }
}
