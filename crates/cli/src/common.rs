//! Options and helpers shared by subcommands: model location, threads, sampling flags.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use hearth_engine::{ModelBundle, SamplingParams};

/// File name of the default model in the model folder.
pub const DEFAULT_MODEL_FILE: &str = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf";

#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// GGUF model file [default: Qwen2.5-Coder-1.5B-Instruct Q4_K_M from the model folder]
    #[arg(long, short = 'm')]
    pub model: Option<PathBuf>,
    /// Compute threads [default: one per core]
    #[arg(long, short = 't')]
    pub threads: Option<usize>,
}

impl ModelArgs {
    /// Sets the thread policy and loads the model, tokenizer and chat template.
    pub fn load(&self) -> anyhow::Result<ModelBundle> {
        let threads = hearth_kernels::threads::init(self.threads);
        let path = match &self.model {
            Some(p) => p.clone(),
            None => default_model_path()?,
        };
        tracing::info!(path = %path.display(), threads, "loading model");
        ModelBundle::load(&path).with_context(|| format!("cannot load model {}", path.display()))
    }
}

/// `$HEARTH_MODELS` (or `~/.cache/hearth/models`) joined with the default model file.
pub fn default_model_path() -> anyhow::Result<PathBuf> {
    let dir = match std::env::var_os("HEARTH_MODELS") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(std::env::var_os("HOME").context("HOME is not set")?).join(".cache/hearth/models"),
    };
    let path = dir.join(DEFAULT_MODEL_FILE);
    anyhow::ensure!(path.exists(), "default model {} not found: run scripts/fetch-models.sh", path.display());
    Ok(path)
}

#[derive(Args, Debug, Clone)]
pub struct SamplingArgs {
    /// Sampling temperature; 0 is greedy
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f32,
    /// Keep only the k most likely tokens (0: off)
    #[arg(long, default_value_t = 0)]
    pub top_k: usize,
    /// Keep the smallest set of tokens whose probability reaches p
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f32,
    /// Drop tokens less likely than min_p times the most likely one
    #[arg(long, default_value_t = 0.0)]
    pub min_p: f32,
    /// Penalty for tokens already in prompt or output (1: off)
    #[arg(long, default_value_t = 1.0)]
    pub repetition_penalty: f32,
    /// Random seed for reproducible sampling
    #[arg(long)]
    pub seed: Option<u64>,
    /// Most tokens to generate [default: up to the context limit]
    #[arg(long, short = 'n')]
    pub max_tokens: Option<usize>,
}

impl SamplingArgs {
    pub fn params(&self) -> SamplingParams {
        SamplingParams {
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            min_p: self.min_p,
            repetition_penalty: self.repetition_penalty,
            seed: self.seed,
            ..SamplingParams::default()
        }
    }
}
