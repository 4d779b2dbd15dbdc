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

/// Sampling defaults from `generation_config.json` (absent or unreadable: none).
fn read_generation_defaults(dir: &Path) -> GenerationDefaults {
    let Ok(text) = std::fs::read_to_string(dir.join("generation_config.json")) else { return GenerationDefaults::default() };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
        tracing::warn!("{}: not valid JSON; using OpenAI's sampling defaults", dir.join("generation_config.json").display());
        return GenerationDefaults::default();
    };
    let float = |k: &str| v[k].as_f64().map(|x| x as f32);
    GenerationDefaults {
        temperature: float("temperature"),
        top_p: float("top_p"),
        top_k: v["top_k"].as_u64().map(|k| k as usize),
        min_p: float("min_p"),
        repetition_penalty: float("repetition_penalty"),
    }
}

/// One chat message in OpenAI's basic shape.
#[derive(Debug, Clone, Serialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

impl ModelBundle {
    /// A GGUF file, or a Hugging Face directory (config.json, safetensors, tokenizer files,
    /// generation_config.json).
    pub fn load(path: &Path) -> Result<Self, LoadError> {
        if !path.is_dir() {
            return Self::from_gguf(Arc::new(hearth_model::GgufFile::open(path).map_err(ModelError::from)?));
        }
        let model = Model::load_dir(path)?;
        Self::assemble(model, Tokenizer::from_dir(path)?, read_generation_defaults(path))
    }

    /// A GGUF file already read (mapped or in memory): the model, its tokenizer and template.
    pub fn from_gguf(file: Arc<hearth_model::GgufFile>) -> Result<Self, LoadError> {
        let model = Model::from_gguf(file.clone())?;
        Self::assemble(model, Tokenizer::from_gguf(&file)?, GenerationDefaults::default())
    }

    fn assemble(model: Model, tokenizer: Tokenizer, generation_defaults: GenerationDefaults) -> Result<Self, LoadError> {
        let template = match tokenizer.chat_template() {
            Some(source) => Some(ChatTemplate::new(
                source,
                tokenizer.special_text(tokenizer.bos_token()),
                tokenizer.special_text(tokenizer.eos_token()),
            )?),
            None => None,
        };
        Ok(ModelBundle { model: Arc::new(model), tokenizer: Arc::new(tokenizer), template, generation_defaults })
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
