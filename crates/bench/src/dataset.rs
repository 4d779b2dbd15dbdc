//! Benchmark prompts: deterministic random token ids from a seed (every server sees exactly the
//! same input lengths and no two prompts share a cached prefix), or a JSONL file of prompts.

use std::path::Path;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Deserialize;

/// What is sent as `prompt`: token ids or text.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum PromptBody {
    Tokens(Vec<u32>),
    Text(String),
}

/// One benchmark request: its prompt and how many tokens to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchPrompt {
    pub prompt: PromptBody,
    pub output_len: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}:{line}: {message}")]
    Line { path: String, line: usize, message: String },
    #[error("{path} holds no prompts")]
    Empty { path: String },
}

/// Token ids are drawn from this range: ordinary text tokens in the vocabularies of the
/// models we serve (no special or control tokens, which sit at the ends).
pub const TOKEN_RANGE: std::ops::Range<u32> = 1000..30000;

/// `count` prompts of `input_len` random tokens each.
pub fn random_token_prompts(count: usize, input_len: usize, output_len: usize, seed: u64) -> Vec<BenchPrompt> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..count)
        .map(|_| BenchPrompt {
            prompt: PromptBody::Tokens((0..input_len).map(|_| rng.random_range(TOKEN_RANGE)).collect()),
            output_len,
        })
        .collect()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    prompt: PromptBody,
    #[serde(default, alias = "max_tokens")]
    output_len: Option<usize>,
}

/// Prompts from a JSONL file: one `{"prompt": "text" | [ids], "output_len": N}` per line
/// (`output_len` or `max_tokens` optional, default `default_output_len`). Cycled to `count`.
pub fn load_jsonl(path: &Path, count: usize, default_output_len: usize) -> Result<Vec<BenchPrompt>, DatasetError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| DatasetError::Read { path: shown.clone(), source })?;
    let mut prompts = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let parsed: Line = serde_json::from_str(line)
            .map_err(|e| DatasetError::Line { path: shown.clone(), line: i + 1, message: e.to_string() })?;
        prompts.push(BenchPrompt { prompt: parsed.prompt, output_len: parsed.output_len.unwrap_or(default_output_len) });
    }
    if prompts.is_empty() {
        return Err(DatasetError::Empty { path: shown });
    }
    Ok(prompts.iter().cycle().take(count).cloned().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts_are_deterministic_and_distinct() {
        let a = random_token_prompts(4, 32, 8, 7);
        assert_eq!(a, random_token_prompts(4, 32, 8, 7));
        assert_ne!(a, random_token_prompts(4, 32, 8, 8));
        let tokens = |p: &BenchPrompt| match &p.prompt {
            PromptBody::Tokens(t) => t.clone(),
            PromptBody::Text(_) => unreachable!(),
        };
        assert!(a.iter().all(|p| tokens(p).len() == 32 && p.output_len == 8));
        assert_ne!(tokens(&a[0])[..4], tokens(&a[1])[..4]);
    }

    #[test]
    fn jsonl_files_load_with_line_numbered_errors() {
        let dir = std::env::temp_dir().join(format!("hearth-dataset-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.jsonl");
        std::fs::write(&good, "{\"prompt\": \"Hello\", \"output_len\": 5}\n\n{\"prompt\": [1, 2, 3]}\n").unwrap();
        let prompts = load_jsonl(&good, 3, 9).unwrap();
        assert_eq!(prompts.len(), 3);
        assert_eq!(prompts[0], BenchPrompt { prompt: PromptBody::Text("Hello".into()), output_len: 5 });
        assert_eq!(prompts[1], BenchPrompt { prompt: PromptBody::Tokens(vec![1, 2, 3]), output_len: 9 });
        assert_eq!(prompts[2], prompts[0], "cycled");
        let bad = dir.join("bad.jsonl");
        std::fs::write(&bad, "{\"prompt\": \"ok\"}\n{\"promt\": \"typo\"}\n").unwrap();
        let error = load_jsonl(&bad, 2, 9).unwrap_err().to_string();
        assert!(error.contains("bad.jsonl:2:") && error.contains("promt"), "{error}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
