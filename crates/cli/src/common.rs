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
        init_kernels()?;
        let threads = hearth_kernels::threads::init(self.threads);
        let path = match &self.model {
            Some(p) => p.clone(),
            None => default_model_path()?,
        };
        tracing::info!(path = %path.display(), threads, "loading model");
        ModelBundle::load(&path).with_context(|| format!("cannot load model {}", path.display()))
    }
}

/// Chooses the kernel path (`HEARTH_KERNELS`, or the best one this CPU has) and logs it; an
/// unknown or unsupported `HEARTH_KERNELS` is an error.
pub fn init_kernels() -> anyhow::Result<hearth_kernels::Isa> {
    let isa = hearth_kernels::isa::init()?;
    let best = hearth_kernels::Isa::best();
    if isa == best {
        tracing::info!(kernels = isa.name(), "kernels: {isa}");
    } else {
        tracing::info!(kernels = isa.name(), "kernels: {isa}, forced by {} (this CPU could run {best})", hearth_kernels::isa::ENV);
    }
    Ok(isa)
}

/// The model folder: `$HEARTH_MODELS` or `~/.cache/hearth/models`.
pub fn models_dir() -> anyhow::Result<PathBuf> {
    Ok(match std::env::var_os("HEARTH_MODELS") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(std::env::var_os("HOME").context("HOME is not set")?).join(".cache/hearth/models"),
    })
}

/// The default model file in the model folder.
pub fn default_model_path() -> anyhow::Result<PathBuf> {
    let path = models_dir()?.join(DEFAULT_MODEL_FILE);
    anyhow::ensure!(path.exists(), "default model {} not found: run scripts/fetch-models.sh", path.display());
    Ok(path)
}

/// The async runtime of the network subcommands: a few workers, since computation runs on
/// the compute pool and HTTP needs little.
pub fn runtime(workers: usize) -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().worker_threads(workers).enable_all().build()
}

/// Engine flags (vLLM's names).
#[derive(Args, Debug, Clone)]
pub struct EngineArgs {
    /// Tokens per KV cache block
    #[arg(long, default_value_t = 16)]
    pub block_size: usize,
    /// Bytes for the KV cache, e.g. 4GiB or 512MiB [default: a quarter of the free memory]
    #[arg(long, value_parser = parse_bytes)]
    pub kv_cache_memory: Option<u64>,
    /// Token budget of one engine step (decode tokens plus prefill chunks)
    #[arg(long, default_value_t = 2048)]
    pub max_num_batched_tokens: usize,
    /// Most requests decoded together; on CPUs throughput stops growing at a few dozen
    /// sequences while each one's latency keeps growing, hence 32
    #[arg(long, default_value_t = hearth_engine::config::DEFAULT_MAX_NUM_SEQS)]
    pub max_num_seqs: usize,
    /// Longest prompt plus completion [default: the model's context length, capped by the KV cache]
    #[arg(long)]
    pub max_model_len: Option<usize>,
    /// Turn off reuse of cached prompt prefixes
    #[arg(long)]
    pub no_prefix_caching: bool,
}

impl EngineArgs {
    pub fn config(&self) -> hearth_engine::EngineConfig {
        hearth_engine::EngineConfig {
            block_size: self.block_size,
            kv_cache_memory: self.kv_cache_memory,
            max_num_batched_tokens: self.max_num_batched_tokens,
            max_num_seqs: self.max_num_seqs,
            max_model_len: self.max_model_len,
            prefix_caching: !self.no_prefix_caching,
            ..Default::default()
        }
    }
}

/// Parses sizes like `4GiB`, `512MiB`, `2G`, `1000000`.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number.parse().map_err(|_| format!("`{text}` is not a size like 4GiB"))?;
    let scale = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1u64,
        "k" | "kb" => 1_000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        other => return Err(format!("unknown size unit `{other}` in `{text}` (use B, KiB, MiB, GiB)")),
    };
    Ok((value * scale as f64) as u64)
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

#[cfg(test)]
mod tests {
    use super::parse_bytes;

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_bytes("4GiB"), Ok(4 << 30));
        assert_eq!(parse_bytes("512MiB"), Ok(512 << 20));
        assert_eq!(parse_bytes("1.5G"), Ok(1_500_000_000));
        assert_eq!(parse_bytes("1000"), Ok(1000));
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("4 parsecs").is_err());
    }
}
