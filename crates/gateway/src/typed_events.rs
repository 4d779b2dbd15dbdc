//! Relaying the typed-event streams of the Responses and Messages APIs: each event framed as
//! `event: <type>` + `data:`, the model renamed to the public name, usage collected from
//! `response.completed` (Responses) or `message_start` and `message_delta` (Messages), and a
//! failure after the first byte sent as that protocol's `error` event.

use serde_json::{json, Value};

use crate::upstream::Endpoint;

/// One relayed event: its SSE frame, and whether it is the stream's last.
pub struct Relayed {
    pub frame: String,
    pub last: bool,
}

/// One event's `data` as the client gets it (a full SSE frame), the model renamed. `usage`
/// gathers the token counts as they pass. Err: the event is not JSON.
pub fn relay_event(data: &str, public_model: &str, usage: &mut Value) -> Result<Relayed, String> {
    let mut event = serde_json::from_str::<Value>(data).map_err(|_| crate::relay::not_json(data))?;
    for holder in ["response", "message"] {
        if event[holder]["model"].is_string() {
            event[holder]["model"] = json!(public_model);
        }
    }
    match event["type"].as_str() {
        Some("response.completed" | "response.incomplete") if event["response"]["usage"].is_object() => {
            *usage = event["response"]["usage"].clone();
        }
        Some("message_start") => *usage = json!({"input_tokens": event["message"]["usage"]["input_tokens"], "output_tokens": 0}),
        Some("message_delta") if usage.is_object() => usage["output_tokens"] = event["usage"]["output_tokens"].clone(),
        _ => {}
    }
    let kind = event["type"].as_str().map(str::to_string);
    let last = matches!(kind.as_deref(), Some("response.completed" | "response.incomplete" | "response.failed" | "message_stop" | "error"));
    Ok(Relayed { frame: frame(kind.as_deref(), &event.to_string()), last })
}

fn frame(kind: Option<&str>, data: &str) -> String {
    match kind {
        Some(kind) => hearth_protocol::sse::typed_frame(kind, data),
        None => format!("data: {data}\n\n"),
    }
}

/// The protocol's error event for a stream that broke after its first byte.
pub fn error_event(endpoint: Endpoint, message: &str) -> String {
    let data = match endpoint {
        Endpoint::Messages => json!({"type": "error", "error": {"type": "api_error", "message": message}}),
        _ => json!({"type": "error", "code": "backend_stream_broken", "message": message, "param": null}),
    };
    frame(Some("error"), &data.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_events_get_the_public_model_and_give_their_usage() {
        let mut usage = Value::Null;
        let created = relay_event(r#"{"type":"response.created","sequence_number":0,"response":{"model":"smollm","usage":null}}"#, "coder", &mut usage).unwrap();
        assert!(!created.last);
        assert_eq!(created.frame, "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"model\":\"coder\",\"usage\":null}}\n\n");
        assert!(usage.is_null());
        let done = r#"{"type":"response.completed","sequence_number":9,"response":{"model":"smollm","usage":{"input_tokens":5,"output_tokens":3}}}"#;
        assert!(relay_event(done, "coder", &mut usage).unwrap().last);
        assert_eq!((usage["input_tokens"].as_u64(), usage["output_tokens"].as_u64()), (Some(5), Some(3)));
    }

    #[test]
    fn messages_usage_comes_from_start_and_delta() {
        let mut usage = Value::Null;
        let start = relay_event(r#"{"type":"message_start","message":{"model":"smollm","usage":{"input_tokens":7,"output_tokens":0}}}"#, "coder", &mut usage).unwrap().frame;
        assert!(start.starts_with("event: message_start\ndata: ") && start.contains("\"model\":\"coder\""), "{start}");
        relay_event(r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":4}}"#, "coder", &mut usage).unwrap();
        assert!(relay_event(r#"{"type":"message_stop"}"#, "coder", &mut usage).unwrap().last);
        assert!(relay_event("oops", "coder", &mut usage).is_err());
        assert_eq!(usage, json!({"input_tokens": 7, "output_tokens": 4}));
        assert!(error_event(Endpoint::Messages, "broke").contains("\"type\":\"api_error\""));
    }
}
