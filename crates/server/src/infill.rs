//! llama.cpp's `POST /infill` (what llama.vscode and llama.vim send): the FIM prompt from
//! `input_prefix` + `prompt`, `input_suffix` and `input_extra` files (named as given), its
//! limits (`n_indent`, `t_max_predict_ms`), and llama.cpp's answer: `content`, `tokens_cached`,
//! `truncated`, `stop_type`, `timings`; streamed as `data:` events, several with `n_cmpl`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use futures_util::StreamExt;
use hearth_engine::{EngineEvent, FinishReason, Finished};
use hearth_protocol::infill::InfillRequest;
use hearth_protocol::SamplingFields;
use hearth_tokenizer::{ContextFile, FimInput};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::access_log::RequestLog;
use crate::body::parse_body;
use crate::error::ApiError;
use crate::generation::{self, ChoiceEvent, Submitted};
use crate::state::AppState;
use crate::stream::channel_body;
use crate::{fim, params, warn_unknown_fields};

pub async fn infill(
    State(state): State<Arc<AppState>>,
    Extension(log): Extension<Arc<RequestLog>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let request: InfillRequest = parse_body(body, state.config.max_body_bytes)?;
    let model_name = state.resolve_model_name(request.model.as_deref())?;
    let model = state.ready_model()?;
    warn_unknown_fields(&request.unknown);
    let extra: Vec<ContextFile> = request.input_extra.iter().map(|e| ContextFile { filename: e.filename.clone(), text: e.text.clone() }).collect();
    let prefix = format!("{}{}", request.input_prefix, request.prompt);
    let input = FimInput { prefix: &prefix, suffix: &request.input_suffix, extra: &extra, filename: None, repo: None };
    let max_tokens = request.n_predict.filter(|&n| n >= 0).map(|n| n.min(u32::MAX as i64) as u32);
    let prompt = fim::prompt(&model, &input, max_tokens, "input_prefix")?;
    let mut fields = SamplingFields {
        temperature: request.temperature,
        top_k: request.top_k,
        top_p: request.top_p,
        min_p: request.min_p,
        seed: request.seed,
        stop: request.stop.clone(),
        repetition_penalty: request.repeat_penalty,
        presence_penalty: request.presence_penalty,
        frequency_penalty: request.frequency_penalty,
        n: request.n_cmpl,
        ..Default::default()
    };
    fim::add_stops(&mut fields, &model);
    let plan = params::plan(fields, max_tokens, None, &model.defaults)?;
    let guard = state.admit(&model, plan.n)?;
    let submitted = generation::submit(&model, vec![prompt.tokens], &plan, guard, "input_prefix", Vec::new())?;
    let limits = Limits { n_indent: request.n_indent.unwrap_or(0), predict: request.t_max_predict_ms.map(Duration::from_millis) };
    let answer = Answer { model: model_name, truncated: prompt.trimmed.any(), several: request.n_cmpl.is_some_and(|n| n > 1) };
    if request.stream.unwrap_or(false) {
        return Ok(stream_response(submitted, limits, answer, log));
    }
    let results = run(submitted, limits, |_, _| true).await.map_err(ApiError::internal)?;
    for result in &results {
        if let Some(f) = &result.finished {
            log.record_usage(&generation::usage(&[Some(f)], 1));
        }
    }
    let bodies: Vec<Value> = results.iter().enumerate().map(|(i, r)| answer.body(i, r, &r.text)).collect();
    Ok(match answer.several {
        true => Json(Value::Array(bodies)).into_response(),
        false => Json(bodies.into_iter().next().unwrap_or_default()).into_response(),
    })
}

/// The request's generation limits beyond its token count.
#[derive(Clone, Copy)]
struct Limits {
    n_indent: usize,
    predict: Option<Duration>,
}

/// One completion as it grows: its text, what of it is decided, and why it stopped.
#[derive(Default)]
struct Choice {
    text: String,
    /// Bytes of `text` already sent (streaming).
    sent: usize,
    started: Option<Instant>,
    first_token: Option<Instant>,
    stop_type: Option<&'static str>,
    finished: Option<Finished>,
}

