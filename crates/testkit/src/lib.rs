//! Test helpers: where the real models and the golden data live, and their loaders.

pub mod closing_server;
pub mod raw_http;

use std::path::PathBuf;

use serde::Deserialize;

pub const SMOLLM: &str = "smollm2-135m-instruct-q4_1";
pub const QWEN: &str = "qwen2.5-coder-1.5b-instruct-q4_k_m";

/// The folder `scripts/fetch-models.sh` fills (`$HEARTH_MODELS` or `~/.cache/hearth/models`).
pub fn models_dir() -> PathBuf {
    match std::env::var_os("HEARTH_MODELS") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/hearth/models"),
    }
}

/// Path of a test model by its golden-data name; panics with the fix when it is missing.
pub fn model_path(name: &str) -> PathBuf {
    let file = match name {
        SMOLLM => "SmolLM2-135M-Instruct.Q4_1.gguf",
        QWEN => "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        other => panic!("unknown test model {other}"),
    };
    let path = models_dir().join(file);
    assert!(path.exists(), "{} is missing: run scripts/fetch-models.sh first", path.display());
    path
}

/// The shared golden data folder (`../shared/testdata` from the workspace root, or `$HEARTH_TESTDATA`).
pub fn testdata_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("HEARTH_TESTDATA") {
        return PathBuf::from(dir);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.join("../shared/testdata")
}

fn load<T: for<'de> Deserialize<'de>>(file: &str) -> T {
    let path = testdata_dir().join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[derive(Debug, Deserialize)]
pub struct Cases<T> {
    pub cases: Vec<T>,
}

#[derive(Debug, Deserialize)]
pub struct TokenizationCase {
    pub model: String,
    pub text: String,
    pub ids: Vec<u32>,
}

#[derive(Debug, Deserialize)]
pub struct GreedyCase {
    pub model: String,
    pub kind: String,
    pub prompt_ids: Vec<u32>,
    pub greedy_ids: Vec<u32>,
}

#[derive(Debug, Deserialize)]
pub struct PerplexityCase {
    pub model: String,
    pub n_ctx: usize,
    pub chunks: usize,
    pub ppl: f64,
}

#[derive(Debug, Deserialize)]
pub struct ChatTemplateCase {
    pub model: String,
    pub case: String,
    pub messages: serde_json::Value,
    pub tools: serde_json::Value,
    pub add_generation_prompt: bool,
    pub expected: String,
}

pub fn tokenization_cases() -> Vec<TokenizationCase> {
    load::<Cases<_>>("tokenization.json").cases
}

pub fn greedy_cases() -> Vec<GreedyCase> {
    load::<Cases<_>>("greedy.json").cases
}

pub fn perplexity_cases() -> Vec<PerplexityCase> {
    load::<Cases<_>>("perplexity.json").cases
}

pub fn chat_template_cases() -> Vec<ChatTemplateCase> {
    load("chat-templates.json")
}

pub fn eval_text() -> String {
    let path = testdata_dir().join("eval-text.txt");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub mod gguf_writer;
pub mod greedy;
pub mod perplexity;
pub mod tiny_models;
mod scratch;

pub use scratch::ScratchDir;

/// Resident set size of this process in bytes (Linux `/proc/self/status`).
pub fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS line");
    let kib: u64 = line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("VmRSS value");
    kib * 1024
}
