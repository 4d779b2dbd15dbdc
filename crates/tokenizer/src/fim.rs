//! Fill-in-the-middle: a code model's FIM tokens (from GGUF metadata, else found by their text
//! among the special tokens) and the one prompt every front door builds from a prefix, a suffix
//! and optional context from other files: pieces tokenized apart, assembled in the model's
//! order, trimmed at their far ends to fit the budget.

use crate::error::TokenizerError;
use crate::tokenizer::Tokenizer;

/// The texts each role's token goes by in the vocabularies we know: Qwen2.5/3-Coder and
/// StarCoder (`<|fim_prefix|>`, `<fim_prefix>`), CodeLlama (`<PRE>`), DeepSeek-Coder
/// (`<｜fim▁begin｜>`), and the repository-level tokens of Qwen and StarCoder2.
const PREFIX_TEXTS: &[&str] = &["<|fim_prefix|>", "<fim_prefix>", "<PRE>", "▁<PRE>", "<｜fim▁begin｜>"];
const SUFFIX_TEXTS: &[&str] = &["<|fim_suffix|>", "<fim_suffix>", "<SUF>", "▁<SUF>", "<｜fim▁hole｜>"];
const MIDDLE_TEXTS: &[&str] = &["<|fim_middle|>", "<fim_middle>", "<MID>", "▁<MID>", "<｜fim▁end｜>"];
const PAD_TEXTS: &[&str] = &["<|fim_pad|>", "<fim_pad>"];
const REPO_TEXTS: &[&str] = &["<|repo_name|>", "<repo_name>", "<reponame>"];
const FILE_SEP_TEXTS: &[&str] = &["<|file_sep|>", "<file_sep>"];

/// A model's FIM tokens; `prefix`, `suffix` and `middle` are what FIM needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FimTokens {
    pub prefix: Option<u32>,
    pub suffix: Option<u32>,
    pub middle: Option<u32>,
    pub pad: Option<u32>,
    /// Repository-level prompts: `<|repo_name|>` and `<|file_sep|>`.
    pub repo: Option<u32>,
    pub file_sep: Option<u32>,
}

impl FimTokens {
    /// The tokens, each from `id_of_role` (GGUF's `tokenizer.ggml.fim_*_token_id`) where it
    /// says, else from `id_of_text` over the role's known texts.
    pub(crate) fn find(id_of_role: impl Fn(&str) -> Option<u32>, id_of_text: impl Fn(&str) -> Option<u32>) -> Self {
        let pick = |role: &str, texts: &[&str]| id_of_role(role).or_else(|| texts.iter().find_map(|t| id_of_text(t)));
        FimTokens {
            prefix: pick("pre", PREFIX_TEXTS),
            suffix: pick("suf", SUFFIX_TEXTS),
            middle: pick("mid", MIDDLE_TEXTS),
            pad: pick("pad", PAD_TEXTS),
            repo: pick("rep", REPO_TEXTS),
            file_sep: pick("sep", FILE_SEP_TEXTS),
        }
    }

    /// The three tokens FIM needs, or the names of those the model lacks.
    pub fn required(&self) -> Result<(u32, u32, u32), String> {
        match (self.prefix, self.suffix, self.middle) {
            (Some(p), Some(s), Some(m)) => Ok((p, s, m)),
            _ => {
                let missing: Vec<&str> = [("prefix", self.prefix), ("suffix", self.suffix), ("middle", self.middle)]
                    .iter()
                    .filter(|(_, t)| t.is_none())
                    .map(|(name, _)| *name)
                    .collect();
                Err(format!("the model has no fill-in-the-middle {} token", missing.join(", ")))
            }
        }
    }

    /// Every FIM token the model has: generation stops at any of them.
    pub fn all(&self) -> Vec<u32> {
        [self.prefix, self.suffix, self.middle, self.pad, self.repo, self.file_sep].into_iter().flatten().collect()
    }
}

/// A file of the project beside the one being edited (llama.cpp's `input_extra`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextFile {
    pub filename: String,
    pub text: String,
}

/// What to fill in.
#[derive(Debug, Clone, Default)]
pub struct FimInput<'a> {
    pub prefix: &'a str,
    pub suffix: &'a str,
    /// Other files, oldest first.
    pub extra: &'a [ContextFile],
    /// The file being edited (repository-level prompts name it).
    pub filename: Option<&'a str>,
    /// The repository's name (repository-level prompts open with it).
    pub repo: Option<&'a str>,
}

/// How much of each piece a prompt left out to fit its budget, in tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Trimmed {
    /// From the prefix's start.
    pub prefix: usize,
    /// From the suffix's end.
    pub suffix: usize,
    /// Context files left out (the oldest).
    pub extra_files: usize,
}

