//! Request bodies: JSON parsing with OpenAI-style errors that name the offending field.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use hearth_protocol::SamplingFields;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::ApiError;

/// Parses a request body into `T`: 413 for an oversized body, 400 for malformed JSON or a
/// field of the wrong type (with `param` set to the field's path).
pub fn parse_body<T: DeserializeOwned>(body: Result<Bytes, BytesRejection>, limit: usize) -> Result<T, ApiError> {
    let bytes = body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::payload_too_large(limit),
        _ => ApiError::bad_request(format!("Cannot read the request body: {rejection}"), None),
    })?;
    let value: Value = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("The request body is not valid JSON: {e}"), None))?;
    if !value.is_object() {
        return Err(ApiError::bad_request("The request body must be a JSON object.", None));
    }
    serde_path_to_error::deserialize::<_, T>(value.clone()).map_err(|e| {
        let path = e.path().to_string();
        if path.is_empty() || path == "." {
            // Errors inside flattened fields lose their path; find it on the sampling fields.
            if let Err(inner) = serde_path_to_error::deserialize::<_, SamplingFields>(value) {
                return field_error(inner.path().to_string(), inner.into_inner().to_string());
            }
            return ApiError::bad_request(format!("Invalid request: {}", e.into_inner()), None);
        }
        field_error(path, e.into_inner().to_string())
    })
}

fn field_error(path: String, message: String) -> ApiError {
    ApiError::bad_request(format!("Invalid value for `{path}`: {message}"), Some(&path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_protocol::ChatCompletionRequest;

    fn parse(text: &str) -> Result<ChatCompletionRequest, ApiError> {
        parse_body(Ok(Bytes::from(text.to_string())), 1000)
    }

    #[test]
    fn errors_name_the_field() {
        let e = parse(r#"{"messages": [], "temperature": "hot"}"#).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(e.body.error.param.as_deref(), Some("temperature"));
        let e = parse(r#"{"messages": [{"role": 3}]}"#).unwrap_err();
        assert_eq!(e.body.error.param.as_deref(), Some("messages[0].role"));
        let e = parse(r#"{"messages": "#).unwrap_err();
        assert!(e.body.error.message.contains("not valid JSON"), "{}", e.body.error.message);
        let e = parse(r#"[1]"#).unwrap_err();
        assert!(e.body.error.message.contains("JSON object"));
        let e = parse(r#"{"model": "x"}"#).unwrap_err();
        assert!(e.body.error.message.contains("messages"), "{}", e.body.error.message);
    }

    #[test]
    fn stream_options_must_be_an_object() {
        let e = parse(r#"{"messages": [], "stream": true, "stream_options": []}"#).unwrap_err();
        assert_eq!(e.body.error.param.as_deref(), Some("stream_options"), "{}", e.body.error.message);
        assert!(e.body.error.message.contains("expected an object, got an array"), "{}", e.body.error.message);
        let r = parse(r#"{"messages": [], "stream": true, "stream_options": {"include_usage": true}}"#).unwrap();
        assert_eq!(r.sampling.stream_options.unwrap().include_usage, Some(true));
        assert!(parse(r#"{"messages": [], "stream_options": null}"#).unwrap().sampling.stream_options.is_none());
        let e = parse(r#"{"messages": [], "stream_options": {"include_usage": "yes"}}"#).unwrap_err();
        assert_eq!(e.body.error.param.as_deref(), Some("stream_options"), "{}", e.body.error.message);
    }

    #[test]
    fn unknown_fields_are_kept_for_the_warning() {
        let r = parse(r#"{"messages": [], "temperature": 0.5, "frobnicate": true}"#).unwrap();
        assert_eq!(r.sampling.temperature, Some(0.5));
        assert_eq!(r.unknown.keys().collect::<Vec<_>>(), vec!["frobnicate"]);
    }
}
