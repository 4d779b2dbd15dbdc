//! The incremental reply parser: text goes in as it is generated, content and complete calls
//! come out. Text that may still turn out to be a call (a partial tag or fence, an unfinished
//! JSON value at the start) is held back until it is decided, so no markup reaches content.

use crate::calls::{calls_in_json, ToolCall};
use crate::lenient;

/// What the parser has decided about the reply so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyEvent {
    /// A thinking model's reasoning (never content, never read for calls).
    Reasoning(String),
    Content(String),
    Call(ToolCall),
}

/// A whole reply split into content and calls.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParsedReply {
    /// The reasoning before the answer; None when there is none.
    pub reasoning: Option<String>,
    /// The text outside the calls; None when there is none.
    pub content: Option<String>,
    pub calls: Vec<ToolCall>,
}

/// Splits a finished reply; the same as pushing it in pieces and finishing.
pub fn parse_reply(text: &str, offered: &[String]) -> ParsedReply {
    let mut parser = ReplyParser::new(offered.to_vec());
    let mut events = parser.push(text);
    events.extend(parser.finish());
    ParsedReply::from_events(events)
}

impl ParsedReply {
    /// The reply a parser's events make up.
    pub fn from_events(events: impl IntoIterator<Item = ReplyEvent>) -> Self {
        let mut reply = ParsedReply::default();
        for event in events {
            match event {
                ReplyEvent::Reasoning(text) => reply.reasoning.get_or_insert_with(String::new).push_str(&text),
                ReplyEvent::Content(text) => reply.content.get_or_insert_with(String::new).push_str(&text),
                ReplyEvent::Call(call) => reply.calls.push(call),
            }
        }
        reply
    }
}

const TAG_OPEN: &str = "<tool_call>";
const TAG_CLOSE: &str = "</tool_call>";
const WRAPPER_OPEN: &str = "<tools>";
const WRAPPER_CLOSE: &str = "</tools>";
const FENCE: &str = "```";
/// Languages of a fenced block that may hold calls (empty: no language given).
const CALL_FENCE_LANGUAGES: &[&str] = &["", "json", "tool_call", "tool_calls", "function_call"];

/// Parses a reply as it streams in.
pub struct ReplyParser {
    offered: Vec<String>,
    /// Text not decided yet.
    pending: String,
    /// Whitespace after the last content, sent only when more content follows (or at the end
    /// of a reply without calls).
    held_space: String,
    /// Content other than whitespace has been sent (a bare JSON call must open the reply).
    content_started: bool,
    /// Inside a fenced block that is not a call: content up to its closing fence.
    in_code_block: bool,
    /// The last thing decided was a call: whitespace right after it is dropped.
    after_call: bool,
    calls: usize,
}

/// What the text at an opener turned out to be.
enum Opener {
    /// Not known yet: more text is needed.
    Undecided,
    /// Calls, spanning this many bytes.
    Calls(Vec<ToolCall>, usize),
    /// Content of this many bytes; true when it opened a code block.
    Content(usize, bool),
}

impl ReplyParser {
    pub fn new(offered: Vec<String>) -> Self {
        ReplyParser {
            offered,
            pending: String::new(),
            held_space: String::new(),
            content_started: false,
            in_code_block: false,
            after_call: false,
            calls: 0,
        }
    }

    /// Takes the next piece of the reply; returns what became certain with it.
    pub fn push(&mut self, text: &str) -> Vec<ReplyEvent> {
        self.pending.push_str(text);
        let mut events = Vec::new();
        self.advance(false, &mut events);
        events
    }

    /// The reply has ended: decides everything still pending (a call whose closing tag or
    /// fence never came is still a call when its JSON holds one).
    pub fn finish(&mut self) -> Vec<ReplyEvent> {
        let mut events = Vec::new();
        self.advance(true, &mut events);
        let space = std::mem::take(&mut self.held_space);
        if self.calls == 0 && !space.is_empty() {
            events.push(ReplyEvent::Content(space));
        }
        events
    }

    fn advance(&mut self, at_end: bool, events: &mut Vec<ReplyEvent>) {
        loop {
            if self.in_code_block && !self.advance_code_block(at_end, events) {
                return;
            }
            let Some(start) = self.first_opener() else {
                let keep = if at_end { 0 } else { partial_opener_len(&self.pending) };
                let decided = self.pending.len() - keep;
                let text: String = self.pending.drain(..decided).collect();
                self.emit_content(&text, events);
                return;
            };
            let before: String = self.pending.drain(..start).collect();
            self.emit_content(&before, events);
            match self.resolve(at_end) {
                Opener::Undecided => return,
                Opener::Calls(calls, len) => {
                    self.pending.drain(..len);
                    self.calls += calls.len();
                    self.after_call = true;
                    events.extend(calls.into_iter().map(ReplyEvent::Call));
                }
                Opener::Content(len, opens_code_block) => {
                    let text: String = self.pending.drain(..len).collect();
                    self.emit_content(&text, events);
                    self.in_code_block = opens_code_block;
                }
            }
            if self.pending.is_empty() {
                return;
            }
        }
    }

    /// Sends code-block content up to and including its closing fence; false while the block
    /// is still open.
    fn advance_code_block(&mut self, at_end: bool, events: &mut Vec<ReplyEvent>) -> bool {
        let (len, closed) = match self.pending.find(FENCE) {
            Some(i) => (i + FENCE.len(), true),
            None if at_end => (self.pending.len(), false),
            None => (self.pending.len() - trailing_prefix_len(&self.pending, FENCE), false),
        };
        let text: String = self.pending.drain(..len).collect();
        self.emit_content(&text, events);
        self.in_code_block = !closed;
        closed
    }

