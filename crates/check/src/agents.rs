//! Coding agents' requests: whether a Claude-Code-shaped Messages request and a Codex-shaped
//! Responses request are accepted, and what the server does with a `max_tokens` larger than
//! the context has left (agents send 32000 or the whole context whatever the prompt).

use serde_json::{json, Value};

use crate::compliance::context_length;
use crate::http::Http;
use crate::result::CheckResult;

/// A request shaped as Claude Code 2.1 sends it: a system message inside `messages`, adaptive
/// thinking, context management, effort, metadata, a `custom` tool and `max_tokens` 32000.
pub fn claude_code_request(model: &str) -> Value {
    json!({
        "model": model,
        "max_tokens": 32000,
        "stream": true,
        "system": [
            {"type": "text", "text": "You are a coding agent running in a terminal."},
            {"type": "text", "text": "Answer briefly.", "cache_control": {"type": "ephemeral"}}
        ],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Say hello in one short sentence.", "cache_control": {"type": "ephemeral"}}]},
            {"role": "system", "content": "Working directory: /tmp/project. Platform: linux."}
        ],
        "tools": [{"type": "custom", "name": "Bash", "description": "Runs a shell command.",
            "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"], "additionalProperties": false}}],
        "thinking": {"type": "adaptive", "display": "omitted"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "output_config": {"effort": "high"},
        "metadata": {"user_id": "check"},
        "temperature": 1
    })
}

/// A request shaped as Codex CLI sends it to `/v1/responses`: instructions, developer and user
/// messages as input items, function tools with `strict: false`, reasoning settings, `store:
/// false`, `include` and `prompt_cache_key`.
pub fn codex_request(model: &str) -> Value {
    json!({
        "model": model,
        "instructions": "You are a coding agent. Answer briefly.",
        "input": [
            {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "The sandbox is read-only."}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Say hello in one short sentence."}]}
        ],
        "tools": [{"type": "function", "name": "shell", "description": "Runs a shell command.", "strict": false,
            "parameters": {"type": "object", "properties": {"command": {"type": "array", "items": {"type": "string"}}}, "required": ["command"], "additionalProperties": false}}],
        "tool_choice": "auto",
        "parallel_tool_calls": false,
        "reasoning": {"effort": "medium", "summary": "auto"},
        "store": false,
        "stream": true,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "check",
        "text": {"verbosity": "medium"}
    })
}

/// The agents' request shapes and the `max_tokens` behaviour (not required: a server may
/// serve neither API).
pub async fn agents(http: &Http, model: &str) -> CheckResult {
    let mut r = CheckResult::new("Coding agents", false);
    let headers = [("anthropic-version", "2023-06-01"), ("anthropic-beta", "claude-code-20250219,context-management-2025-06-27")];
    let x = http.post_opening("/v1/messages?beta=true", &claude_code_request(model), &headers, "event: content_block_start").await;
    if r.record(&x) {
        r.check(format!("Claude-Code-shaped Messages request: status 200 (got {})", x.status), x.status == 200);
        r.check("Claude-Code-shaped: the stream opens with message_start", x.body.starts_with("event: message_start"));
    }
    let x = http.post_opening("/v1/responses", &codex_request(model), &[], "response.created").await;
    if r.record(&x) {
        r.check(format!("Codex-shaped Responses request: status 200 (got {})", x.status), x.status == 200);
        r.check("Codex-shaped: the stream opens with response.created", x.body.contains("response.created"));
    }
    max_tokens_behaviour(&mut r, http, model).await;
    r
}

/// Asks for more tokens than the context has left and reads only the answer's opening: 200
/// means the server generates until the context is full (llama.cpp, Ollama, hearth), 400 that
/// it refuses (vLLM, hearth --strict-max-tokens).
async fn max_tokens_behaviour(r: &mut CheckResult, http: &Http, model: &str) {
    let max_tokens = context_length(http, model).await.unwrap_or(10_000_000);
    let body = json!({"model": model, "max_tokens": max_tokens, "stream": true, "messages": [{"role": "user", "content": "hi"}]});
    let x = http.post_opening("/v1/chat/completions", &body, &[], "data:").await;
    if !r.record(&x) {
        return;
    }
    let behaviour = match x.status {
        200 => "generates until the context is full and ends with finish_reason \"length\" (llama.cpp's and Ollama's behaviour)",
        400 => "answers 400, the context-length error (vLLM's behaviour)",
        _ => "neither generates nor refuses with 400",
    };
    r.check(format!("max_tokens {max_tokens} with a short prompt: 200 or 400 (got {})", x.status), matches!(x.status, 200 | 400));
    r.note(format!("max_tokens beyond what the context has left: the server {behaviour}"));
}
