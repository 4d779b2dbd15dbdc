//! Ollama's native API in OpenAI shapes: requests become `/api/chat` or `/api/generate`
//! bodies; its JSON answers and NDJSON streams become OpenAI responses and SSE chunks, with
//! usage from `prompt_eval_count` / `eval_count` and finish reasons from `done_reason`.

use serde_json::{json, Map, Value};

use crate::upstream::Endpoint;

/// The Ollama request for an OpenAI request body, `model` being the upstream name.
pub fn request_body(endpoint: Endpoint, openai: &Value, model: &str, stream: bool) -> Value {
    let mut options = Map::new();
    let mut copy = |from: &str, to: &str| {
        if let Some(v) = openai.get(from).filter(|v| !v.is_null()) {
            options.insert(to.to_string(), v.clone());
        }
    };
    for (from, to) in [
        ("temperature", "temperature"),
        ("top_p", "top_p"),
        ("top_k", "top_k"),
        ("min_p", "min_p"),
        ("seed", "seed"),
        ("presence_penalty", "presence_penalty"),
        ("frequency_penalty", "frequency_penalty"),
        ("repetition_penalty", "repeat_penalty"),
        ("max_tokens", "num_predict"),
        ("max_completion_tokens", "num_predict"),
    ] {
        copy(from, to);
    }
    if let Some(stop) = openai.get("stop").filter(|v| !v.is_null()) {
        let list = if stop.is_string() { json!([stop]) } else { stop.clone() };
        options.insert("stop".into(), list);
    }
    let mut body = json!({"model": model, "stream": stream, "options": options});
    match endpoint {
        // the typed-event APIs reach Ollama untranslated (its /v1 paths); never here
        Endpoint::Chat | Endpoint::Responses | Endpoint::Messages => body["messages"] = Value::Array(openai["messages"].as_array().cloned().unwrap_or_default().iter().map(message).collect()),
        Endpoint::Completions => {
            body["prompt"] = openai["prompt"].clone();
            body["raw"] = json!(true);
        }
    }
    body
}

/// An OpenAI message with its content as one string (text parts joined).
fn message(m: &Value) -> Value {
    let content = match &m["content"] {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts.iter().filter_map(|p| p["text"].as_str()).collect::<Vec<_>>().join("\n"),
        _ => String::new(),
    };
    json!({"role": m["role"], "content": content})
}

fn finish_reason(done: &Value) -> &'static str {
    match done["done_reason"].as_str() {
        Some("length") => "length",
        _ => "stop",
    }
}

fn usage(done: &Value) -> Value {
    let prompt = done["prompt_eval_count"].as_u64().unwrap_or(0);
    let completion = done["eval_count"].as_u64().unwrap_or(0);
    json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion})
}

fn text_of(endpoint: Endpoint, v: &Value) -> String {
    match endpoint {
        // the typed-event APIs reach Ollama untranslated (its /v1 paths); never here
        Endpoint::Chat | Endpoint::Responses | Endpoint::Messages => v["message"]["content"].as_str().unwrap_or("").to_string(),
        Endpoint::Completions => v["response"].as_str().unwrap_or("").to_string(),
    }
}

/// A complete (non-streaming) Ollama answer as an OpenAI response.
pub fn response(endpoint: Endpoint, ollama: &Value, id: &str, created: u64, public_model: &str) -> Value {
    let text = text_of(endpoint, ollama);
    let choice = match endpoint {
        // the typed-event APIs reach Ollama untranslated (its /v1 paths); never here
        Endpoint::Chat | Endpoint::Responses | Endpoint::Messages => json!({"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": null, "finish_reason": finish_reason(ollama)}),
        Endpoint::Completions => json!({"index": 0, "text": text, "logprobs": null, "finish_reason": finish_reason(ollama)}),
    };
    json!({"id": id, "object": endpoint.object(false), "created": created, "model": public_model, "choices": [choice], "usage": usage(ollama)})
}

/// Turns an NDJSON stream into OpenAI SSE payloads, line by line.
pub struct StreamTranslator {
    endpoint: Endpoint,
    id: String,
    created: u64,
    model: String,
    include_usage: bool,
    started: bool,
    /// The usage of the final line, once seen.
    pub usage: Option<Value>,
}

impl StreamTranslator {
    pub fn new(endpoint: Endpoint, id: String, created: u64, model: String, include_usage: bool) -> Self {
        StreamTranslator { endpoint, id, created, model, include_usage, started: false, usage: None }
    }