impl Choice {
    /// Adds generated text and applies the limits; true when the choice is done.
    fn push(&mut self, text: &str, limits: Limits, now: Instant) -> bool {
        self.first_token.get_or_insert(now);
        self.text.push_str(text);
        if let Some(cut) = under_indented_line(&self.text, limits.n_indent) {
            self.text.truncate(cut);
            self.stop_type = Some("limit");
            return true;
        }
        let overtime = limits.predict.zip(self.first_token).is_some_and(|(limit, first)| now - first > limit);
        if overtime && self.text.contains('\n') {
            self.stop_type = Some("limit");
            return true;
        }
        false
    }

    /// Text that no limit can take back any more, not yet sent: with `n_indent`, a line is held
    /// until its first visible character shows its indentation.
    fn decided(&mut self, limits: Limits, done: bool) -> String {
        let mut end = self.text.len();
        if limits.n_indent > 0 && !done {
            if let Some(newline) = self.text.rfind('\n') {
                if self.text[newline + 1..].trim().is_empty() {
                    end = newline;
                }
            }
        }
        let out = self.text.get(self.sent..end).unwrap_or_default().to_string();
        self.sent = self.sent.max(end);
        out
    }
}

/// Where to cut `text` when a line after its first is indented less than `n_indent` (the
/// newline before that line); None while every line is indented enough (or undecided).
fn under_indented_line(text: &str, n_indent: usize) -> Option<usize> {
    if n_indent == 0 {
        return None;
    }
    let mut at = text.find('\n')?;
    loop {
        let line_start = at + 1;
        let line_end = text[line_start..].find('\n').map_or(text.len(), |i| line_start + i);
        let line = &text[line_start..line_end];
        let indent = line.len() - line.trim_start_matches([' ', '\t']).len();
        if !line.trim().is_empty() && indent < n_indent {
            return Some(at);
        }
        if line_end == text.len() {
            return None;
        }
        at = line_end;
    }
}

/// Runs every choice to its end or its limit, calling `on_piece(index, choice)` after each
/// piece (false: the client is gone, stop). The engine stops at once when every choice is done.
async fn run(submitted: Submitted, limits: Limits, mut on_piece: impl FnMut(usize, &mut Choice) -> bool) -> Result<Vec<Choice>, String> {
    let count = submitted.num_choices();
    let started = Instant::now();
    let mut choices: Vec<Choice> = (0..count).map(|_| Choice { started: Some(started), ..Default::default() }).collect();
    let mut done = vec![false; count];
    let mut events = submitted.events();
    while let Some(ChoiceEvent { index, event }) = events.next().await {
        let i = index as usize;
        if done[i] {
            continue;
        }
        match event {
            EngineEvent::Token(token) => {
                done[i] = choices[i].push(&token.text, limits, Instant::now());
                if let Some(f) = token.finish {
                    choices[i].stop_type.get_or_insert(if f == FinishReason::Length { "limit" } else { "eos" });
                }
            }
            EngineEvent::Finished(f) if f.reason == FinishReason::Abort => return Err(generation::cancelled().body.error.message),
            EngineEvent::Finished(f) => {
                choices[i].stop_type.get_or_insert(match (&f.reason, &f.stop_string) {
                    (FinishReason::Length, _) => "limit",
                    (_, Some(_)) => "word",
                    _ => "eos",
                });
                choices[i].finished = Some(f);
                done[i] = true;
            }
            EngineEvent::Error(message) => return Err(message),
        }
        if !on_piece(i, &mut choices[i]) {
            break;
        }
        if done.iter().all(|&d| d) {
            break;
        }
    }
    Ok(choices)
}

/// The shape of the answers.
struct Answer {
    model: String,
    truncated: bool,
    /// `n_cmpl` > 1: an array of answers (streamed events carry their `index`).
    several: bool,
}

