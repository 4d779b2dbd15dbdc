//! Tokenizer and chat template errors.

#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    #[error("{source_name}: {message}")]
    Vocab { source_name: String, message: String },
    #[error("tokenizer: {0}")]
    Tokenizers(String),
    #[error("chat template: {0}")]
    Template(String),
    #[error(transparent)]
    Gguf(#[from] hearth_model::GgufError),
    #[error("{path}: {message}")]
    File { path: String, message: String },
}
