//! A thinking model's reply split into its reasoning (`<think>...</think>`, as Qwen3 writes it)
//! and its answer, incrementally: tags split across pieces are held back, so neither the tags
//! nor reasoning text reach the answer (nor the tool-call parser that reads the answer).

use crate::reply::trailing_prefix_len;

pub(crate) const OPEN: &str = "<think>";
pub(crate) const CLOSE: &str = "</think>";

/// A decided part of the reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ThinkPart {
    Reasoning(String),
    Answer(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Nothing but whitespace yet: a `<think>` may still open the reply.
    Start,
    Thinking,
    Answering,
}

/// Splits a reply as it streams in.
pub struct ThinkSplitter {
    state: State,
    pending: String,
    /// Right after `</think>`: blank lines before the answer belong to the tag.
    answer_started: bool,
}

impl ThinkSplitter {
    /// `prompt_opened_thinking`: the prompt ended inside `<think>` (templates that open the
    /// block themselves), so the reply begins as reasoning and only `</think>` comes.
    pub fn new(prompt_opened_thinking: bool) -> Self {
        let state = if prompt_opened_thinking { State::Thinking } else { State::Start };
        ThinkSplitter { state, pending: String::new(), answer_started: false }
    }

    /// Takes the next piece; returns what became certain.
    pub fn push(&mut self, text: &str) -> Vec<ThinkPart> {
        self.pending.push_str(text);
        let mut parts = Vec::new();
        self.advance(false, &mut parts);
        parts
    }

    /// The reply has ended: what is left is decided (reasoning never closed stays reasoning).
    pub fn finish(&mut self) -> Vec<ThinkPart> {
        let mut parts = Vec::new();
        self.advance(true, &mut parts);
        parts
    }

    fn advance(&mut self, at_end: bool, parts: &mut Vec<ThinkPart>) {
        loop {
            match self.state {
                State::Start => {
                    let trimmed = self.pending.trim_start();
                    if let Some(rest) = trimmed.strip_prefix(OPEN) {
                        self.pending = rest.to_string();
                        self.state = State::Thinking;
                    } else if !at_end && (trimmed.is_empty() || OPEN.starts_with(trimmed)) {
                        return;
                    } else {
                        // no reasoning: the reply is the answer as written
                        self.state = State::Answering;
                        self.answer_started = true;
                    }
                }
                State::Thinking => match self.pending.find(CLOSE) {
                    Some(i) => {
                        let reasoning: String = self.pending.drain(..i).collect();
                        self.pending.drain(..CLOSE.len());
                        push(parts, ThinkPart::Reasoning(reasoning));
                        self.state = State::Answering;
                    }
                    None => {
                        let keep = if at_end { 0 } else { trailing_prefix_len(&self.pending, CLOSE) };
                        let reasoning: String = self.pending.drain(..self.pending.len() - keep).collect();
                        push(parts, ThinkPart::Reasoning(reasoning));
                        return;
                    }
                },
                State::Answering => {
                    if !self.answer_started {
                        self.pending = self.pending.trim_start().to_string();
                        self.answer_started = !self.pending.is_empty();
                    }
                    let answer = std::mem::take(&mut self.pending);
                    push(parts, ThinkPart::Answer(answer));
                    return;
                }
            }
        }
    }
}

fn push(parts: &mut Vec<ThinkPart>, part: ThinkPart) {
    let (ThinkPart::Reasoning(text) | ThinkPart::Answer(text)) = &part;
    if !text.is_empty() {
        parts.push(part);
    }
}

/// Splits a whole reply; the same as pushing it in pieces (whole replies go through
/// `read_reply`).
#[cfg(test)]
fn split_thinking(text: &str, prompt_opened_thinking: bool) -> (String, String) {
    let mut splitter = ThinkSplitter::new(prompt_opened_thinking);
    let mut parts = splitter.push(text);
    parts.extend(splitter.finish());
    let (mut reasoning, mut answer) = (String::new(), String::new());
    for part in parts {
        match part {
            ThinkPart::Reasoning(t) => reasoning.push_str(&t),
            ThinkPart::Answer(t) => answer.push_str(&t),
        }
    }
    (reasoning, answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasoning_and_answer_split_whole_and_at_every_point() {
        let reply = "<think>\nThe user wants 2+2.\n</think>\n\nIt is 4. Tags like <b> stay.";
        let whole = split_thinking(reply, false);
        assert_eq!(whole, ("\nThe user wants 2+2.\n".to_string(), "It is 4. Tags like <b> stay.".to_string()));
        for split in 0..=reply.len() {
            let mut splitter = ThinkSplitter::new(false);
            let mut parts = splitter.push(&reply[..split]);
            parts.extend(splitter.push(&reply[split..]));
            parts.extend(splitter.finish());
            let answer: String = parts.iter().filter_map(|p| if let ThinkPart::Answer(t) = p { Some(t.as_str()) } else { None }).collect();
            let reasoning: String = parts.iter().filter_map(|p| if let ThinkPart::Reasoning(t) = p { Some(t.as_str()) } else { None }).collect();
            assert_eq!((reasoning, answer), whole.clone(), "split at {split}");
        }
    }

    #[test]
    fn replies_without_thinking_or_opened_by_the_prompt() {
        assert_eq!(split_thinking("Just the answer.", false), (String::new(), "Just the answer.".to_string()));
        assert_eq!(split_thinking("\n  indented code", false), (String::new(), "\n  indented code".to_string()));
        assert_eq!(split_thinking("<thinking is fun", false), (String::new(), "<thinking is fun".to_string()));
        assert_eq!(split_thinking("Reasoning here.</think>\n\nAnswer.", true), ("Reasoning here.".to_string(), "Answer.".to_string()));
        assert_eq!(split_thinking("<think>never closed", false), ("never closed".to_string(), String::new()));
        assert_eq!(split_thinking("<think>\n\n</think>\n\nNo thoughts.", false), ("\n\n".to_string(), "No thoughts.".to_string()));
    }
}
