//! `POST /v1/completions` (the legacy text completion endpoint); with `suffix`, fill-in-the-middle
//! in OpenAI's sense: the prompt is the text before the hole and the answer is the middle.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use hearth_engine::{FinishReason, TokenEvent};
use hearth_protocol::infill::MistralFimRequest;
use hearth_protocol::{
    ChatChoice, ChatCompletionResponse, ChatMessageOut, CompletionChoice, CompletionRequest, CompletionResponse, PromptInput, SamplingFields, Usage,
};
use hearth_tools::ReplyFormat;
use hearth_tokenizer::{FimInput, Tokenizer};

use crate::access_log::RequestLog;
use crate::body::parse_body;
use crate::chat_stream::ChatShape;
use crate::error::ApiError;
use crate::fim;
use crate::generation;
use crate::params;
use crate::state::{AppState, ServedModel};
use crate::stream::{sse_response, ChunkShape};
use crate::{logprobs, unix_now, warn_unknown_fields};

/// OpenAI's default `max_tokens` for completions.
const DEFAULT_MAX_TOKENS: u32 = 16;
/// OpenAI's limit on `logprobs` for completions.
const MAX_LOGPROBS: u32 = 5;

pub async fn completions(
    State(state): State<Arc<AppState>>,
    Extension(log): Extension<Arc<RequestLog>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let request: CompletionRequest = parse_body(body, state.config.max_body_bytes)?;
    let model_name = state.resolve_model_name(request.model.as_deref())?;
    let model = state.ready_model()?;
    warn_unknown_fields(&request.unknown);
    let suffix = request.suffix.clone().filter(|s| !s.is_empty());
    if request.best_of.is_some_and(|b| b != request.sampling.n.unwrap_or(1)) {
        return Err(ApiError::bad_request("best_of must equal n: hearth does not rank candidates", Some("best_of")));
    }
    let logprobs = match request.logprobs {
        Some(n) if n > MAX_LOGPROBS => {
            return Err(ApiError::bad_request(format!("logprobs must be at most {MAX_LOGPROBS}"), Some("logprobs")))
        }
        other => other.map(|n| n as usize),
    };
    let echo = request.echo.unwrap_or(false);
    if echo && logprobs.is_some() {
        // OpenAI would score the prompt tokens too; the engine does not compute those.
        return Err(ApiError::bad_request("echo together with logprobs is not supported yet", Some("echo")));
    }
    let max_tokens = request.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS);
    let prompts = match &suffix {
        Some(_) if echo => {
            return Err(ApiError::bad_request("echo cannot be combined with suffix: the answer of a fill-in-the-middle request is the middle alone", Some("echo")));
        }
        Some(suffix) => fim_prompts(&model, request.prompt, suffix, max_tokens)?,
        None => prompt_tokens(&model, request.prompt)?,
    };
    let echo_texts: Vec<String> = match echo {
        true => prompts.iter().map(|p| model.tokenizer().decode(p)).collect(),
        false => vec![String::new(); prompts.len()],
    };
    let mut sampling = request.sampling;
    if suffix.is_some() {
        fim::add_stops(&mut sampling, &model);
    }
    let plan = params::plan(sampling, Some(max_tokens), logprobs, &model.defaults)?;
    let guard = state.admit(&model, prompts.len() * plan.n)?;
    let submitted = generation::submit(&model, prompts, &plan, guard, "prompt", Vec::new())?;
    let shape = CompletionShape {
        id: format!("cmpl-{}", crate::random_id()),
        created: unix_now(),
        model: model_name,
        tokenizer: model.tokenizer().clone(),
        logprobs: logprobs.is_some(),
        include_usage: plan.include_usage,
        echo_texts,
        n: plan.n,
    };
    if plan.stream {
        return Ok(sse_response(submitted, shape, plan.include_usage, log));
    }
    let (results, usage) = generation::collect(submitted, &log).await?;
    let choices = results
        .iter()
        .enumerate()
        .map(|(index, r)| {
            let echo = shape.echo_text(index as u32);
            CompletionChoice {
                index: index as u32,
                text: format!("{echo}{}", r.text),
                logprobs: shape.logprobs.then(|| logprobs::completion(&shape.tokenizer, &r.tokens, echo.len())),
                finish_reason: r.finish_reason().map(str::to_string),
            }
        })
        .collect();
    let response = CompletionResponse {
        id: shape.id,
        object: "text_completion".into(),
        created: shape.created,
        model: shape.model,
        choices,
        usage: Some(Some(usage)),
        system_fingerprint: None,
    };
    Ok(Json(response).into_response())
}

/// Token ids of each prompt (texts are tokenized with the model's BOS rule).
fn prompt_tokens(model: &ServedModel, prompt: PromptInput) -> Result<Vec<Vec<u32>>, ApiError> {
    let tokenizer = model.tokenizer();
    let encode = |text: &str| tokenizer.encode_prompt(text).map_err(|e| ApiError::internal(e.to_string()));
    let prompts = match prompt {
        PromptInput::Text(text) => vec![encode(&text)?],
        PromptInput::Texts(texts) => texts.iter().map(|t| encode(t)).collect::<Result<_, _>>()?,
        PromptInput::Tokens(ids) => vec![ids],
        PromptInput::TokenLists(lists) => lists,
    };
    if prompts.is_empty() {
        return Err(ApiError::bad_request("prompt must not be an empty list", Some("prompt")));
    }
    Ok(prompts)
}

