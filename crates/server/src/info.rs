//! `GET /health`, `/version`, `/v1/models`, `/v1/models/{id}`, and `POST /tokenize`, `/detokenize`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use hearth_protocol::{
    DetokenizeRequest, DetokenizeResponse, ModelCard, ModelList, TokenizeRequest, TokenizeResponse,
};
use serde_json::json;

use crate::body::parse_body;
use crate::chat::render_chat;
use crate::error::ApiError;
use crate::state::{AppState, Phase};

/// 200 while the engine runs; 503 while loading, shutting down, or after the engine stopped.
pub async fn health(State(state): State<Arc<AppState>>) -> Response {
    let (status, text) = match state.phase() {
        Phase::Ready => (StatusCode::OK, "ok"),
        other => (StatusCode::SERVICE_UNAVAILABLE, other.as_str()),
    };
    (status, Json(json!({ "status": text }))).into_response()
}

pub async fn version() -> Json<serde_json::Value> {
    Json(json!({ "version": env!("CARGO_PKG_VERSION") }))
}

fn card(state: &AppState, id: &str) -> ModelCard {
    ModelCard {
        id: id.to_string(),
        object: "model".into(),
        created: state.started_at,
        owned_by: "hearth".into(),
        root: Some(state.config.model_root.clone()),
        max_model_len: state.model().map(|m| m.max_model_len() as u64),
    }
}

/// The first served name is listed; the others are aliases that requests may use.
pub async fn list_models(State(state): State<Arc<AppState>>) -> Json<ModelList> {
    Json(ModelList::new(vec![card(&state, &state.config.served_model_names[0])]))
}

pub async fn get_model(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Result<Json<ModelCard>, ApiError> {
    let name = state.resolve_model_name(Some(&id))?;
    Ok(Json(card(&state, &name)))
}

pub async fn tokenize(
    State(state): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<TokenizeResponse>, ApiError> {
    let request: TokenizeRequest = parse_body(body, state.config.max_body_bytes)?;
    state.resolve_model_name(request.model.as_deref())?;
    let model = state.ready_model()?;
    let tokenizer = model.tokenizer();
    let tokens = match (request.prompt, request.messages) {
        (Some(prompt), None) => match request.add_special_tokens.unwrap_or(true) {
            true => tokenizer.encode_prompt(&prompt),
            false => tokenizer.encode(&prompt),
        }
        .map_err(|e| ApiError::internal(e.to_string()))?,
        (None, Some(messages)) => render_chat(&model, &messages, None, request.add_generation_prompt.unwrap_or(true), &Default::default())?,
        _ => return Err(ApiError::bad_request("Give exactly one of `prompt` and `messages`.", None)),
    };
    let token_strs = request.return_token_strs.unwrap_or(false).then(|| {
        tokens.iter().map(|&t| String::from_utf8_lossy(&tokenizer.token_bytes(t).unwrap_or_default()).into_owned()).collect()
    });
    Ok(Json(TokenizeResponse { count: tokens.len(), max_model_len: model.max_model_len(), tokens, token_strs }))
}

pub async fn detokenize(
    State(state): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<DetokenizeResponse>, ApiError> {
    let request: DetokenizeRequest = parse_body(body, state.config.max_body_bytes)?;
    state.resolve_model_name(request.model.as_deref())?;
    let model = state.ready_model()?;
    let vocab = model.engine.info().vocab_size;
    if let Some(bad) = request.tokens.iter().find(|&&t| t as usize >= vocab) {
        return Err(ApiError::bad_request(format!("token id {bad} is not in the vocabulary of {vocab}"), Some("tokens")));
    }
    Ok(Json(DetokenizeResponse { prompt: model.tokenizer().decode(&request.tokens) }))
}
