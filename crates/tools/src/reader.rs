//! One reader for everything a model writes in a reply: its reasoning (split off first, so
//! thinking text never reaches the answer or the call parser), then its answer read for calls
//! in the model's own call format (Hermes/JSON or Qwen3-Coder's XML), or as plain text.

use std::collections::HashMap;

use serde_json::Value;

use crate::reply::{ParsedReply, ReplyEvent, ReplyParser};
use crate::thinking::{ThinkPart, ThinkSplitter, CLOSE, OPEN};
use crate::xml_calls::XmlReplyParser;

/// Where a thinking model's reasoning starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThinkingStart {
    /// The reply may open with `<think>`.
    InReply,
    /// The prompt ended inside an opened `<think>` block: the reply starts as reasoning.
    OpenedByPrompt,
}

/// The calls a reply may make, in the syntax the model writes them.
#[derive(Debug, Clone, PartialEq)]
pub enum CallFormat {
    /// JSON calls (tagged, fenced or bare) of these functions.
    Json(Vec<String>),
    /// XML `<function=...>` calls of these functions, each with its parameters' JSON Schema.
    Xml(HashMap<String, Value>),
}

/// How to read one reply.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReplyFormat {
    /// None: the model does not think (its text is all answer).
    pub thinking: Option<ThinkingStart>,
    /// None: no calls are looked for.
    pub calls: Option<CallFormat>,
}

enum CallParser {
    Json(ReplyParser),
    Xml(XmlReplyParser),
}

impl CallParser {
    fn push(&mut self, text: &str) -> Vec<ReplyEvent> {
        match self {
            CallParser::Json(parser) => parser.push(text),
            CallParser::Xml(parser) => parser.push(text),
        }
    }

    fn finish(&mut self) -> Vec<ReplyEvent> {
        match self {
            CallParser::Json(parser) => parser.finish(),
            CallParser::Xml(parser) => parser.finish(),
        }
    }
}

/// Reads a reply as it streams in: reasoning, content and calls come out as they become
/// certain.
pub struct ReplyReader {
    thinking: Option<ThinkSplitter>,
    calls: Option<CallParser>,
}

impl ReplyReader {
    pub fn new(format: &ReplyFormat) -> Self {
        let thinking = format.thinking.map(|start| ThinkSplitter::new(start == ThinkingStart::OpenedByPrompt));
        let calls = format.calls.as_ref().map(|calls| match calls {
            CallFormat::Json(names) => CallParser::Json(ReplyParser::new(names.clone())),
            CallFormat::Xml(schemas) => CallParser::Xml(XmlReplyParser::new(schemas.clone())),
        });
        ReplyReader { thinking, calls }
    }

    /// Takes the next piece of the reply; returns what became certain with it.
    pub fn push(&mut self, text: &str) -> Vec<ReplyEvent> {
        let parts = match &mut self.thinking {
            Some(splitter) => splitter.push(text),
            None => vec![ThinkPart::Answer(text.to_string())],
        };
        self.answer_events(parts)
    }

    /// The reply has ended: everything still held back is decided.
    pub fn finish(&mut self) -> Vec<ReplyEvent> {
        let parts = self.thinking.as_mut().map(ThinkSplitter::finish).unwrap_or_default();
        let mut events = self.answer_events(parts);
        if let Some(calls) = &mut self.calls {
            events.extend(calls.finish());
        }
        events
    }

    /// `push`, then `finish` when this piece is the reply's last.
    pub fn push_piece(&mut self, text: &str, last: bool) -> Vec<ReplyEvent> {
        let mut events = self.push(text);
        if last {
            events.extend(self.finish());
        }
        events
    }

    fn answer_events(&mut self, parts: Vec<ThinkPart>) -> Vec<ReplyEvent> {
        let mut events = Vec::new();
        for part in parts {
            match (part, &mut self.calls) {
                (ThinkPart::Reasoning(text), _) => events.push(ReplyEvent::Reasoning(text)),
                (ThinkPart::Answer(text), Some(calls)) => events.extend(calls.push(&text)),
                (ThinkPart::Answer(text), None) if text.is_empty() => {}
                (ThinkPart::Answer(text), None) => events.push(ReplyEvent::Content(text)),
            }
        }
        events
    }
}

