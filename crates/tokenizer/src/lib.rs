//! Tokenizers (GGUF vocabulary or tokenizer.json), chat templates, incremental detokenizing.

pub mod detok;
pub mod error;
pub mod fim;
pub mod stop;
pub mod template;
mod bytelevel;
mod tokenizer;
mod vocab;

pub use detok::IncrementalDecoder;
pub use error::TokenizerError;
pub use fim::{fim_prompt, ContextFile, FimError, FimInput, FimPrompt, FimTokens, Trimmed};
pub use stop::{StopCheck, StopStrings};
pub use template::{ChatInputs, ChatTemplate};
pub use tokenizer::Tokenizer;
