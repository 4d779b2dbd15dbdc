//! Builds a byte-level BPE tokenizer (the `tokenizers` crate) from GGUF vocabulary metadata.


use hearth_model::{GgufFile, MetaValue};
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::BPE;
use tokenizers::normalizers::unicode::NFC;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{AddedToken, PreTokenizerWrapper, SplitDelimiterBehavior};

use crate::error::TokenizerError;

/// GGUF token types (llama.cpp's `llama_token_type`).
const TOKEN_TYPE_CONTROL: i64 = 3;
const TOKEN_TYPE_USER_DEFINED: i64 = 4;

/// Qwen2's pre-tokenizer split (the same regex as its Hugging Face tokenizer.json).
const QWEN2_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// What the GGUF says about the vocabulary besides the BPE tables.
pub struct GgufVocab {
    pub tokenizer: tokenizers::Tokenizer,
    pub tokens: Vec<String>,
    pub control_tokens: Vec<u32>,
    /// Control and user-defined tokens (matched whole in text, never split by BPE).
    pub added_tokens: Vec<u32>,
}

pub fn tokenizer_from_gguf(file: &GgufFile) -> Result<GgufVocab, TokenizerError> {
    let name = file.path().display().to_string();
    let bad = |message: String| TokenizerError::Vocab { source_name: name.clone(), message };
    let model = file.require_str("tokenizer.ggml.model")?;
    if model != "gpt2" {
        return Err(bad(format!("tokenizer model `{model}` is not supported (supported: gpt2 byte-level BPE)")));
    }
    let tokens: Vec<String> = file
        .require_array("tokenizer.ggml.tokens")?
        .iter()
        .map(|v| v.as_str().map(str::to_string))
        .collect::<Option<_>>()
        .ok_or_else(|| bad("tokenizer.ggml.tokens holds a non-string".into()))?;
    let types: Vec<i64> = match file.meta("tokenizer.ggml.token_type") {
        Some(_) => file.require_array("tokenizer.ggml.token_type")?.iter().map(|v| v.as_f64().map(|f| f as i64).unwrap_or(1)).collect(),
        None => vec![1; tokens.len()],
    };
    if types.len() != tokens.len() {
        return Err(bad(format!("{} token types for {} tokens", types.len(), tokens.len())));
    }
    let merges: Vec<(String, String)> = file
        .require_array("tokenizer.ggml.merges")?
        .iter()
        .map(|v| v.as_str().and_then(|m| m.split_once(' ')).map(|(a, b)| (a.to_string(), b.to_string())))
        .collect::<Option<_>>()
        .ok_or_else(|| bad("tokenizer.ggml.merges holds an entry that is not `left right`".into()))?;
    let vocab: ahash::AHashMap<String, u32> = tokens.iter().enumerate().map(|(i, t)| (t.clone(), i as u32)).collect();
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .build()
        .map_err(|e| bad(format!("cannot build BPE: {e}")))?;
    let mut tokenizer = tokenizers::Tokenizer::new(bpe);
    let pre = file.meta("tokenizer.ggml.pre").and_then(MetaValue::as_str).unwrap_or("default");
    configure_pre_tokenizer(&mut tokenizer, pre).map_err(bad)?;
    tokenizer.with_decoder(Some(ByteLevelDecoder::default()));

    let mut control_tokens = Vec::new();
    let mut added_tokens = Vec::new();
    let added: Vec<AddedToken> = tokens
        .iter()
        .zip(&types)
        .enumerate()
        .filter(|(_, (_, &ty))| ty == TOKEN_TYPE_CONTROL || ty == TOKEN_TYPE_USER_DEFINED)
        .map(|(id, (text, &ty))| {
            if ty == TOKEN_TYPE_CONTROL {
                control_tokens.push(id as u32);
            }
            added_tokens.push(id as u32);
            AddedToken::from(text.clone(), ty == TOKEN_TYPE_CONTROL).normalized(false)
        })
        .collect();
    tokenizer.add_special_tokens(&added);
    Ok(GgufVocab { tokenizer, tokens, control_tokens, added_tokens })
}

/// Sets the normalizer and pre-tokenizer that llama.cpp uses for each `tokenizer.ggml.pre`.
fn configure_pre_tokenizer(tokenizer: &mut tokenizers::Tokenizer, pre: &str) -> Result<(), String> {
    let byte_level = |use_regex| PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, false, use_regex));
    let pre_tokenizer = match pre {
        "qwen2" => {
            tokenizer.with_normalizer(Some(NFC));
            let split = Split::new(SplitPattern::Regex(QWEN2_PATTERN.into()), SplitDelimiterBehavior::Isolated, false)
                .map_err(|e| format!("bad qwen2 split pattern: {e}"))?;
            Sequence::new(vec![PreTokenizerWrapper::Split(split), byte_level(false)])
        }
        // SmolLM, StarCoder and GPT-2 style: digits one by one, then GPT-2's byte-level regex.
        "smollm" | "starcoder" | "refact" => {
            Sequence::new(vec![PreTokenizerWrapper::Digits(Digits::new(true)), byte_level(true)])
        }
        "default" | "gpt2" | "gpt-2" => Sequence::new(vec![byte_level(true)]),
        other => return Err(format!("pre-tokenizer `{other}` is not supported (supported: qwen2, smollm, gpt2)")),
    };
    tokenizer.with_pre_tokenizer(Some(pre_tokenizer));
    Ok(())
}
