//! Qwen3-Coder's XML tool calls (also Qwen3.5/3.6's):
//! `<tool_call>\n<function=NAME>\n<parameter=KEY>\nVALUE\n</parameter>...\n</function>\n</tool_call>`.
//! Values are raw text, converted to the JSON type the tool's schema gives the parameter; the
//! `<tool_call>` wrapper is sometimes left out by the model, so `<function=` opens a call too.
//! Parsed incrementally with the same holdback as the JSON forms: text that may still turn out
//! to be a call is held until it is decided, so no markup reaches content.

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::calls::ToolCall;
use crate::lenient;
use crate::reply::{trailing_prefix_len, ReplyEvent};

const WRAPPED_OPEN: &str = "<tool_call>";
const WRAPPED_CLOSE: &str = "</tool_call>";
const FUNCTION_OPEN: &str = "<function=";
const FUNCTION_CLOSE: &str = "</function>";
const PARAMETER_OPEN: &str = "<parameter=";
const PARAMETER_CLOSE: &str = "</parameter>";

/// Parses replies in the XML call form. `schemas` maps each offered function to its
/// `parameters` JSON Schema (for typing values); a function not in it is not a call.
pub struct XmlReplyParser {
    schemas: HashMap<String, Value>,
    pending: String,
    /// Whitespace right after a call is not content.
    after_call: bool,
}

impl XmlReplyParser {
    pub fn new(schemas: HashMap<String, Value>) -> Self {
        XmlReplyParser { schemas, pending: String::new(), after_call: false }
    }

    /// Takes the next piece of the reply; returns what became certain with it.
    pub fn push(&mut self, text: &str) -> Vec<ReplyEvent> {
        self.pending.push_str(text);
        let mut events = Vec::new();
        self.advance(false, &mut events);
        events
    }

    /// The reply has ended: a call cut short is parsed as far as it goes (its closed
    /// parameters) when its function is known, else it is content.
    pub fn finish(&mut self) -> Vec<ReplyEvent> {
        let mut events = Vec::new();
        self.advance(true, &mut events);
        events
    }

    fn advance(&mut self, at_end: bool, events: &mut Vec<ReplyEvent>) {
        loop {
            let Some((start, wrapped)) = first_opener(&self.pending) else {
                let keep = if at_end { 0 } else { partial_opener_len(&self.pending) };
                let text: String = self.pending.drain(..self.pending.len() - keep).collect();
                self.content(text, events);
                return;
            };
            let before: String = self.pending.drain(..start).collect();
            self.content(before, events);
            let close = if wrapped { WRAPPED_CLOSE } else { FUNCTION_CLOSE };
            let end = match self.pending.find(close) {
                Some(i) => i + close.len(),
                None if at_end => self.pending.len(),
                None => return,
            };
            let block: String = self.pending.drain(..end).collect();
            match parse_block(&block, &self.schemas) {
                Some(call) => {
                    events.push(ReplyEvent::Call(call));
                    self.after_call = true;
                }
                None => self.content(block, events),
            }
        }
    }

    fn content(&mut self, text: String, events: &mut Vec<ReplyEvent>) {
        let text = if self.after_call { text.trim_start().to_string() } else { text };
        if text.is_empty() {
            return;
        }
        self.after_call = false;
        match events.last_mut() {
            Some(ReplyEvent::Content(previous)) => previous.push_str(&text),
            _ => events.push(ReplyEvent::Content(text)),
        }
    }
}

/// The first `<tool_call>` or bare `<function=` in `text`, and whether it is wrapped.
fn first_opener(text: &str) -> Option<(usize, bool)> {
    let wrapped = text.find(WRAPPED_OPEN).map(|i| (i, true));
    let bare = text.find(FUNCTION_OPEN).map(|i| (i, false));
    [wrapped, bare].into_iter().flatten().min_by_key(|(i, _)| *i)
}

/// How many bytes at the end of `text` could begin an opener.
fn partial_opener_len(text: &str) -> usize {
    [WRAPPED_OPEN, FUNCTION_OPEN].iter().map(|opener| trailing_prefix_len(text, opener)).max().unwrap_or(0)
}

/// One call block (with or without its wrapper) as a call of an offered function.
fn parse_block(block: &str, schemas: &HashMap<String, Value>) -> Option<ToolCall> {
    let after = &block[block.find(FUNCTION_OPEN)? + FUNCTION_OPEN.len()..];
    let name_end = after.find('>')?;
    let name = after[..name_end].trim();
    let schema = schemas.get(name)?;
    let mut body = &after[name_end + 1..];
    let mut arguments = Map::new();
    while let Some(open) = body.find(PARAMETER_OPEN) {
        let rest = &body[open + PARAMETER_OPEN.len()..];
        let Some(key_end) = rest.find('>') else { break };
        let key = rest[..key_end].trim();
        let value_and_rest = &rest[key_end + 1..];
        // a parameter cut short by the reply's end is left out
        let Some(close) = value_and_rest.find(PARAMETER_CLOSE) else { break };
        let raw = value_and_rest[..close].strip_prefix('\n').unwrap_or(&value_and_rest[..close]);
        let raw = raw.strip_suffix('\n').unwrap_or(raw);
        arguments.insert(key.to_string(), typed(raw, &schema["properties"][key]));
        body = &value_and_rest[close + PARAMETER_CLOSE.len()..];
    }
    Some(ToolCall { name: name.to_string(), arguments: Value::Object(arguments).to_string() })
}