    fn chunk(&self, choices: Value, usage: Option<Value>) -> String {
        let mut chunk = json!({"id": self.id, "object": self.endpoint.object(true), "created": self.created, "model": self.model, "choices": choices});
        if let Some(u) = usage {
            chunk["usage"] = u;
        }
        chunk.to_string()
    }

    fn choice(&self, text: Option<String>, role: bool, finish: Option<&str>) -> Value {
        match self.endpoint {
            Endpoint::Chat | Endpoint::Responses | Endpoint::Messages => {
                let mut delta = Map::new();
                if role {
                    delta.insert("role".into(), json!("assistant"));
                }
                if let Some(t) = text {
                    delta.insert("content".into(), json!(t));
                }
                json!([{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}])
            }
            Endpoint::Completions => json!([{"index": 0, "text": text.unwrap_or_default(), "logprobs": null, "finish_reason": finish}]),
        }
    }

    /// The SSE payloads for one NDJSON line (without the final `[DONE]`).
    pub fn on_line(&mut self, line: &str) -> Result<Vec<String>, String> {
        let v: Value = serde_json::from_str(line).map_err(|e| format!("bad NDJSON line from Ollama: {e}"))?;
        if let Some(error) = v.get("error") {
            return Err(format!("Ollama error: {error}"));
        }
        let mut out = Vec::new();
        if !self.started && self.endpoint == Endpoint::Chat {
            out.push(self.chunk(self.choice(Some(String::new()), true, None), None));
        }
        self.started = true;
        let text = text_of(self.endpoint, &v);
        let done = v["done"].as_bool().unwrap_or(false);
        if !text.is_empty() || done {
            let finish = done.then(|| finish_reason(&v));
            out.push(self.chunk(self.choice(Some(text), false, finish), None));
        }
        if done {
            let usage = usage(&v);
            if self.include_usage {
                out.push(self.chunk(json!([]), Some(usage.clone())));
            }
            self.usage = Some(usage);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_map_to_ollama_options() {
        let openai = json!({"model": "public", "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
            "temperature": 0.2, "max_tokens": 7, "stop": "END", "seed": 3});
        let body = request_body(Endpoint::Chat, &openai, "qwen2.5-coder:7b", true);
        assert_eq!(body["model"], "qwen2.5-coder:7b");
        assert_eq!(body["messages"], json!([{"role": "user", "content": "hi"}]));
        assert_eq!(body["options"], json!({"temperature": 0.2, "num_predict": 7, "seed": 3, "stop": ["END"]}));
        assert_eq!(body["stream"], true);
    }

    #[test]
    fn streams_become_role_first_chunks_with_usage() {
        let mut t = StreamTranslator::new(Endpoint::Chat, "chatcmpl-1".into(), 5, "public".into(), true);
        let first = t.on_line(r#"{"message": {"role": "assistant", "content": "Hel"}, "done": false}"#).unwrap();
        assert_eq!(first.len(), 2);
        let role: Value = serde_json::from_str(&first[0]).unwrap();
        assert_eq!(role["choices"][0]["delta"], json!({"role": "assistant", "content": ""}));
        let last = t.on_line(r#"{"message": {"content": ""}, "done": true, "done_reason": "length", "prompt_eval_count": 4, "eval_count": 2}"#).unwrap();
        let finish: Value = serde_json::from_str(&last[0]).unwrap();
        assert_eq!(finish["choices"][0]["finish_reason"], "length");
        let usage: Value = serde_json::from_str(&last[1]).unwrap();
        assert_eq!(usage["usage"], json!({"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6}));
        assert_eq!(usage["choices"], json!([]));
        assert!(t.on_line(r#"{"error": "model not found"}"#).is_err());
    }

    #[test]
    fn complete_answers_become_openai_responses() {
        let ollama = json!({"message": {"role": "assistant", "content": "Hi!"}, "done": true, "done_reason": "stop", "prompt_eval_count": 3, "eval_count": 2});
        let r = response(Endpoint::Chat, &ollama, "chatcmpl-x", 1, "public");
        assert_eq!(r["choices"][0]["message"]["content"], "Hi!");
        assert_eq!(r["usage"]["total_tokens"], 5);
        assert_eq!(r["model"], "public");
        assert_eq!(r["object"], "chat.completion");
    }
}