    /// Byte index of the first place in `pending` where a call may start.
    fn first_opener(&self) -> Option<usize> {
        let text = &self.pending;
        let mut first = [TAG_OPEN, WRAPPER_OPEN, FENCE].iter().filter_map(|o| text.find(o)).min();
        if !self.content_started {
            let lead = text.len() - text.trim_start().len();
            if text[lead..].starts_with(['{', '[']) {
                first = Some(first.map_or(lead, |f| f.min(lead)));
            }
        }
        first
    }

    /// Decides the opener at the start of `pending`.
    fn resolve(&self, at_end: bool) -> Opener {
        let text = self.pending.as_str();
        if text.starts_with(TAG_OPEN) {
            self.resolve_tagged(text, TAG_OPEN, TAG_CLOSE, at_end)
        } else if text.starts_with(WRAPPER_OPEN) {
            self.resolve_tagged(text, WRAPPER_OPEN, WRAPPER_CLOSE, at_end)
        } else if text.starts_with(FENCE) {
            self.resolve_fence(text, at_end)
        } else {
            self.resolve_bare(text, at_end)
        }
    }

    fn resolve_tagged(&self, text: &str, open: &str, close: &str, at_end: bool) -> Opener {
        let (body, len) = match text.find(close) {
            Some(i) => (&text[open.len()..i], i + close.len()),
            None if at_end => (&text[open.len()..], text.len()),
            None => return Opener::Undecided,
        };
        match calls_in_sequence(body, &self.offered) {
            Some(calls) => Opener::Calls(calls, len),
            None => Opener::Content(len, false),
        }
    }

    fn resolve_fence(&self, text: &str, at_end: bool) -> Opener {
        let Some(line_end) = text.find('\n') else {
            return if at_end { Opener::Content(text.len(), false) } else { Opener::Undecided };
        };
        let language = text[FENCE.len()..line_end].trim();
        let body_start = line_end + 1;
        let body = &text[body_start..];
        if !CALL_FENCE_LANGUAGES.contains(&language) {
            return Opener::Content(body_start, true);
        }
        match body.trim_start().chars().next() {
            None if at_end => return Opener::Content(text.len(), false),
            None => return Opener::Undecided,
            Some('{' | '[') => {}
            Some(_) => return Opener::Content(body_start, true),
        }
        let (body, len) = match body.find(FENCE) {
            Some(i) => (&body[..i], body_start + i + FENCE.len()),
            None if at_end => (body, text.len()),
            None => return Opener::Undecided,
        };
        match calls_in_sequence(body, &self.offered) {
            Some(calls) => Opener::Calls(calls, len),
            None => Opener::Content(len, false),
        }
    }

    /// A JSON object or array opening the reply.
    fn resolve_bare(&self, text: &str, at_end: bool) -> Opener {
        if !looks_like_call_json(text) {
            return Opener::Content(1, false);
        }
        let len = match lenient::value_end(text) {
            Some(len) => len,
            None if at_end => text.len(),
            None => return Opener::Undecided,
        };
        match calls_in_sequence(&text[..len], &self.offered) {
            Some(calls) => Opener::Calls(calls, len),
            None => Opener::Content(len, false),
        }
    }

    /// Sends content; whitespace at its end waits until more content follows.
    fn emit_content(&mut self, text: &str, events: &mut Vec<ReplyEvent>) {
        let text = if self.after_call { text.trim_start() } else { text };
        let body = text.trim_end();
        if body.is_empty() {
            self.held_space.push_str(text);
            return;
        }
        let mut content = std::mem::take(&mut self.held_space);
        content.push_str(body);
        self.held_space.push_str(&text[body.len()..]);
        self.content_started = true;
        self.after_call = false;
        events.push(ReplyEvent::Content(content));
    }
}

/// Whether text opening with `{` or `[` can still be a call: the next thing is a key (or an
/// object: in a list, or the doubled braces Qwen copies from its template).
fn looks_like_call_json(text: &str) -> bool {
    let mut chars = text.chars();
    let open = chars.next();
    let next = chars.as_str().trim_start().chars().next();
    match (open, next) {
        (_, None) => true,
        (Some('{'), Some(c)) => matches!(c, '"' | '\'' | '{'),
        (Some('['), Some(c)) => c == '{',
        _ => false,
    }
}

/// One or more JSON values in a row (whitespace between), all of them calls.
fn calls_in_sequence(body: &str, offered: &[String]) -> Option<Vec<ToolCall>> {
    if let Some(calls) = calls_in_json(body, offered) {
        return Some(calls);
    }
    let mut calls = Vec::new();
    let mut rest = body.trim_start();
    while !rest.is_empty() {
        let len = lenient::value_end(rest).unwrap_or(rest.len());
        calls.extend(calls_in_json(&rest[..len], offered)?);
        rest = rest[len..].trim_start();
    }
    (!calls.is_empty()).then_some(calls)
}

/// Length of the longest end of `text` that is the beginning of an opener.
fn partial_opener_len(text: &str) -> usize {
    [TAG_OPEN, WRAPPER_OPEN, FENCE].iter().map(|o| trailing_prefix_len(text, o)).max().unwrap_or(0)
}

/// Length of the longest end of `text` that is a proper beginning of `marker`.
pub(crate) fn trailing_prefix_len(text: &str, marker: &str) -> usize {
    (1..marker.len()).rev().find(|&n| text.ends_with(&marker[..n])).unwrap_or(0)
}
