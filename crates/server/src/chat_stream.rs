//! Chat answers as stream chunks: the role first, then what the reply reader decides: a
//! thinking model's reasoning as `delta.reasoning_content`, content deltas, calls as
//! `delta.tool_calls`, so no reasoning or call markup reaches `delta.content`.

use std::sync::Arc;

use hearth_engine::{FinishReason, TokenEvent};
use hearth_protocol::{
    ChatChunkChoice, ChatCompletionChunk, ChatDelta, ChatLogprobs, FunctionCall, FunctionCallDelta, ToolCall,
    ToolCallDelta, Usage,
};
use hearth_tools::{ReplyEvent, ReplyFormat, ReplyReader};
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

/// The reply reader of one streamed choice.
struct ChoiceReader {
    reader: ReplyReader,
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
    /// Per choice (none: the text is sent as it comes).
    readers: Vec<ChoiceReader>,
}

impl ChatShape {
    pub fn new(id: String, created: u64, model: String, tokenizer: Arc<Tokenizer>, logprobs: bool, include_usage: bool) -> Self {
        ChatShape { id, created, model, tokenizer, logprobs, include_usage, readers: Vec::new() }
    }

    /// Reads each choice's text as `format` says (reasoning, calls); `single` keeps only the
    /// first call.
    pub fn read_replies(mut self, choices: usize, format: &ReplyFormat, single: bool) -> Self {
        self.readers = (0..choices).map(|_| ChoiceReader { reader: ReplyReader::new(format), counter: CallCounter::new(single) }).collect();
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

    /// The deltas of what the reader decided: reasoning and content as they are, each call as
    /// a header (id, type, name, empty arguments) and then its arguments.
    fn reply_deltas(&mut self, index: u32, events: Vec<ReplyEvent>) -> Vec<ChatDelta> {
        let Some(choice) = self.readers.get_mut(index as usize) else { return Vec::new() };
        let mut deltas = Vec::new();
        for event in events {
            match event {
                ReplyEvent::Reasoning(text) => deltas.push(ChatDelta { reasoning_content: Some(text), ..Default::default() }),
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

    /// The deltas for a token's text, through the choice's reply reader.
    fn token_deltas(&mut self, index: u32, text: &str, finished: bool) -> Vec<ChatDelta> {
        match self.readers.get_mut(index as usize) {
            Some(choice) => {
                let events = choice.reader.push_piece(text, finished);
                self.reply_deltas(index, events)
            }
            None if text.is_empty() => Vec::new(),
            None => vec![ChatDelta { content: Some(text.to_string()), ..Default::default() }],
        }
    }

    fn made_calls(&self, index: u32) -> bool {
        self.readers.get(index as usize).is_some_and(|c| c.counter.made_calls())
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
        let delta = ChatDelta { role: Some("assistant".into()), content: Some(String::new()), ..Default::default() };
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
