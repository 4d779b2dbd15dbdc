//! Ollama's native API on hearth's port: `/api/version`, `/api/tags`, `/api/ps`, `/api/show`,
//! `/api/chat` and `/api/generate` (NDJSON streaming by default, `options`, `format`, `tools`)
//! through the chat pipeline; model management routes answer a clear 501; errors are
//! Ollama's `{"error": "..."}`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use hearth_protocol::ollama::{OllamaChatRequest, OllamaGenerateRequest, OllamaMessage, OllamaOptions, OllamaShowRequest};
use hearth_protocol::{ChatMessageIn, SamplingFields, StopSpec};
use hearth_tokenizer::FimInput;
use serde_json::{json, Map, Value};

use crate::access_log::RequestLog;
use crate::body::parse_body;
use crate::conversation::{reply_parts, start_prompt, Ask, Conversation, Started};
use crate::error::ApiError;
use crate::ollama_stream::{done_fields, line, ndjson_response, piece, with_thinking, Shape};
use crate::state::{AppState, ServedModel};
use crate::tool_plan::ToolPlan;
use crate::{generation, warn_unknown_fields};

/// The Ollama API version hearth answers to (clients gate features on it).
const OLLAMA_VERSION: &str = "0.12.0";

fn ollama_error(error: ApiError) -> Response {
    (error.status, Json(json!({"error": error.body.error.message}))).into_response()
}

fn respond(result: Result<Response, ApiError>) -> Response {
    result.unwrap_or_else(ollama_error)
}

pub async fn version() -> Json<Value> {
    Json(json!({"version": OLLAMA_VERSION}))
}

/// The listed model in `/api/tags` and `/api/ps` shape.
fn model_entry(state: &AppState, model: &ServedModel) -> Value {
    let name = &state.config.served_model_names[0];
    let root = &state.config.model_root;
    let format = if root.ends_with(".gguf") { "gguf" } else { "safetensors" };
    json!({"name": name, "model": name, "modified_at": crate::rfc3339_now(), "size": model.engine.info().model_bytes,
        "digest": "", "details": {"format": format, "family": "", "families": null, "parameter_size": "", "quantization_level": ""}})
}

pub async fn tags(State(state): State<Arc<AppState>>) -> Response {
    let models: Vec<Value> = state.model().map(|m| model_entry(&state, m)).into_iter().collect();
    Json(json!({"models": models})).into_response()
}

pub async fn ps(State(state): State<Arc<AppState>>) -> Response {
    let models: Vec<Value> = state
        .model()
        .map(|m| {
            let mut entry = model_entry(&state, m);
            entry["expires_at"] = json!("9999-12-31T23:59:59Z");
            entry["size_vram"] = json!(0);
            entry
        })
        .into_iter()
        .collect();
    Json(json!({"models": models})).into_response()
}

pub async fn show(State(state): State<Arc<AppState>>, body: Result<Bytes, BytesRejection>) -> Response {
    respond((|| {
        let request: OllamaShowRequest = parse_body(body, state.config.max_body_bytes)?;
        resolve(&state, request.model.or(request.name).as_deref())?;
        let model = state.ready_model()?;
        let chat_template = model.template.as_ref().map(|t| t.source().to_string()).unwrap_or_default();
        let entry = model_entry(&state, &model);
        let info = json!({"general.architecture": "", "hearth.context_length": model.max_model_len()});
        let mut capabilities = vec!["completion", "tools"];
        // FIM models show Ollama's insert form (`.Suffix`), which Continue and Zed look for
        let template = match fim_template(&model) {
            Some(fim) => {
                capabilities.push("insert");
                format!("{{{{- if .Suffix }}}}{fim}{{{{- else }}}}{chat_template}{{{{- end }}}}")
            }
            None => chat_template,
        };
        let show = json!({"modelfile": "", "parameters": "", "template": template, "details": entry["details"],
            "model_info": info, "capabilities": capabilities, "modified_at": entry["modified_at"]});
        Ok(Json(show).into_response())
    })())
}

/// The model's FIM prompt as an Ollama template (`<PRE>{{ .Prompt }}<SUF>{{ .Suffix }}<MID>`
/// in the model's own tokens); None for a model without FIM tokens.
fn fim_template(model: &ServedModel) -> Option<String> {
    let tokenizer = model.tokenizer();
    let (pre, suf, mid) = tokenizer.fim().required().ok()?;
    let text = |id| tokenizer.token_text(id).unwrap_or_default();
    Some(format!("{}{{{{ .Prompt }}}}{}{{{{ .Suffix }}}}{}", text(pre), text(suf), text(mid)))
}

