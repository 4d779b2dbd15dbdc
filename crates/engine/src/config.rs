//! Engine settings and the KV cache sizing done at startup.

use hearth_model::ModelConfig;

use crate::generate::MaxTokensPolicy;
use crate::kv::PagedKv;
use crate::spec::SpecConfig;

/// Settings of the batching engine (vLLM's names).
#[derive(Debug, Clone, PartialEq)]
pub struct EngineConfig {
    /// Tokens per KV block.
    pub block_size: usize,
    /// Bytes for the KV cache; None: `kv_cache_fraction` of the memory available at startup.
    pub kv_cache_memory: Option<u64>,
    pub kv_cache_fraction: f64,
    pub max_num_batched_tokens: usize,
    pub max_num_seqs: usize,
    /// None: the model's context length, capped by what the KV cache holds.
    pub max_model_len: Option<usize>,
    pub prefix_caching: bool,
    /// N-gram speculative decoding; None: off.
    pub speculative: Option<SpecConfig>,
    /// Target wall time of one step: the token budget shrinks below `max_num_batched_tokens`
    /// where this machine needs longer for it, so that aborts and arrivals are seen in time.
    pub max_step_seconds: f64,
    /// What a `max_tokens` beyond what the context has left does (default: generate until
    /// the context is full; `Strict`: vLLM's 400).
    pub max_tokens_policy: MaxTokensPolicy,
}

/// The default concurrency limit on CPUs: with 2-16 cores decode throughput stops growing
/// at a few dozen sequences (the batch becomes compute-bound) while each one's latency keeps
/// growing, so admitting more only queues work inside the batch instead of in line.
pub const DEFAULT_MAX_NUM_SEQS: usize = 32;

/// Long enough that a step's fixed cost (one read of the weights) stays a few percent of a
/// prefill chunk, short enough that an abort or a new request waits at most about a second.
pub const DEFAULT_MAX_STEP_SECONDS: f64 = 1.0;

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            block_size: 16,
            kv_cache_memory: None,
            kv_cache_fraction: 0.25,
            max_num_batched_tokens: 2048,
            max_num_seqs: DEFAULT_MAX_NUM_SEQS,
            max_model_len: None,
            prefix_caching: true,
            speculative: None,
            max_step_seconds: DEFAULT_MAX_STEP_SECONDS,
            max_tokens_policy: MaxTokensPolicy::UpToContext,
        }
    }
}

/// What the configuration comes to for one model on this machine.
#[derive(Debug, Clone, PartialEq)]
pub struct KvPlan {
    pub num_blocks: usize,
    pub block_size: usize,
    pub kv_bytes: u64,
    pub max_model_len: usize,
}

impl KvPlan {
    pub fn token_capacity(&self) -> usize {
        self.num_blocks * self.block_size
    }

    /// How many requests of `max_model_len` tokens fit at once (vLLM's "maximum concurrency").
    pub fn max_concurrency(&self) -> f64 {
        self.token_capacity() as f64 / self.max_model_len as f64
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error("{0}")]
    Invalid(String),
}

impl EngineConfig {
    /// Sizes the KV cache and the context limit for `model`.
    pub fn plan(&self, model: &ModelConfig) -> Result<KvPlan, ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if self.block_size == 0 || self.max_num_seqs == 0 || self.max_num_batched_tokens == 0 {
            return bad("block size, max-num-seqs and max-num-batched-tokens must be positive".into());
        }
        if !(self.max_step_seconds.is_finite() && self.max_step_seconds > 0.0) {
            return bad("--max-step-seconds must be a positive number".into());
        }
        if let Some(spec) = &self.speculative {
            spec.validate().map_err(ConfigError::Invalid)?;
        }
        let kv_bytes = match self.kv_cache_memory {
            Some(b) => b,
            None => (available_memory_bytes() as f64 * self.kv_cache_fraction) as u64,
        };
        let per_block = PagedKv::bytes_per_block(model, self.block_size) as u64;
        let num_blocks = (kv_bytes / per_block) as usize;
        if num_blocks == 0 {
            return bad(format!("KV cache memory of {kv_bytes} bytes holds no block of {per_block} bytes; raise --kv-cache-memory"));
        }
        let capacity = num_blocks * self.block_size;
        let max_model_len = match self.max_model_len {
            Some(len) if len > capacity => {
                return bad(format!(
                    "--max-model-len {len} does not fit: the KV cache holds {capacity} tokens; raise --kv-cache-memory or lower --max-model-len"
                ))
            }
            Some(len) if len > model.context_length => {
                return bad(format!("--max-model-len {len} is longer than the model's context length {}", model.context_length))
            }
            Some(len) => len,
            None => model.context_length.min(capacity),
        };
        Ok(KvPlan { num_blocks, block_size: self.block_size, kv_bytes: num_blocks as u64 * per_block, max_model_len })
    }
}

/// `MemAvailable` from /proc/meminfo (Linux); 8 GiB when it cannot be read.
pub fn available_memory_bytes() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map(|kib| kib * 1024)
        .unwrap_or(8 << 30)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> ModelConfig {
        ModelConfig {
            arch: hearth_model::qwen2::SPEC,
            vocab_size: 10,
            hidden: 64,
            n_layers: 2,
            n_heads: 4,
            n_kv_heads: 2,
            head_dim: 16,
            ffn_hidden: 128,
            rms_eps: 1e-6,
            rope_base: 1e4,
            rope_scaling: Default::default(),
            context_length: 4096,
            moe: None,
        }
    }

    #[test]
    fn sizes_blocks_and_caps_context_by_memory() {
        // 2 layers * 2 (k, v) * 32 values * 2 bytes = 256 bytes per token, 4 KiB per block
        let cfg = EngineConfig { kv_cache_memory: Some(64 * 4096), ..Default::default() };
        let plan = cfg.plan(&model()).unwrap();
        assert_eq!(plan.num_blocks, 64);
        assert_eq!(plan.max_model_len, 1024, "capped by the 1024 tokens that fit");
        assert!((plan.max_concurrency() - 1.0).abs() < 1e-9);
        let cfg = EngineConfig { kv_cache_memory: Some(64 * 4096), max_model_len: Some(2048), ..Default::default() };
        assert!(cfg.plan(&model()).unwrap_err().to_string().contains("does not fit"));
        let cfg = EngineConfig { kv_cache_memory: Some(100), ..Default::default() };
        assert!(cfg.plan(&model()).is_err());
    }
}
