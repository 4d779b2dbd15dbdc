//! Tool calls in a model's reply: the forms models really write (Hermes `<tool_call>` tags, a
//! `<tools>` wrapper, fenced JSON, a bare JSON object or array at the start; Qwen3-Coder's XML
//! `<function=...>` calls), parsed incrementally so that streamed and whole answers split the
//! same way; and a thinking model's `<think>` reasoning split from its answer. Pure code, no
//! model.

mod calls;
mod lenient;
mod reader;
mod reply;
mod start;
mod thinking;
mod xml_calls;

pub use calls::{calls_in_json, ToolCall};
pub use lenient::{parse as parse_lenient_json, value_end};
pub use reader::{answer_offset, read_reply, CallFormat, ReplyFormat, ReplyReader, ThinkingStart};
pub use reply::{parse_reply, ParsedReply, ReplyEvent, ReplyParser};
pub use start::{call_start, CallForm};
pub use thinking::{ThinkPart, ThinkSplitter};
pub use xml_calls::XmlReplyParser;