impl Answer {
    /// llama.cpp's answer object for choice `index`, carrying `content`.
    fn body(&self, index: usize, choice: &Choice, content: &str) -> Value {
        let now = Instant::now();
        let first = choice.first_token.unwrap_or(now);
        let started = choice.started.unwrap_or(first);
        let (prompt_n, cached, predicted_n) =
            choice.finished.as_ref().map_or((0, 0, 0), |f| (f.prompt_tokens, f.cached_tokens, f.completion_tokens));
        let (prompt_ms, predicted_ms) = ((first - started).as_secs_f64() * 1e3, (now - first).as_secs_f64() * 1e3);
        let per = |n: usize, ms: f64| if n > 0 { (ms / n as f64, n as f64 * 1e3 / ms.max(1e-9)) } else { (0.0, 0.0) };
        let evaluated = prompt_n.saturating_sub(cached);
        let (prompt_per_token, prompt_per_second) = per(evaluated, prompt_ms);
        let (predicted_per_token, predicted_per_second) = per(predicted_n, predicted_ms);
        json!({
            "index": index, "content": content, "tokens": [], "id_slot": -1, "stop": true, "model": self.model,
            "tokens_predicted": predicted_n, "tokens_evaluated": prompt_n, "tokens_cached": cached,
            "truncated": self.truncated, "has_new_line": choice.text.contains('\n'),
            "stop_type": choice.stop_type.unwrap_or("none"), "stopping_word": choice.finished.as_ref().and_then(|f| f.stop_string.clone()).unwrap_or_default(),
            "timings": {"cache_n": cached, "prompt_n": evaluated, "prompt_ms": prompt_ms, "prompt_per_token_ms": prompt_per_token,
                "prompt_per_second": prompt_per_second, "predicted_n": predicted_n, "predicted_ms": predicted_ms,
                "predicted_per_token_ms": predicted_per_token, "predicted_per_second": predicted_per_second},
        })
    }
}

/// Streams `data: {...}` events: a piece of content per decided text (`stop: false`), then per
/// choice its final object (`stop: true`, empty content). No `[DONE]`, as llama.cpp's.
fn stream_response(submitted: Submitted, limits: Limits, answer: Answer, log: Arc<RequestLog>) -> Response {
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        let event = |value: Value| Bytes::from(format!("data: {value}\n\n"));
        let mut gone = false;
        let mut closed = Vec::new();
        let outcome = run(submitted, limits, |i, choice| {
            let done = choice.stop_type.is_some();
            let piece = choice.decided(limits, done);
            if !piece.is_empty() {
                let value = json!({"index": i, "content": piece, "tokens": [], "stop": false, "id_slot": -1});
                gone |= tx.try_send(event(value)).is_err();
            }
            if done && !closed.contains(&i) {
                closed.push(i);
                gone |= tx.try_send(event(answer.body(i, choice, ""))).is_err();
            }
            !gone
        })
        .await;
        match outcome {
            Err(message) => {
                let _ = tx.send(event(json!({"error": {"code": 500, "message": message, "type": "server_error"}}))).await;
            }
            Ok(choices) => {
                for (i, choice) in choices.iter().enumerate().filter(|(i, _)| !closed.contains(i)) {
                    let _ = tx.send(event(answer.body(i, choice, ""))).await;
                }
                let finished: Vec<Option<&Finished>> = choices.iter().map(|c| c.finished.as_ref()).collect();
                log.record_usage(&generation::usage(&finished, 1));
            }
        }
        if gone {
            log.mark_disconnected();
        }
    });
    ([(header::CONTENT_TYPE, "text/event-stream"), (header::CACHE_CONTROL, "no-cache")], channel_body(rx)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_indented_less_than_asked_are_cut() {
        assert_eq!(under_indented_line("x = 1\n    y = 2\nz = 3", 4), Some(15));
        assert_eq!(under_indented_line("x = 1\n    y = 2\n    ", 4), None, "a blank line decides nothing");
        assert_eq!(under_indented_line("return a\n", 4), None);
        assert_eq!(under_indented_line("a\nb", 0), None);
    }

    #[test]
    fn held_lines_go_out_once_decided() {
        let limits = Limits { n_indent: 4, predict: None };
        let mut choice = Choice::default();
        let now = Instant::now();
        assert!(!choice.push("a + b\n", limits, now));
        assert_eq!(choice.decided(limits, false), "a + b");
        assert!(!choice.push("    c", limits, now));
        assert_eq!(choice.decided(limits, false), "\n    c");
        assert!(choice.push("\nd", limits, now));
        assert_eq!(choice.text, "a + b\n    c");
        assert_eq!(choice.decided(limits, true), "");
    }
}