/// A raw value as the JSON type its schema gives (a string when it names none or the text is
/// not of that type, as llama.cpp's and vLLM's parsers do).
fn typed(raw: &str, schema: &Value) -> Value {
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let trimmed = raw.trim();
    for kind in &types {
        let value = match *kind {
            "string" => return Value::String(raw.to_string()),
            "integer" => trimmed.parse::<i64>().ok().map(Value::from),
            "number" => trimmed.parse::<f64>().ok().and_then(|f| serde_json::Number::from_f64(f).map(Value::Number)),
            "boolean" => match trimmed.to_ascii_lowercase().as_str() {
                "true" => Some(Value::Bool(true)),
                "false" => Some(Value::Bool(false)),
                _ => None,
            },
            "null" => (trimmed == "null" || trimmed.is_empty()).then_some(Value::Null),
            "object" | "array" => lenient::parse(trimmed).filter(|v| v.is_object() == (*kind == "object") && (v.is_object() || v.is_array())),
            _ => None,
        };
        if let Some(value) = value {
            return value;
        }
    }
    if types.is_empty() {
        // no type given: JSON where the text is JSON, else the text
        if let Some(value) = lenient::parse(trimmed).filter(|v| !v.is_string()) {
            return value;
        }
    }
    Value::String(raw.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schemas() -> HashMap<String, Value> {
        let schema = json!({"type": "object", "properties": {
            "path": {"type": "string"}, "count": {"type": "integer"}, "ratio": {"type": "number"},
            "force": {"type": "boolean"}, "tags": {"type": "array"}, "options": {"type": "object"},
            "note": {"type": ["string", "null"]}, "anything": {}}});
        [("edit".to_string(), schema), ("ls".to_string(), json!({"type": "object", "properties": {}}))].into_iter().collect()
    }

    fn parse_all(text: &str) -> Vec<ReplyEvent> {
        let mut parser = XmlReplyParser::new(schemas());
        let mut events = parser.push(text);
        events.extend(parser.finish());
        merged(events)
    }

    /// Adjacent content events joined, so streamed and whole parses compare equal.
    fn merged(events: Vec<ReplyEvent>) -> Vec<ReplyEvent> {
        let mut out: Vec<ReplyEvent> = Vec::new();
        for event in events {
            match (out.last_mut(), event) {
                (Some(ReplyEvent::Content(a)), ReplyEvent::Content(b)) => a.push_str(&b),
                (_, event) => out.push(event),
            }
        }
        out
    }

    const REPLY: &str = "I will edit it.\n<tool_call>\n<function=edit>\n<parameter=path>\nsrc/main.rs\n</parameter>\n<parameter=count>\n3\n</parameter>\n<parameter=ratio>\n0.5\n</parameter>\n<parameter=force>\nTrue\n</parameter>\n<parameter=tags>\n[\"a\", \"b\"]\n</parameter>\n<parameter=options>\n{\"x\": 1}\n</parameter>\n<parameter=note>\nline one\nline two\n</parameter>\n<parameter=anything>\n42\n</parameter>\n</function>\n</tool_call>\n<tool_call>\n<function=ls>\n</function>\n</tool_call>";

    #[test]
    fn values_take_their_schema_types_and_several_calls_parse() {
        let events = parse_all(REPLY);
        assert_eq!(events[0], ReplyEvent::Content("I will edit it.\n".into()));
        let ReplyEvent::Call(call) = &events[1] else { panic!("{events:?}") };
        assert_eq!(call.name, "edit");
        let arguments: Value = serde_json::from_str(&call.arguments).unwrap();
        assert_eq!(arguments, json!({"path": "src/main.rs", "count": 3, "ratio": 0.5, "force": true, "tags": ["a", "b"],
            "options": {"x": 1}, "note": "line one\nline two", "anything": 42}));
        assert_eq!(events[2], ReplyEvent::Call(ToolCall { name: "ls".into(), arguments: "{}".into() }));
        assert_eq!(events.len(), 3, "{events:?}");
    }

    #[test]
    fn streamed_at_every_split_point_equals_whole() {
        let whole = parse_all(REPLY);
        for split in (0..REPLY.len()).filter(|&i| REPLY.is_char_boundary(i)) {
            let mut parser = XmlReplyParser::new(schemas());
            let mut events = parser.push(&REPLY[..split]);
            assert!(events.iter().all(|e| !matches!(e, ReplyEvent::Content(t) if t.contains('<'))), "markup leaked at {split}: {events:?}");
            events.extend(parser.push(&REPLY[split..]));
            events.extend(parser.finish());
            assert_eq!(merged(events), whole, "split at {split}");
        }
    }

    #[test]
    fn unwrapped_unknown_and_cut_short_calls() {
        let bare = parse_all("<function=ls>\n</function>\nDone.");
        assert_eq!(bare, [ReplyEvent::Call(ToolCall { name: "ls".into(), arguments: "{}".into() }), ReplyEvent::Content("Done.".into())]);
        let unknown = parse_all("<tool_call>\n<function=rm>\n</function>\n</tool_call>");
        assert!(matches!(&unknown[..], [ReplyEvent::Content(t)] if t.contains("<function=rm>")), "not an offered function: {unknown:?}");
        let cut = parse_all("<tool_call>\n<function=edit>\n<parameter=path>\na.rs\n</parameter>\n<parameter=count>\n4");
        let ReplyEvent::Call(call) = &cut[0] else { panic!("{cut:?}") };
        assert_eq!(call.arguments, r#"{"path":"a.rs"}"#, "the unclosed parameter is left out");
        assert_eq!(parse_all("a < b and <func"), [ReplyEvent::Content("a < b and <func".into())]);
        let number_as_text: Value = serde_json::from_str(&match &parse_all("<function=edit>\n<parameter=count>\nmany\n</parameter>\n</function>")[0] {
            ReplyEvent::Call(c) => c.arguments.clone(),
            other => panic!("{other:?}"),
        }).unwrap();
        assert_eq!(number_as_text, json!({"count": "many"}), "text that is not of the schema's type stays text");
    }
}
