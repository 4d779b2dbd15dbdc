//! One parsed call and the JSON shapes a call may take: `{"name", "arguments"}` (or
//! `"parameters"`), OpenAI's `{"type": "function", "function": {...}}`, or a list of them.

use serde_json::{Map, Value};

use crate::lenient;

/// A call of an offered function; `arguments` is always a JSON object serialized as a string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCall {
    pub name: String,
    pub arguments: String,
}

/// The calls in `text` when it is JSON (repairs accepted) holding one call or a list of
/// calls, every one naming a function in `offered`; None otherwise.
pub fn calls_in_json(text: &str, offered: &[String]) -> Option<Vec<ToolCall>> {
    if let Some(inner) = inside_doubled_braces(text) {
        return calls_in_json(inner, offered);
    }
    match lenient::parse(text)? {
        Value::Array(items) if !items.is_empty() => items.iter().map(|item| one_call(item, offered)).collect(),
        Value::Object(object) => Some(vec![call_of(&object, offered)?]),
        _ => None,
    }
}

/// `{{"name": ..., "arguments": {...}}}`: Qwen2.5's template shows the call format with
/// doubled braces, and its models copy them (the outer closing brace is sometimes missing).
fn inside_doubled_braces(text: &str) -> Option<&str> {
    let inner = text.trim().strip_prefix('{')?;
    if !inner.starts_with('{') {
        return None;
    }
    let end = lenient::value_end(inner).unwrap_or(inner.len());
    matches!(inner[end..].trim(), "" | "}").then_some(&inner[..end])
}

fn one_call(item: &Value, offered: &[String]) -> Option<ToolCall> {
    call_of(item.as_object()?, offered)
}

fn call_of(object: &Map<String, Value>, offered: &[String]) -> Option<ToolCall> {
    if let Some(Value::Object(function)) = object.get("function") {
        return call_of(function, offered);
    }
    let name = object.get("name")?.as_str()?;
    if !offered.iter().any(|o| o == name) {
        return None;
    }
    let arguments = match object.get("arguments").or_else(|| object.get("parameters")) {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(Value::String(text)) if text.trim().is_empty() => Value::Object(Map::new()),
        Some(Value::String(text)) => lenient::parse(text).filter(Value::is_object)?,
        Some(value @ Value::Object(_)) => value.clone(),
        Some(_) => return None,
    };
    Some(ToolCall { name: name.to_string(), arguments: arguments.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offered() -> Vec<String> {
        vec!["get_weather".into(), "get_time".into()]
    }

    #[test]
    fn shapes_of_a_call() {
        let want = vec![ToolCall { name: "get_weather".into(), arguments: r#"{"city":"Paris"}"#.into() }];
        for text in [
            r#"{"name": "get_weather", "arguments": {"city": "Paris"}}"#,
            r#"{"name": "get_weather", "parameters": {"city": "Paris"}}"#,
            r#"{"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}"#,
            r#"{"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}"#,
            r#"[{"name": "get_weather", "arguments": {"city": "Paris"}}]"#,
            r#"{'name': 'get_weather', 'arguments': {'city': 'Paris',},}"#,
            r#"{{"name": "get_weather", "arguments": {"city": "Paris"}}}"#,
            r#"{{"name": "get_weather", "arguments": {"city": "Paris"}}"#,
        ] {
            assert_eq!(calls_in_json(text, &offered()), Some(want.clone()), "{text}");
        }
    }

    #[test]
    fn missing_arguments_are_an_empty_object() {
        let calls = calls_in_json(r#"{"name": "get_time"}"#, &offered()).unwrap();
        assert_eq!(calls[0].arguments, "{}");
    }

    #[test]
    fn not_calls() {
        for text in [
            r#"{"name": "delete_everything", "arguments": {}}"#,
            r#"[{"name": "get_time", "arguments": {}}, {"name": "nope", "arguments": {}}]"#,
            r#"{"city": "Paris"}"#,
            r#"{"name": "get_time", "arguments": [1, 2]}"#,
            r#"{"name": "get_time", "arguments": "not json"}"#,
            "[]",
            "plain words",
        ] {
            assert_eq!(calls_in_json(text, &offered()), None, "{text}");
        }
    }
}
