//! Tool-call and structured-output checks: a parsed call with string arguments, the streamed
//! call shape (id, type and name once, argument fragments, no markup in content), forcing by
//! `tool_choice`, and JSON Schema / json_object answers that validate.

use serde_json::{json, Value};

use crate::http::{sse_data, Http};
use crate::result::CheckResult;

fn weather_tools() -> Value {
    json!([
        {"type": "function", "function": {"name": "get_weather", "description": "Get the current weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["city"]}}},
        {"type": "function", "function": {"name": "get_time", "description": "Get the local time in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
    ])
}

fn ask(model: &str, question: &str, extra: Value) -> Value {
    let mut body = json!({"model": model, "temperature": 0, "max_tokens": 120, "tools": weather_tools(),
        "messages": [{"role": "user", "content": question}]});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    body
}

/// A call as (name, arguments string).
type Call = (String, String);

/// Markup a reply's content must not carry once calls are parsed out.
fn has_call_markup(text: &str) -> bool {
    ["<tool_call>", "</tool_call>", "```json", "\"arguments\""].iter().any(|m| text.contains(m))
}

/// Checks a non-streamed answer's calls; returns them.
fn validate_calls(r: &mut CheckResult, v: &Value, label: &str) -> Vec<Call> {
    let choice = &v["choices"][0];
    let message = &choice["message"];
    let calls = message["tool_calls"].as_array().cloned().unwrap_or_default();
    if !r.check(format!("{label}: message.tool_calls holds a call"), !calls.is_empty()) {
        return Vec::new();
    }
    let well_formed = calls.iter().all(|c| {
        c["type"] == "function" && c["id"].as_str().is_some_and(|s| !s.is_empty()) && c["function"]["name"].is_string()
    });
    r.check(format!("{label}: each call has an id, type \"function\" and a name"), well_formed);
    let arguments_ok = calls.iter().all(|c| {
        c["function"]["arguments"].as_str().and_then(|a| serde_json::from_str::<Value>(a).ok()).is_some_and(|a| a.is_object())
    });
    r.check(format!("{label}: function.arguments is a string holding a JSON object"), arguments_ok);
    let content_clean = message["content"].is_null() || message["content"].as_str().is_some_and(|t| !has_call_markup(t));
    r.check(format!("{label}: content is null or text without call markup"), content_clean);
    r.check(format!("{label}: finish_reason is \"tool_calls\""), choice["finish_reason"] == "tool_calls");
    calls
        .iter()
        .map(|c| (c["function"]["name"].as_str().unwrap_or("").to_string(), c["function"]["arguments"].as_str().unwrap_or("").to_string()))
        .collect()
}

async fn post_json(http: &Http, r: &mut CheckResult, body: &Value) -> Option<Value> {
    let x = http.post("/v1/chat/completions", body).await;
    (r.record(&x) && r.check("status 200", x.status == 200)).then(|| x.json()).flatten()
}

pub async fn tool_calls(http: &Http, model: &str) -> CheckResult {
    let mut r = CheckResult::new("Tool calls", false);
    let body = ask(model, "What is the weather in Paris?", json!({}));
    let Some(v) = post_json(http, &mut r, &body).await else { return r };
    let calls = validate_calls(&mut r, &v, "auto");
    let paris = calls.first().is_some_and(|(name, args)| name == "get_weather" && args.contains("Paris"));
    r.check("auto: the weather question calls get_weather for Paris", paris);

    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let x = http.post("/v1/chat/completions", &streamed).await;
    if r.record(&x) && r.check("streamed: status 200", x.status == 200) {
        let assembled = validate_streamed_calls(&mut r, &x.body);
        r.check("streamed: the calls assemble to the non-streamed calls", assembled.as_ref() == Some(&calls));
    }

    let forced = json!({"tool_choice": {"type": "function", "function": {"name": "get_time"}}});
    if let Some(v) = post_json(http, &mut r, &ask(model, "What is the weather in Paris?", forced)).await {
        let calls = validate_calls(&mut r, &v, "named tool_choice");
        r.check("named tool_choice: get_time is called though the prompt asks for the weather", calls.iter().all(|c| c.0 == "get_time"));
    }
    let required = json!({"tool_choice": "required", "parallel_tool_calls": false});
    if let Some(v) = post_json(http, &mut r, &ask(model, "Hi there!", required)).await {
        let calls = validate_calls(&mut r, &v, "required");
        r.check("required with parallel_tool_calls false: exactly one call to a greeting", calls.len() == 1);
    }
    r.note(format!("calls: {calls:?}"));
    r
}

/// Checks the streamed call shape; returns the assembled calls.
fn validate_streamed_calls(r: &mut CheckResult, body: &str) -> Option<Vec<Call>> {
    let events = sse_data(body).ok()?;
    r.check("streamed: the last event is `data: [DONE]`", events.last().is_some_and(|e| e == "[DONE]"));
    let chunks: Vec<Value> = events.iter().filter_map(|e| serde_json::from_str(e).ok()).collect();
    r.check("streamed: the first delta has role \"assistant\"", chunks.first()?["choices"][0]["delta"]["role"] == "assistant");
    let mut calls: Vec<Call> = Vec::new();
    let (mut content, mut names_once, mut finish) = (String::new(), true, String::new());
    for chunk in &chunks {
        let choice = &chunk["choices"][0];
        content.push_str(choice["delta"]["content"].as_str().unwrap_or(""));
        for call in choice["delta"]["tool_calls"].as_array().into_iter().flatten() {
            let index = call["index"].as_u64()? as usize;
            match call["function"]["name"].as_str() {
                Some(name) if index == calls.len() && call["id"].is_string() && call["type"] == "function" => {
                    calls.push((name.to_string(), String::new()))
                }
                Some(_) => names_once = false,
                None => {}
            }
            calls.get_mut(index)?.1.push_str(call["function"]["arguments"].as_str().unwrap_or(""));
        }
        if let Some(reason) = choice["finish_reason"].as_str() {
            finish = reason.to_string();
        }
    }
    r.check("streamed: each call's id, type and name come once, in index order", names_once && !calls.is_empty());
    let parse = |a: &String| serde_json::from_str::<Value>(a).ok().is_some_and(|v| v.is_object());
    r.check("streamed: argument fragments concatenate to a JSON object", calls.iter().all(|c| parse(&c.1)));
    r.check("streamed: no call markup in delta.content", !has_call_markup(&content));
    r.check("streamed: finish_reason is \"tool_calls\"", finish == "tool_calls");
    Some(calls)
}

/// A schema with required string, integer, enum, array and nested-object fields.
fn person_schema() -> Value {
    json!({"type": "object", "additionalProperties": false, "required": ["name", "age", "role", "skills", "address"],
        "properties": {"name": {"type": "string", "maxLength": 40}, "age": {"type": "integer", "minimum": 0, "maximum": 120},
            "role": {"enum": ["engineer", "designer", "manager"]},
            "skills": {"type": "array", "items": {"type": "string", "maxLength": 24}, "minItems": 1, "maxItems": 4},
            "address": {"type": "object", "additionalProperties": false, "required": ["city", "zip"],
                "properties": {"city": {"type": "string", "maxLength": 30}, "zip": {"type": "string", "pattern": "^[0-9]{5}$"}}}}})
}

pub async fn structured_output(http: &Http, model: &str) -> CheckResult {
    let mut r = CheckResult::new("Structured output (JSON Schema)", false);
    let schema = person_schema();
    let format = json!({"type": "json_schema", "json_schema": {"name": "person", "schema": schema, "strict": true}});
    let body = json!({"model": model, "temperature": 1.0, "max_tokens": 200, "n": 4, "response_format": format,
        "messages": [{"role": "user", "content": "Invent a colleague and describe them."}]});
    let validator = jsonschema::validator_for(&schema).ok();
    if let (Some(v), Some(validator)) = (post_json(http, &mut r, &body).await, validator) {
        let answers: Vec<Option<Value>> = choice_contents(&v).iter().map(|t| serde_json::from_str(t).ok()).collect();
        r.check(format!("json_schema: {} answers at temperature 1", answers.len()), answers.len() == 4);
        r.check("json_schema: every answer is JSON", answers.iter().all(Option::is_some));
        r.check("json_schema: every answer validates", answers.iter().flatten().all(|a| validator.is_valid(a)));
        if let Some(Some(first)) = answers.first() {
            r.note(format!("e.g. {}", crate::http::trim(&first.to_string(), 120)));
        }
    }
    // an answer cut by max_tokens cannot be whole JSON on any server: only finished ones are judged
    let body = json!({"model": model, "temperature": 1.0, "max_tokens": 300, "n": 2, "response_format": {"type": "json_object"},
        "messages": [{"role": "user", "content": "Describe a cat as a small JSON object with three fields."}]});
    if let Some(v) = post_json(http, &mut r, &body).await {
        let finished = finished_contents(&v);
        r.check(format!("json_object: {} of 2 answers finished within max_tokens", finished.len()), !finished.is_empty());
        let objects = finished.iter().all(|t| serde_json::from_str::<Value>(t).is_ok_and(|v| v.is_object()));
        r.check("json_object: every finished answer is a JSON object", objects);
    }
    r
}

/// The contents of the choices that ended on their own (not cut by `max_tokens`).
fn finished_contents(v: &Value) -> Vec<String> {
    let choices = v["choices"].as_array().cloned().unwrap_or_default();
    choices.iter().filter(|c| c["finish_reason"] != "length").map(|c| c["message"]["content"].as_str().unwrap_or("").to_string()).collect()
}

fn choice_contents(v: &Value) -> Vec<String> {
    let choices = v["choices"].as_array().cloned().unwrap_or_default();
    choices.iter().map(|c| c["message"]["content"].as_str().unwrap_or("").to_string()).collect()
}
