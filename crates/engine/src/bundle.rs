//! A model with its tokenizer and chat template, loaded together from one GGUF file.

use std::path::Path;
use std::sync::Arc;

use hearth_model::{Model, ModelError};
use hearth_tokenizer::{ChatInputs, ChatTemplate, Tokenizer, TokenizerError};
use serde::Serialize;

/// Everything needed to turn chat messages into tokens and tokens into text.
pub struct ModelBundle {
    pub model: Arc<Model>,
    pub tokenizer: Arc<Tokenizer>,
    pub template: Option<ChatTemplate>,
    /// Sampling defaults the model ships with (Hugging Face `generation_config.json`).
    pub generation_defaults: GenerationDefaults,
}

/// Sampling values a model recommends; requests that omit a parameter get these first, then
/// OpenAI's defaults. GGUF files carry none.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GenerationDefaults {
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    pub top_k: Option<usize>,
    pub min_p: Option<f32>,
    pub repetition_penalty: Option<f32>,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
}

/// One chat message in OpenAI's basic shape.
#[derive(Debug, Clone, Serialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

impl ModelBundle {
    pub fn load(path: &Path) -> Result<Self, LoadError> {
        let model = Model::load(path)?;
        let gguf = model.gguf().expect("Model::load reads a GGUF file");
        let tokenizer = Tokenizer::from_gguf(gguf)?;
        let template = match tokenizer.chat_template() {
            Some(source) => Some(ChatTemplate::new(
                source,
                tokenizer.special_text(tokenizer.bos_token()),
                tokenizer.special_text(tokenizer.eos_token()),
            )?),
            None => None,
        };
        Ok(ModelBundle {
            model: Arc::new(model),
            tokenizer: Arc::new(tokenizer),
            template,
            generation_defaults: GenerationDefaults::default(),
        })
    }

    /// Renders `messages` with the model's template (generation prompt added) and tokenizes.
    pub fn chat_prompt(&self, messages: &[ChatMessage]) -> Result<Vec<u32>, TokenizerError> {
        let template = self
            .template
            .as_ref()
            .ok_or_else(|| TokenizerError::Template("the model has no chat template".into()))?;
        let text = template.render(&ChatInputs::<_, ()> { messages: &messages, tools: None, add_generation_prompt: true })?;
        self.tokenizer.encode(&text)
    }

    /// The context length the model was trained for.
    pub fn context_length(&self) -> usize {
        self.model.config().context_length
    }
}
