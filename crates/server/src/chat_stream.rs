//! Chat answers as stream chunks: the role first, content deltas, and when tools are offered
//! the reply parser in between, so calls go out as `delta.tool_calls` and no call markup
//! reaches `delta.content`.

use std::sync::Arc;

use hearth_engine::{FinishReason, TokenEvent};
use hearth_protocol::{
    ChatChunkChoice, ChatCompletionChunk, ChatDelta, ChatLogprobs, FunctionCall, FunctionCallDelta, ToolCall,
    ToolCallDelta, Usage,
};
use hearth_tools::{ReplyEvent, ReplyParser};
use hearth_tokenizer::Tokenizer;

use crate::logprobs;
use crate::stream::ChunkShape;

/// How one choice's calls are numbered and limited.
pub struct CallCounter {
    made: usize,
    /// Only the first call counts (`parallel_tool_calls: false`).
    single: bool,
}

impl CallCounter {
    pub fn new(single: bool) -> Self {
        CallCounter { made: 0, single }
    }

    /// The wire form of the next call; None when a single call was asked for and one was
    /// already made (the extra one is logged, not sent).
    pub fn accept(&mut self, call: hearth_tools::ToolCall) -> Option<(u32, ToolCall)> {
        if self.single && self.made == 1 {
            tracing::warn!(function = %call.name, "dropping a second call: parallel_tool_calls is false");
            return None;
        }
        self.made += 1;
        let id = format!("call_{}", crate::random_id());
        let wire = ToolCall { id, kind: "function".into(), function: FunctionCall { name: call.name, arguments: call.arguments } };
        Some(((self.made - 1) as u32, wire))
    }

    pub fn made_calls(&self) -> bool {
        self.made > 0
    }
}

/// The finish reason a client sees: "tool_calls" when the model stopped after calling.
pub fn finish_reason(reason: FinishReason, made_calls: bool) -> String {
    match (reason, made_calls) {
        (FinishReason::Stop, true) => "tool_calls".into(),
        (reason, _) => reason.as_str().to_string(),
    }
}

/// The reply parser of one streamed choice.
struct ChoiceCalls {
    parser: ReplyParser,
    counter: CallCounter,
}

/// Chat chunk shapes for one request.
pub struct ChatShape {
    pub id: String,
    pub created: u64,
    pub model: String,
    pub tokenizer: Arc<Tokenizer>,
    pub logprobs: bool,
    pub include_usage: bool,
    /// Per choice, when calls are parsed.
    calls: Vec<Option<ChoiceCalls>>,
}

impl ChatShape {
    pub fn new(id: String, created: u64, model: String, tokenizer: Arc<Tokenizer>, logprobs: bool, include_usage: bool) -> Self {
        ChatShape { id, created, model, tokenizer, logprobs, include_usage, calls: Vec::new() }
    }

    /// Parses calls out of each choice's text; `callable` names the functions calls may name
    /// (empty: calls are not parsed), `single` keeps only the first call.
    pub fn parse_calls(mut self, choices: usize, callable: Vec<String>, single: bool) -> Self {
        if !callable.is_empty() {
            self.calls = (0..choices)
                .map(|_| Some(ChoiceCalls { parser: ReplyParser::new(callable.clone()), counter: CallCounter::new(single) }))
                .collect();
        }
        self
    }