impl Trimmed {
    pub fn any(&self) -> bool {
        *self != Trimmed::default()
    }
}

/// A FIM prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FimPrompt {
    pub tokens: Vec<u32>,
    pub trimmed: Trimmed,
}

/// Builds the prompt of `input` in at most `budget` tokens: `<PRE>prefix<SUF>suffix<MID>`,
/// after the context files (as `<|repo_name|>name\n<|file_sep|>file\ntext` chunks where the
/// model has those tokens, else as plain text before the prefix token). The prefix keeps its
/// end and the suffix its start; the suffix gets at most a quarter of the budget when both do
/// not fit; context files get what is left, the newest that fit whole.
pub fn fim_prompt(tokenizer: &Tokenizer, input: &FimInput<'_>, budget: usize) -> Result<FimPrompt, FimError> {
    let fim = tokenizer.fim();
    let (pre, suf, mid) = fim.required().map_err(FimError::Unsupported)?;
    let encode = |text: &str| tokenizer.encode(text).map_err(FimError::Tokenizer);
    let repo_level = fim.repo.zip(fim.file_sep).filter(|_| !input.extra.is_empty() || input.filename.is_some());
    // the file being edited, named as its chunk opens (repository-level prompts)
    let mut current_file = Vec::new();
    if let Some((_, sep)) = repo_level {
        current_file.push(sep);
        current_file.extend(encode(&format!("{}\n", input.filename.unwrap_or("file")))?);
    }
    let bos: Vec<u32> = tokenizer.bos_token().filter(|_| tokenizer.adds_bos()).into_iter().collect();
    let fixed = bos.len() + current_file.len() + 3;
    let room = budget.checked_sub(fixed).ok_or(FimError::NoRoom { budget, needed: fixed })?;
    let (mut prefix, mut suffix) = (encode(input.prefix)?, encode(input.suffix)?);
    let mut trimmed = Trimmed::default();
    if prefix.len() + suffix.len() > room {
        let suffix_room = suffix.len().min((room / 4).max(room.saturating_sub(prefix.len())));
        trimmed.suffix = suffix.len() - suffix_room;
        suffix.truncate(suffix_room);
        let prefix_room = room - suffix_room;
        trimmed.prefix = prefix.len().saturating_sub(prefix_room);
        prefix.drain(..trimmed.prefix);
    }
    let extra_room = room - prefix.len() - suffix.len();
    let context = context_tokens(tokenizer, input, repo_level, extra_room, &mut trimmed)?;
    let mut tokens = bos;
    tokens.extend(context);
    tokens.extend(current_file);
    tokens.push(pre);
    tokens.extend(prefix);
    tokens.push(suf);
    tokens.extend(suffix);
    tokens.push(mid);
    Ok(FimPrompt { tokens, trimmed })
}

/// The repository head and the context files as tokens in at most `room`: the newest files
/// that fit whole, in their order; older ones are left out.
fn context_tokens(
    tokenizer: &Tokenizer,
    input: &FimInput<'_>,
    repo_level: Option<(u32, u32)>,
    room: usize,
    trimmed: &mut Trimmed,
) -> Result<Vec<u32>, FimError> {
    let encode = |text: &str| tokenizer.encode(text).map_err(FimError::Tokenizer);
    let mut head = Vec::new();
    if let Some((repo, _)) = repo_level {
        head.push(repo);
        head.extend(encode(&format!("{}\n", input.repo.unwrap_or("project")))?);
    }
    if head.len() > room {
        trimmed.extra_files = input.extra.len();
        return Ok(Vec::new());
    }
    let mut chunks: Vec<Vec<u32>> = Vec::new();
    let mut left = room - head.len();
    for file in input.extra.iter().rev() {
        let chunk = match repo_level {
            Some((_, sep)) => std::iter::once(sep).chain(encode(&format!("{}\n{}\n", file.filename, file.text))?).collect(),
            None => encode(&format!("// {}\n{}\n\n", file.filename, file.text))?,
        };
        if chunk.len() > left {
            break;
        }
        left -= chunk.len();
        chunks.push(chunk);
    }
    trimmed.extra_files = input.extra.len() - chunks.len();
    Ok(head.into_iter().chain(chunks.into_iter().rev().flatten()).collect())
}

#[derive(Debug, thiserror::Error)]
pub enum FimError {
    #[error("{0}")]
    Unsupported(String),
    #[error("the context leaves {budget} tokens for the prompt, fewer than the {needed} its FIM markers need")]
    NoRoom { budget: usize, needed: usize },
    #[error(transparent)]
    Tokenizer(TokenizerError),
}
