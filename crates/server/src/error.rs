//! API errors as OpenAI error objects with the right HTTP status.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use hearth_engine::GenerateError;
use hearth_protocol::ErrorResponse;

/// An error answer: status, OpenAI error body, and a `Retry-After` for overload.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    /// Boxed: errors travel through many `Result`s and should stay small.
    pub body: Box<ErrorResponse>,
    pub retry_after_s: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, kind: &str, message: impl Into<String>, param: Option<&str>, code: Option<&str>) -> Self {
        ApiError { status, body: Box::new(ErrorResponse::new(message, kind, param, code)), retry_after_s: None }
    }

    pub fn bad_request(message: impl Into<String>, param: Option<&str>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", message, param, None)
    }

    pub fn model_not_found(name: &str) -> Self {
        let message = format!("The model `{name}` does not exist.");
        Self::new(StatusCode::NOT_FOUND, "invalid_request_error", message, Some("model"), Some("model_not_found"))
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "invalid_request_error", message, None, None)
    }

    pub fn method_not_allowed(method: &str, path: &str) -> Self {
        let message = format!("Invalid method for URL ({method} {path}).");
        Self::new(StatusCode::METHOD_NOT_ALLOWED, "invalid_request_error", message, None, Some("method_not_allowed"))
    }

    pub fn unauthorized() -> Self {
        let message = "Incorrect or missing API key. Send it as `Authorization: Bearer <key>`.";
        Self::new(StatusCode::UNAUTHORIZED, "invalid_request_error", message, None, Some("invalid_api_key"))
    }

    pub fn payload_too_large(limit: usize) -> Self {
        let message = format!("The request body is larger than the limit of {limit} bytes.");
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "invalid_request_error", message, None, None)
    }

    /// The server cannot take the request now; clients should retry after a pause.
    pub fn unavailable(message: impl Into<String>, retry_after_s: u64) -> Self {
        let mut error = Self::new(StatusCode::SERVICE_UNAVAILABLE, "server_error", message, None, Some("overloaded"));
        error.retry_after_s = Some(retry_after_s);
        error
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", message, None, None)
    }

    /// `param` names the request field that carried the prompt (`messages` or `prompt`).
    pub fn from_generate(error: GenerateError, prompt_param: &str) -> Self {
        match error {
            GenerateError::ContextOverflow { .. } => Self::new(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                error.to_string(),
                Some(prompt_param),
                Some("context_length_exceeded"),
            ),
            GenerateError::EmptyPrompt => Self::bad_request("The prompt is empty.", Some(prompt_param)),
            GenerateError::InvalidParams(message) => Self::bad_request(message, None),
            GenerateError::EngineStopped => Self::unavailable("The engine has stopped.", 5),
            GenerateError::Model(e) => Self::internal(e.to_string()),
            GenerateError::Constraint(message) => Self::internal(message),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(*self.body)).into_response();
        if let Some(seconds) = self.retry_after_s {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