/// Model management belongs to Ollama's own store; hearth serves the model it started with.
pub async fn unsupported() -> Response {
    let message = "hearth serves the model it was started with: pulling, pushing, creating, copying or deleting models and embeddings are not available";
    (StatusCode::NOT_IMPLEMENTED, Json(json!({"error": message}))).into_response()
}

/// The served name an Ollama model name stands for (`name` or `name:latest`).
fn resolve(state: &AppState, name: Option<&str>) -> Result<String, ApiError> {
    let name = name.map(|n| n.strip_suffix(":latest").unwrap_or(n));
    state.resolve_model_name(name)
}

pub async fn chat(
    State(state): State<Arc<AppState>>,
    Extension(log): Extension<Arc<RequestLog>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    respond(chat_answer(state, log, body).await)
}

async fn chat_answer(state: Arc<AppState>, log: Arc<RequestLog>, body: Result<Bytes, BytesRejection>) -> Result<Response, ApiError> {
    let request: OllamaChatRequest = parse_body(body, state.config.max_body_bytes)?;
    let name = resolve(&state, Some(&request.model))?;
    let model = state.ready_model()?;
    warn_unknown_fields(&request.unknown);
    let messages = request.messages.iter().enumerate().map(|(i, m)| chat_message(i, m)).collect::<Result<Vec<_>, _>>()?;
    let conversation = Conversation::new(messages, request.tools, None, None)?.with_template_kwargs(think_kwargs(request.think.as_ref()));
    let prompt = conversation.render(&model)?;
    let job = Job { shape: Shape::Chat, name, prompt, options: request.options, stream: request.stream, format: request.format, fim_stops: false };
    run(&state, &model, log, job, &conversation.tools).await
}

pub async fn generate(
    State(state): State<Arc<AppState>>,
    Extension(log): Extension<Arc<RequestLog>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    respond(generate_answer(state, log, body).await)
}

async fn generate_answer(state: Arc<AppState>, log: Arc<RequestLog>, body: Result<Bytes, BytesRejection>) -> Result<Response, ApiError> {
    let request: OllamaGenerateRequest = parse_body(body, state.config.max_body_bytes)?;
    let name = resolve(&state, Some(&request.model))?;
    let model = state.ready_model()?;
    warn_unknown_fields(&request.unknown);
    if request.images.as_ref().is_some_and(|i| !i.is_empty()) {
        return Err(ApiError::bad_request("images are not supported: this model reads text only", Some("images")));
    }
    let suffix = request.suffix.as_deref().filter(|s| !s.is_empty());
    let verbatim = match request.template.as_deref().map(str::trim) {
        None | Some("") => false,
        Some("{{ .Prompt }}" | "{{.Prompt}}") => true,
        Some(_) => {
            let text = "Custom templates are not supported: hearth renders the model's own template. Send `raw: true` with a prompt you formatted yourself, or leave `template` out";
            return Err(ApiError::bad_request(text, Some("template")));
        }
    };
    let prompt = if let Some(suffix) = suffix {
        let max_tokens = request.options.as_ref().and_then(|o| o.num_predict).filter(|&n| n >= 0).map(|n| n.min(u32::MAX as i64) as u32);
        crate::fim::prompt(&model, &FimInput { prefix: &request.prompt, suffix, ..Default::default() }, max_tokens, "suffix")?.tokens
    } else if request.raw.unwrap_or(false) || verbatim {
        model.tokenizer().encode_prompt(&request.prompt).map_err(|e| ApiError::internal(e.to_string()))?
    } else {
        let mut messages = Vec::new();
        if let Some(system) = &request.system {
            messages.push(ChatMessageIn::text("system", system));
        }
        messages.push(ChatMessageIn::text("user", &request.prompt));
        Conversation::new(messages, None, None, None)?.render(&model)?
    };
    let fim_stops = suffix.is_some();
    let job = Job { shape: Shape::Generate, name, prompt, options: request.options, stream: request.stream, format: request.format, fim_stops };
    run(&state, &model, log, job, &ToolPlan::from_request(None, None, None)?).await
}

/// One generation as Ollama asked for it.
struct Job {
    shape: Shape,
    name: String,
    prompt: Vec<u32>,
    options: Option<OllamaOptions>,
    stream: Option<bool>,
    format: Option<Value>,
    /// A fill-in-the-middle prompt: generation also ends at the model's FIM tokens.
    fim_stops: bool,
}

