//! Options and helpers shared by subcommands: model location, threads, sampling flags.

use std::path::PathBuf;
use std::time::Duration;

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
    /// The model file: `--model`, or the default model in the model folder.
    pub fn path(&self) -> anyhow::Result<PathBuf> {
        match &self.model {
            Some(p) => Ok(p.clone()),
            None => default_model_path(),
        }
    }

    /// Sets the thread policy and loads the model, tokenizer and chat template.
    pub fn load(&self) -> anyhow::Result<ModelBundle> {
        init_kernels()?;
        let threads = hearth_kernels::threads::init(self.threads);
        let path = self.path()?;
        tracing::info!(path = %path.display(), threads, "loading model");
        ModelBundle::load(&path).with_context(|| format!("cannot load model {}", path.display()))
    }
}

/// Chooses the kernel path (`HEARTH_KERNELS`, or the best one this CPU has) and logs it; an
/// unknown or unsupported `HEARTH_KERNELS` is an error.
pub fn init_kernels() -> anyhow::Result<hearth_kernels::Isa> {
    let isa = hearth_kernels::isa::init()?;
    let best = hearth_kernels::Isa::best();
    let prefetch = if hearth_kernels::prefetch::init()? { "on" } else { "off" };
    if isa == best {
        tracing::info!(kernels = isa.name(), prefetch, "kernels: {isa}");
    } else {
        tracing::info!(kernels = isa.name(), prefetch, "kernels: {isa}, forced by {} (this CPU could run {best})", hearth_kernels::isa::ENV);
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

/// The default model file in the model folder, fetched on first use.
pub fn default_model_path() -> anyhow::Result<PathBuf> {
    crate::default_model::ensure(&models_dir()?)
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
    /// Refuse a max_tokens larger than what the context has left after the prompt with a 400
    /// (vLLM's behaviour); by default such a request generates until the context is full and
    /// ends with finish reason `length` (llama.cpp's and Ollama's)
    #[arg(long)]
    pub strict_max_tokens: bool,
    /// Target duration of one engine step in seconds: where long prefills would take longer,
    /// the step's token budget shrinks so that aborts and new requests are seen in time
    #[arg(long, default_value_t = hearth_engine::config::DEFAULT_MAX_STEP_SECONDS)]
    pub max_step_seconds: f64,
    /// Speculative decoding: `ngram` drafts tokens from each request's own prompt and output
    /// and verifies them in the batched step where that pays on this machine (outputs
    /// unchanged; faster where text repeats, as in code edits)
    #[arg(long, value_enum, default_value_t = Speculative::Ngram)]
    pub speculative: Speculative,
    /// Most drafted tokens per request and step (fewer where they do not pay on this machine)
    #[arg(long, default_value_t = hearth_engine::SpecConfig::default().num_speculative_tokens)]
    pub num_speculative_tokens: usize,
    /// Shortest recurring suffix that yields a draft
    #[arg(long, default_value_t = hearth_engine::SpecConfig::default().ngram_min)]
    pub ngram_min: usize,
    /// Longest suffix looked up for a draft
    #[arg(long, default_value_t = hearth_engine::SpecConfig::default().ngram_max)]
    pub ngram_max: usize,
}

/// Speculative decoding methods.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Speculative {
    Off,
    Ngram,
}

impl EngineArgs {
    /// The flags as `(name, value)` for the dashboard and `/status`.
    pub fn summary(&self) -> Vec<(String, String)> {
        let speculative = match self.speculative {
            Speculative::Off => "off".to_string(),
            Speculative::Ngram => format!("ngram (up to {} tokens, n {}..{})", self.num_speculative_tokens, self.ngram_min, self.ngram_max),
        };
        let kv = self.kv_cache_memory.map(|b| format!("{} MiB", b >> 20)).unwrap_or_else(|| "a quarter of free memory".into());
        [
            ("block-size", self.block_size.to_string()),
            ("kv-cache-memory", kv),
            ("max-num-batched-tokens", self.max_num_batched_tokens.to_string()),
            ("max-num-seqs", self.max_num_seqs.to_string()),
            ("prefix-caching", (!self.no_prefix_caching).to_string()),
            ("strict-max-tokens", self.strict_max_tokens.to_string()),
            ("max-step-seconds", self.max_step_seconds.to_string()),
            ("speculative", speculative),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    pub fn config(&self) -> hearth_engine::EngineConfig {
        hearth_engine::EngineConfig {
            block_size: self.block_size,
            kv_cache_memory: self.kv_cache_memory,
            max_num_batched_tokens: self.max_num_batched_tokens,
            max_num_seqs: self.max_num_seqs,
            max_model_len: self.max_model_len,
            prefix_caching: !self.no_prefix_caching,
            max_step_seconds: self.max_step_seconds,
            max_tokens_policy: match self.strict_max_tokens {
                true => hearth_engine::MaxTokensPolicy::Strict,
                false => hearth_engine::MaxTokensPolicy::UpToContext,
            },
            speculative: (self.speculative == Speculative::Ngram).then_some(hearth_engine::SpecConfig {
                num_speculative_tokens: self.num_speculative_tokens,
                ngram_min: self.ngram_min,
                ngram_max: self.ngram_max,
                always_draft: false,
            }),
            ..Default::default()
        }
    }
}

/// Files a server may keep open: Linux's default ceiling (`fs.nr_open`).
const MAX_OPEN_FILES: u64 = 1 << 20;

/// Raises the soft open-files limit to the hard one, as vLLM does, and logs it: every client
/// connection is a file, and under systemd's default soft limit of 1024 a thousand stalled
/// connections would lock every new client out.
pub fn raise_open_files_limit() -> Option<u64> {
    match rlimit::Resource::NOFILE.get() {
        Ok((soft, hard)) if soft < hard.min(MAX_OPEN_FILES) => match rlimit::increase_nofile_limit(hard.min(MAX_OPEN_FILES)) {
            Ok(now) => {
                tracing::info!("open files limit raised from {soft} to {now}");
                Some(now)
            }
            Err(e) => {
                tracing::warn!("open files limit stays at {soft}: cannot raise it to {hard}: {e}");
                Some(soft)
            }
        },
        Ok((soft, _)) => {
            tracing::info!("open files limit: {soft}");
            Some(soft)
        }
        Err(e) => {
            tracing::warn!("cannot read the open files limit: {e}");
            None
        }
    }
}

/// Files kept free of connections: model files, logs, the key store, upstream sockets.
const FILES_BESIDES_CONNECTIONS: u64 = 256;

/// How `hearth serve` and `hearth gateway` treat client connections.
#[derive(Args, Debug, Clone)]
pub struct ConnectionArgs {
    /// Most client connections served at once; one more is answered 503 and closed
    /// [default: 8192, lowered to fit the open-files limit]
    #[arg(long)]
    pub max_connections: Option<usize>,
    /// Seconds a connection may take to send the head of a request, counted from when the
    /// server starts waiting for one: a new connection, an idle keep-alive one, or a head sent
    /// in part; then it is closed
    #[arg(long, default_value = "30", value_parser = parse_seconds)]
    pub keep_alive_timeout: Duration,
    /// Seconds a request may take to send its whole body; then it gets 408
    #[arg(long, default_value = "60", value_parser = parse_seconds)]
    pub body_read_timeout: Duration,
}

impl ConnectionArgs {
    /// The limits, with the connection cap fitted under `open_files` and logged.
    pub fn limits(&self, open_files: Option<u64>) -> hearth_http::ConnectionLimits {
        let default = hearth_http::ConnectionLimits::default().max_connections;
        let fits = open_files.map_or(usize::MAX, |n| n.saturating_sub(FILES_BESIDES_CONNECTIONS).max(16) as usize);
        let max_connections = match self.max_connections {
            Some(asked) if asked > fits => {
                tracing::warn!("--max-connections {asked} is more than the open-files limit leaves room for ({fits}); connections past that fail to open");
                asked
            }
            Some(asked) => asked.max(1),
            None => default.min(fits),
        };
        tracing::info!("connections: at most {max_connections} open, {:?} to send a request head, {:?} for a body", self.keep_alive_timeout, self.body_read_timeout);
        hearth_http::ConnectionLimits { max_connections, keep_alive_timeout: self.keep_alive_timeout, body_read_timeout: self.body_read_timeout }
    }
}

/// Parses a positive number of seconds (`30`, `0.5`).
pub fn parse_seconds(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text.trim().parse().map_err(|_| format!("`{text}` is not a number of seconds"))?;
    match Duration::try_from_secs_f64(seconds) {
        Ok(d) if !d.is_zero() => Ok(d),
        _ => Err(format!("`{text}`: give a positive number of seconds")),
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