    fn chunk(&self, choices: Vec<ChatChunkChoice>, usage: Option<Usage>) -> String {
        let chunk = ChatCompletionChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk".into(),
            created: self.created,
            model: self.model.clone(),
            choices,
            usage: self.include_usage.then_some(usage),
        };
        serde_json::to_string(&chunk).unwrap_or_default()
    }

    fn delta_chunk(&self, index: u32, delta: ChatDelta, logprobs: Option<ChatLogprobs>, finish: Option<String>) -> String {
        self.chunk(vec![ChatChunkChoice { index, delta, logprobs, finish_reason: finish }], None)
    }

    /// The deltas of what the parser decided: content as it is, each call as a header
    /// (id, type, name, empty arguments) and then its arguments.
    fn call_deltas(&mut self, index: u32, events: Vec<ReplyEvent>) -> Vec<ChatDelta> {
        let Some(Some(choice)) = self.calls.get_mut(index as usize) else { return Vec::new() };
        let mut deltas = Vec::new();
        for event in events {
            match event {
                ReplyEvent::Content(text) => deltas.push(ChatDelta { content: Some(text), ..Default::default() }),
                ReplyEvent::Call(call) => {
                    let Some((n, wire)) = choice.counter.accept(call) else { continue };
                    let header = FunctionCallDelta { name: Some(wire.function.name), arguments: Some(String::new()) };
                    let header = ToolCallDelta { index: n, id: Some(wire.id), kind: Some(wire.kind), function: header };
                    let arguments = FunctionCallDelta { name: None, arguments: Some(wire.function.arguments) };
                    let arguments = ToolCallDelta { index: n, id: None, kind: None, function: arguments };
                    deltas.push(ChatDelta { tool_calls: Some(vec![header]), ..Default::default() });
                    deltas.push(ChatDelta { tool_calls: Some(vec![arguments]), ..Default::default() });
                }
            }
        }
        deltas
    }

    /// The deltas for a token's text, through the reply parser when calls are parsed.
    fn token_deltas(&mut self, index: u32, text: &str, finished: bool) -> Vec<ChatDelta> {
        match self.calls.get_mut(index as usize) {
            Some(Some(choice)) => {
                let events = choice.parser.push_piece(text, finished);
                self.call_deltas(index, events)
            }
            _ if text.is_empty() => Vec::new(),
            _ => vec![ChatDelta { content: Some(text.to_string()), ..Default::default() }],
        }
    }

    fn made_calls(&self, index: u32) -> bool {
        matches!(self.calls.get(index as usize), Some(Some(c)) if c.counter.made_calls())
    }

    /// Chunks for `deltas`; the token's logprobs ride on the first, the finish reason on the
    /// last (an empty delta carries them when there is nothing else to send).
    fn chunks(&self, index: u32, mut deltas: Vec<ChatDelta>, logprobs: Option<ChatLogprobs>, finish: Option<String>) -> Vec<String> {
        if deltas.is_empty() && (logprobs.is_some() || finish.is_some()) {
            deltas.push(ChatDelta::default());
        }
        let last = deltas.len().saturating_sub(1);
        let mut logprobs = logprobs;
        deltas
            .into_iter()
            .enumerate()
            .map(|(i, delta)| {
                let reason = if i == last { finish.clone() } else { None };
                self.delta_chunk(index, delta, logprobs.take(), reason)
            })
            .collect()
    }
}

impl ChunkShape for ChatShape {
    fn opening(&self, index: u32) -> Option<String> {
        let delta = ChatDelta { role: Some("assistant".into()), content: Some(String::new()), tool_calls: None };
        Some(self.delta_chunk(index, delta, None, None))
    }

    fn token(&mut self, index: u32, event: &TokenEvent) -> Vec<String> {
        let deltas = self.token_deltas(index, &event.text, event.finish.is_some());
        let logprobs = self.logprobs.then(|| logprobs::chat(&self.tokenizer, std::slice::from_ref(&event.sampled)));
        let finish = event.finish.map(|r| finish_reason(r, self.made_calls(index)));
        self.chunks(index, deltas, logprobs, finish)
    }

    fn closing(&mut self, index: u32, reason: FinishReason) -> Vec<String> {
        let deltas = self.token_deltas(index, "", true);
        let finish = Some(finish_reason(reason, self.made_calls(index)));
        self.chunks(index, deltas, None, finish)
    }

    fn usage(&self, usage: Usage) -> String {
        self.chunk(Vec::new(), Some(usage))
    }
}
