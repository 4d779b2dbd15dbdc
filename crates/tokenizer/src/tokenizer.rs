//! The tokenizer of a model: encode/decode, special ids and the chat template source.

use std::path::Path;

use hearth_model::{GgufFile, MetaValue};

use crate::error::TokenizerError;
use crate::fim::FimTokens;
use crate::vocab::tokenizer_from_gguf;

/// Texts of tokens that end a turn in the chat formats we know (llama.cpp's end-of-generation set).
const END_OF_GENERATION_TEXTS: &[&str] =
    &["<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end_of_text|>", "</s>", "<end_of_turn>", "<|end|>", "<|eom_id|>"];

/// A model's tokenizer plus the special tokens generation needs.
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    bos: Option<u32>,
    eos: Option<u32>,
    end_of_generation: Vec<u32>,
    chat_template: Option<String>,
    /// Whether plain prompts start with BOS (chat templates write their own).
    add_bos: bool,
    fim: FimTokens,
}

impl Tokenizer {
    /// The tokenizer embedded in a GGUF file.
    pub fn from_gguf(file: &GgufFile) -> Result<Self, TokenizerError> {
        let vocab = tokenizer_from_gguf(file)?;
        let id = |key: &str| file.meta(key).and_then(MetaValue::as_u64).map(|v| v as u32);
        let eos = id("tokenizer.ggml.eos_token_id");
        let mut end_of_generation: Vec<u32> = vocab
            .control_tokens
            .iter()
            .copied()
            .filter(|&t| END_OF_GENERATION_TEXTS.contains(&vocab.tokens[t as usize].as_str()))
            .chain(eos)
            .chain(id("tokenizer.ggml.eot_token_id"))
            .collect();
        end_of_generation.sort_unstable();
        end_of_generation.dedup();
        let special = |text: &str| vocab.added_tokens.iter().copied().find(|&t| vocab.tokens[t as usize] == text);
        let fim = FimTokens::find(|role| id(&format!("tokenizer.ggml.fim_{role}_token_id")), special);
        Ok(Tokenizer {
            fim,
            inner: vocab.tokenizer,
            bos: id("tokenizer.ggml.bos_token_id"),
            eos,
            end_of_generation,
            chat_template: file.meta("tokenizer.chat_template").and_then(MetaValue::as_str).map(str::to_string),
            add_bos: file.meta("tokenizer.ggml.add_bos_token").and_then(MetaValue::as_bool).unwrap_or(false),
        })
    }