/// FIM prompts: each text prompt is the prefix of the same hole before `suffix`.
fn fim_prompts(model: &ServedModel, prompt: PromptInput, suffix: &str, max_tokens: u32) -> Result<Vec<Vec<u32>>, ApiError> {
    let prefixes = match prompt {
        PromptInput::Text(text) => vec![text],
        PromptInput::Texts(texts) if !texts.is_empty() => texts,
        PromptInput::Texts(_) => return Err(ApiError::bad_request("prompt must not be an empty list", Some("prompt"))),
        PromptInput::Tokens(_) | PromptInput::TokenLists(_) => {
            return Err(ApiError::bad_request("suffix needs the prompt as text (the prefix), not token ids", Some("prompt")))
        }
    };
    prefixes
        .iter()
        .map(|prefix| {
            let input = FimInput { prefix, suffix, ..Default::default() };
            Ok(fim::prompt(model, &input, Some(max_tokens), "suffix")?.tokens)
        })
        .collect()
}

/// Completion chunk shapes for one request.
struct CompletionShape {
    id: String,
    created: u64,
    model: String,
    tokenizer: Arc<Tokenizer>,
    logprobs: bool,
    include_usage: bool,
    /// Per prompt: its text when `echo` is set, else empty.
    echo_texts: Vec<String>,
    n: usize,
}

impl CompletionShape {
    fn echo_text(&self, index: u32) -> &str {
        &self.echo_texts[index as usize / self.n]
    }

    fn chunk(&self, choices: Vec<CompletionChoice>, usage: Option<Usage>) -> String {
        let chunk = CompletionResponse {
            id: self.id.clone(),
            object: "text_completion".into(),
            created: self.created,
            model: self.model.clone(),
            choices,
            usage: self.include_usage.then_some(usage),
            system_fingerprint: None,
        };
        serde_json::to_string(&chunk).unwrap_or_default()
    }

    fn choice(&self, index: u32, text: String, reason: Option<FinishReason>) -> CompletionChoice {
        CompletionChoice { index, text, logprobs: None, finish_reason: reason.map(|r| r.as_str().to_string()) }
    }
}

impl ChunkShape for CompletionShape {
    fn opening(&self, index: u32) -> Option<String> {
        let echo = self.echo_text(index);
        (!echo.is_empty()).then(|| self.chunk(vec![self.choice(index, echo.to_string(), None)], None))
    }

    fn token(&mut self, index: u32, event: &TokenEvent) -> Vec<String> {
        if event.text.is_empty() && !self.logprobs && event.finish.is_none() {
            return Vec::new();
        }
        let mut choice = self.choice(index, event.text.clone(), event.finish);
        if self.logprobs {
            choice.logprobs = Some(logprobs::completion(&self.tokenizer, std::slice::from_ref(&event.sampled), 0));
        }
        vec![self.chunk(vec![choice], None)]
    }

    fn closing(&mut self, index: u32, reason: FinishReason) -> Vec<String> {
        vec![self.chunk(vec![self.choice(index, String::new(), Some(reason))], None)]
    }

    fn usage(&self, usage: Usage) -> String {
        self.chunk(Vec::new(), Some(usage))
    }
}

/// Mistral's `POST /v1/fim/completions` (Codestral's API, which Continue and LiteLLM speak):
/// `prompt` and `suffix` in, the middle out as a chat completion (streamed as chat chunks).
pub async fn mistral_fim(
    State(state): State<Arc<AppState>>,
    Extension(log): Extension<Arc<RequestLog>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let request: MistralFimRequest = parse_body(body, state.config.max_body_bytes)?;
    let model_name = state.resolve_model_name(request.model.as_deref())?;
    let model = state.ready_model()?;
    warn_unknown_fields(&request.unknown);
    let suffix = request.suffix.clone().unwrap_or_default();
    let prompt = fim::prompt(&model, &FimInput { prefix: &request.prompt, suffix: &suffix, ..Default::default() }, request.max_tokens, "suffix")?;
    let mut fields = SamplingFields {
        temperature: request.temperature,
        top_p: request.top_p,
        stop: request.stop.clone(),
        seed: request.random_seed,
        min_tokens: request.min_tokens,
        stream: request.stream,
        ..Default::default()
    };
    fim::add_stops(&mut fields, &model);
    let plan = params::plan(fields, request.max_tokens, None, &model.defaults)?;
    let guard = state.admit(&model, plan.n)?;
    let submitted = generation::submit(&model, vec![prompt.tokens], &plan, guard, "prompt", Vec::new())?;
    let shape = ChatShape::new(format!("cmpl-{}", crate::random_id()), unix_now(), model_name, model.tokenizer().clone(), false, plan.include_usage);
    if plan.stream {
        let shape = shape.read_replies(1, &ReplyFormat::default(), false);
        return Ok(sse_response(submitted, shape, plan.include_usage, log));
    }
    let (results, usage) = generation::collect(submitted, &log).await?;
    let result = results.into_iter().next().unwrap_or_default();
    let message = ChatMessageOut { role: "assistant".into(), reasoning_content: None, content: Some(result.text.clone()), tool_calls: Vec::new() };
    let choice = ChatChoice { index: 0, message, logprobs: None, finish_reason: result.finish_reason().map(str::to_string) };
    let response = ChatCompletionResponse {
        id: shape.id,
        object: "chat.completion".into(),
        created: shape.created,
        model: shape.model,
        choices: vec![choice],
        usage,
        system_fingerprint: None,
    };
    Ok(Json(response).into_response())
}