async fn run(state: &AppState, model: &ServedModel, log: Arc<RequestLog>, job: Job, tools: &ToolPlan) -> Result<Response, ApiError> {
    let options = job.options.unwrap_or_default();
    if !options.other.is_empty() {
        warn_unknown_fields(&options.other);
    }
    let max_tokens = options.num_predict.filter(|&n| n >= 0).map(|n| n.clamp(0, u32::MAX as i64) as u32);
    let mut fields = SamplingFields {
        temperature: options.temperature,
        top_p: options.top_p,
        top_k: options.top_k,
        min_p: options.min_p,
        seed: options.seed,
        stop: options.stop.clone().map(StopSpec::Many),
        repetition_penalty: options.repeat_penalty,
        presence_penalty: options.presence_penalty,
        frequency_penalty: options.frequency_penalty,
        ..Default::default()
    };
    if job.fim_stops {
        crate::fim::add_stops(&mut fields, model);
    }
    let format = response_format(job.format.as_ref())?;
    let ask = Ask { fields, max_tokens, logprobs: None, format: format.as_ref() };
    let Started { submitted, reply: format, .. } = start_prompt(state, model, job.prompt, tools, ask, "prompt")?;
    if job.stream.unwrap_or(true) {
        return Ok(ndjson_response(submitted, job.shape, job.name, &format, log));
    }
    let started = std::time::Instant::now();
    let (results, _) = generation::collect(submitted, &log).await?;
    let result = results.into_iter().next().unwrap_or_default();
    let reply = reply_parts(&result.text, &format, false);
    let mut answer = piece(job.shape, reply.content.as_deref().unwrap_or(""), &reply.calls);
    if let Some(thinking) = reply.reasoning {
        answer = with_thinking(job.shape, answer, thinking);
    }
    let finished = result.finish.ok_or_else(|| ApiError::internal("the request ended without finishing"))?;
    if let (Value::Object(o), Value::Object(done)) = (&mut answer, done_fields(&finished, started, None, !reply.calls.is_empty())) {
        o.extend(done);
    }
    Ok(Json(line(&job.name, answer)).into_response())
}

/// Ollama's `format` as an OpenAI `response_format`: `"json"` or a JSON Schema.
fn response_format(format: Option<&Value>) -> Result<Option<Value>, ApiError> {
    match format {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) if s == "json" => Ok(Some(json!({"type": "json_object"}))),
        Some(schema @ Value::Object(_)) => Ok(Some(json!({"type": "json_schema", "json_schema": {"name": "format", "schema": schema}}))),
        Some(_) => Err(ApiError::bad_request("format must be \"json\" or a JSON Schema object", Some("format"))),
    }
}


/// An Ollama message as a chat message; its calls (arguments as objects) in OpenAI's shape.
fn chat_message(index: usize, message: &OllamaMessage) -> Result<ChatMessageIn, ApiError> {
    if message.images.as_ref().is_some_and(|i| !i.is_empty()) {
        let param = format!("messages[{index}].images");
        return Err(ApiError::bad_request("images are not supported: this model reads text only", Some(&param)));
    }
    let mut out = ChatMessageIn::text(&message.role, &message.content);
    out.name = message.tool_name.clone();
    out.reasoning_content = message.thinking.clone().filter(|_| message.role == "assistant");
    if let Some(calls) = &message.tool_calls {
        let converted = calls
            .iter()
            .enumerate()
            .map(|(j, call)| {
                let function = call.get("function").cloned().unwrap_or_else(|| Value::Object(Map::new()));
                let arguments = match function.get("arguments") {
                    Some(Value::String(s)) => s.clone(),
                    Some(v) => v.to_string(),
                    None => "{}".into(),
                };
                json!({"id": format!("call_{j}"), "type": "function", "function": {"name": function.get("name").cloned().unwrap_or_default(), "arguments": arguments}})
            })
            .collect();
        out.tool_calls = Some(converted);
    }
    Ok(out)
}

/// Ollama's `think` as template switches: `true`/`false` turn thinking on or off; a level
/// (`"low"`, `"medium"`, `"high"`) turns it on at that reasoning effort.
fn think_kwargs(think: Option<&Value>) -> Vec<(String, Value)> {
    match think {
        Some(Value::Bool(on)) => vec![("enable_thinking".into(), Value::Bool(*on))],
        Some(Value::String(level)) => {
            vec![("enable_thinking".into(), Value::Bool(true)), ("reasoning_effort".into(), Value::String(level.clone()))]
        }
        _ => Vec::new(),
    }
}