/// The byte offset where the answer begins in a reply so far; None while all of it is (or may
/// still turn out to be) reasoning. Lazy call grammars look for calls from here on only.
pub fn answer_offset(text: &str, thinking: Option<ThinkingStart>) -> Option<usize> {
    let after_close = || text.find(CLOSE).map(|i| i + CLOSE.len());
    match thinking {
        None => Some(0),
        Some(ThinkingStart::OpenedByPrompt) => after_close(),
        Some(ThinkingStart::InReply) => {
            let opening = text.trim_start();
            if opening.starts_with(OPEN) {
                after_close()
            } else if opening.is_empty() || OPEN.starts_with(opening) {
                None
            } else {
                Some(0)
            }
        }
    }
}

/// Reads a whole reply; the same as pushing it in pieces and finishing.
pub fn read_reply(text: &str, format: &ReplyFormat) -> ParsedReply {
    let mut reader = ReplyReader::new(format);
    let mut events = reader.push(text);
    events.extend(reader.finish());
    ParsedReply::from_events(events)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calls::ToolCall;
    use serde_json::json;

    fn xml_format(thinking: Option<ThinkingStart>) -> ReplyFormat {
        let schema = json!({"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}});
        ReplyFormat { thinking, calls: Some(CallFormat::Xml([("weather".to_string(), schema)].into_iter().collect())) }
    }

    const THINK_THEN_CALL: &str = "<think>\nMaybe <function=weather> is needed; call it.\n</think>\n\nLet me check.\n<tool_call>\n<function=weather>\n<parameter=city>\nParis\n</parameter>\n<parameter=days>\n2\n</parameter>\n</function>\n</tool_call>";

    #[test]
    fn reasoning_is_split_before_calls_are_read() {
        let reply = read_reply(THINK_THEN_CALL, &xml_format(Some(ThinkingStart::InReply)));
        assert_eq!(reply.reasoning.as_deref(), Some("\nMaybe <function=weather> is needed; call it.\n"));
        assert_eq!(reply.content.as_deref(), Some("Let me check.\n"));
        assert_eq!(reply.calls, [ToolCall { name: "weather".into(), arguments: json!({"city": "Paris", "days": 2}).to_string() }]);
    }

    #[test]
    fn streamed_at_every_split_point_equals_whole() {
        for format in [xml_format(Some(ThinkingStart::InReply)), xml_format(None), ReplyFormat::default()] {
            let whole = read_reply(THINK_THEN_CALL, &format);
            for split in (0..=THINK_THEN_CALL.len()).filter(|&i| THINK_THEN_CALL.is_char_boundary(i)) {
                let mut reader = ReplyReader::new(&format);
                let mut events = reader.push(&THINK_THEN_CALL[..split]);
                events.extend(reader.push_piece(&THINK_THEN_CALL[split..], true));
                assert_eq!(ParsedReply::from_events(events), whole, "split at {split} of {format:?}");
            }
        }
    }

    #[test]
    fn the_answer_starts_after_the_reasoning() {
        let in_reply = Some(ThinkingStart::InReply);
        assert_eq!(answer_offset("<think>a</think>b", in_reply), Some(16));
        assert_eq!(answer_offset("<think>still thinking", in_reply), None);
        assert_eq!(answer_offset(" <thi", in_reply), None);
        assert_eq!(answer_offset("Hello", in_reply), Some(0));
        assert_eq!(answer_offset("thought</think>", Some(ThinkingStart::OpenedByPrompt)), Some(15));
        assert_eq!(answer_offset("<think>", None), Some(0));
    }

    #[test]
    fn formats_without_thinking_or_calls_leave_text_alone() {
        let plain = read_reply(THINK_THEN_CALL, &ReplyFormat::default());
        assert_eq!((plain.reasoning, plain.content.as_deref(), plain.calls.len()), (None, Some(THINK_THEN_CALL), 0));
        let opened = ReplyFormat { thinking: Some(ThinkingStart::OpenedByPrompt), calls: None };
        let reply = read_reply("Short thought.</think>\n\nThe answer.", &opened);
        assert_eq!((reply.reasoning.as_deref(), reply.content.as_deref()), (Some("Short thought."), Some("The answer.")));
        let json_calls = ReplyFormat { thinking: Some(ThinkingStart::InReply), calls: Some(CallFormat::Json(vec!["f".into()])) };
        let reply = read_reply("<think>use {\"name\": \"f\"}</think><tool_call>\n{\"name\": \"f\", \"arguments\": {}}\n</tool_call>", &json_calls);
        assert_eq!(reply.reasoning.as_deref(), Some("use {\"name\": \"f\"}"));
        assert_eq!((reply.content, reply.calls.len()), (None, 1));
    }
}
