//! Model hyper-parameters, read from GGUF metadata.

use crate::error::ModelError;
use crate::gguf::GgufFile;
use crate::{llama, qwen2};
use hearth_kernels::ops::{RopeScaling, RopeStyle};

/// What differs between the decoder architectures we run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ArchSpec {
    pub name: &'static str,
    pub rope_style: RopeStyle,
    /// Whether q/k/v projections carry biases.
    pub qkv_bias: bool,
}

/// Hyper-parameters of a decoder-only transformer.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    pub arch: ArchSpec,
    pub vocab_size: usize,
    pub hidden: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
    pub ffn_hidden: usize,
    pub rms_eps: f32,
    pub rope_base: f32,
    pub rope_scaling: RopeScaling,
    pub context_length: usize,
}

impl ModelConfig {
    pub fn from_gguf(file: &GgufFile) -> Result<Self, ModelError> {
        let arch_name = file.require_str("general.architecture")?;
        let arch = match arch_name {
            "llama" => llama::SPEC,
            "qwen2" => qwen2::SPEC,
            other => {
                return Err(ModelError::UnsupportedArchitecture { path: file.path().into(), arch: other.to_string() })
            }
        };
        let key = |k: &str| format!("{arch_name}.{k}");
        let int = |k: &str| file.require_u64(&key(k)).map(|v| v as usize);
        let hidden = int("embedding_length")?;
        let n_heads = int("attention.head_count")?;
        let n_kv_heads = match file.meta(&key("attention.head_count_kv")) {
            Some(_) => int("attention.head_count_kv")?,
            None => n_heads,
        };
        let bad = |message: String| ModelError::Config { path: file.path().into(), message };
        if n_heads == 0 || n_kv_heads == 0 || hidden % n_heads != 0 || n_heads % n_kv_heads != 0 {
            return Err(bad(format!("inconsistent heads: hidden {hidden}, heads {n_heads}, kv heads {n_kv_heads}")));
        }
        let head_dim = match file.meta(&key("rope.dimension_count")) {
            Some(_) => int("rope.dimension_count")?,
            None => hidden / n_heads,
        };
        if head_dim % 2 != 0 || head_dim == 0 {
            return Err(bad(format!("head dimension {head_dim} must be even")));
        }
        let vocab_size = match file.meta(&key("vocab_size")) {
            Some(_) => int("vocab_size")?,
            None => file.array_len("tokenizer.ggml.tokens")?,
        };
        let rope_base = match file.meta(&key("rope.freq_base")) {
            Some(_) => file.require_f64(&key("rope.freq_base"))? as f32,
            None => 10_000.0,
        };
        let rope_scaling = gguf_rope_scaling(file, &key)?;
        Ok(ModelConfig {
            arch,
            vocab_size,
            hidden,
            n_layers: int("block_count")?,
            n_heads,
            n_kv_heads,
            head_dim,
            ffn_hidden: int("feed_forward_length")?,
            rms_eps: file.require_f64(&key("attention.layer_norm_rms_epsilon"))? as f32,
            rope_base,
            rope_scaling,
            context_length: int("context_length")?,
        })
    }

    /// A model rope's frequencies (with their scaling).
    pub fn rope(&self) -> hearth_kernels::ops::Rope {
        hearth_kernels::ops::Rope::with_scaling(self.head_dim, self.rope_base, self.arch.rope_style, self.rope_scaling)
    }

    pub fn kv_width(&self) -> usize {
        self.n_kv_heads * self.head_dim
    }

    /// Bytes of KV cache per token (f16 keys and values in every layer).
    pub fn kv_bytes_per_token(&self) -> usize {
        2 * self.n_layers * self.kv_width() * 2
    }
}

/// llama.cpp's `rope.scaling.*` keys: `linear` and `yarn` (llama 3.1 GGUFs bake their scaling
/// into a `rope_freqs` tensor instead, which is not read).
fn gguf_rope_scaling(file: &GgufFile, key: &dyn Fn(&str) -> String) -> Result<RopeScaling, ModelError> {
    let kind = match file.meta(&key("rope.scaling.type")) {
        Some(_) => file.require_str(&key("rope.scaling.type"))?.to_string(),
        None => return Ok(RopeScaling::None),
    };
    let float = |k: &str, default: f32| -> Result<f32, ModelError> {
        match file.meta(&key(k)) {
            Some(_) => Ok(file.require_f64(&key(k))? as f32),
            None => Ok(default),
        }
    };
    let factor = float("rope.scaling.factor", 1.0)?;
    let original_context = match file.meta(&key("rope.scaling.original_context_length")) {
        Some(_) => file.require_u64(&key("rope.scaling.original_context_length"))? as f32,
        None => 0.0,
    };
    match kind.as_str() {
        "none" => Ok(RopeScaling::None),
        _ if factor == 1.0 || factor == 0.0 => Ok(RopeScaling::None),
        "linear" => Ok(RopeScaling::Linear { factor }),
        "yarn" => Ok(RopeScaling::Yarn {
            factor,
            original_context,
            beta_fast: float("rope.scaling.yarn_beta_fast", 32.0)?,
            beta_slow: float("rope.scaling.yarn_beta_slow", 1.0)?,
            attention_factor: RopeScaling::yarn_attention_factor(factor),
        }),
        other => Err(ModelError::Config { path: file.path().into(), message: format!("rope scaling `{other}` is not supported (supported: linear, yarn)") }),
    }
}