    /// A Hugging Face directory: `tokenizer.json` plus `tokenizer_config.json` (special tokens,
    /// chat template) or `chat_template.jinja`.
    pub fn from_dir(dir: &Path) -> Result<Self, TokenizerError> {
        let file_err = |path: &Path, message: String| TokenizerError::File { path: path.display().to_string(), message };
        let tok_path = dir.join("tokenizer.json");
        let inner = tokenizers::Tokenizer::from_file(&tok_path).map_err(|e| file_err(&tok_path, e.to_string()))?;
        let cfg_path = dir.join("tokenizer_config.json");
        let config: serde_json::Value = match std::fs::read_to_string(&cfg_path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| file_err(&cfg_path, e.to_string()))?,
            Err(_) => serde_json::Value::Null,
        };
        let token_id = |key: &str| {
            let text = match &config[key] {
                serde_json::Value::String(s) => Some(s.as_str()),
                serde_json::Value::Object(o) => o.get("content").and_then(|c| c.as_str()),
                _ => None,
            };
            text.and_then(|t| inner.token_to_id(t))
        };
        let (bos, eos) = (token_id("bos_token"), token_id("eos_token"));
        // only added (special) tokens end a turn: "</s>" can also be an ordinary BPE piece
        let added = inner.get_added_tokens_decoder();
        let mut end_of_generation: Vec<u32> = END_OF_GENERATION_TEXTS
            .iter()
            .filter_map(|t| inner.token_to_id(t))
            .filter(|id| added.contains_key(id))
            .chain(eos)
            .collect();
        end_of_generation.sort_unstable();
        end_of_generation.dedup();
        let jinja_path = dir.join("chat_template.jinja");
        let chat_template = match std::fs::read_to_string(&jinja_path) {
            Ok(text) => Some(text),
            Err(_) => config["chat_template"].as_str().map(str::to_string),
        };
        let add_bos = config["add_bos_token"].as_bool().unwrap_or(false);
        let fim = FimTokens::find(|_| None, |text| inner.token_to_id(text).filter(|id| added.contains_key(id)));
        Ok(Tokenizer { inner, bos, eos, end_of_generation, chat_template, add_bos, fim })
    }

    /// The tokenizer in Hugging Face's `tokenizer.json` format.
    pub fn to_json(&self) -> Result<String, TokenizerError> {
        self.inner.to_string(false).map_err(|e| TokenizerError::Tokenizers(e.to_string()))
    }

    /// Token ids of `text`; special-token texts in it become their special ids. Adds no BOS.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, TokenizerError> {
        let enc = self.inner.encode_fast(text, false).map_err(|e| TokenizerError::Tokenizers(e.to_string()))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Text of `ids`, special tokens included (so decode(encode(s)) == s).
    pub fn decode(&self, ids: &[u32]) -> String {
        self.inner.decode(ids, false).unwrap_or_default()
    }

    /// The text of one token id, if it exists.
    pub fn token_text(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// The raw bytes of one token (byte-level BPE tokens may hold part of a UTF-8 character).
    pub fn token_bytes(&self, id: u32) -> Option<Vec<u8>> {
        let text = self.inner.id_to_token(id)?;
        if self.inner.get_added_tokens_decoder().contains_key(&id) {
            return Some(text.into_bytes());
        }
        Some(text.chars().map(|c| crate::bytelevel::char_to_byte(c).unwrap_or(b'?')).collect())
    }

    /// Every id below `size` as a grammar engine sees it: its bytes, and whether it is a
    /// special (control) token that text can never spell. Ids the tokenizer lacks have no bytes.
    pub fn vocabulary(&self, size: usize) -> Vec<(Vec<u8>, bool)> {
        let added = self.inner.get_added_tokens_decoder();
        (0..size as u32)
            .map(|id| match (self.inner.id_to_token(id), added.get(&id)) {
                (None, _) => (Vec::new(), false),
                (Some(text), Some(token)) => (text.into_bytes(), token.special),
                (Some(text), None) => (text.chars().map(|c| crate::bytelevel::char_to_byte(c).unwrap_or(b'?')).collect(), false),
            })
            .collect()
    }

    /// Whether plain prompts start with BOS.
    pub fn adds_bos(&self) -> bool {
        self.add_bos
    }

    /// Token ids of a plain (non-chat) prompt: BOS first when the model asks for it.
    pub fn encode_prompt(&self, text: &str) -> Result<Vec<u32>, TokenizerError> {
        let mut ids = Vec::with_capacity(text.len() / 3 + 1);
        if let (true, Some(bos)) = (self.add_bos, self.bos) {
            ids.push(bos);
        }
        ids.extend(self.encode(text)?);
        Ok(ids)
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    pub fn bos_token(&self) -> Option<u32> {
        self.bos
    }

    pub fn eos_token(&self) -> Option<u32> {
        self.eos
    }

    /// Ids that end generation (end of turn, end of text).
    pub fn end_of_generation(&self) -> &[u32] {
        &self.end_of_generation
    }

    pub fn chat_template(&self) -> Option<&str> {
        self.chat_template.as_deref()
    }

    /// The fill-in-the-middle tokens the model has.
    pub fn fim(&self) -> &FimTokens {
        &self.fim
    }

    /// The text of a special token for templates (`bos_token`, `eos_token`), empty when absent.
    pub fn special_text(&self, id: Option<u32>) -> String {
        id.and_then(|i| self.token_text(i)).unwrap_or_default()
    }
}
