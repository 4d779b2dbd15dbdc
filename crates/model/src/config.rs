//! Model hyper-parameters, read from GGUF metadata.

use crate::error::ModelError;
use crate::gguf::GgufFile;
use crate::{llama, qwen2, qwen3};
use hearth_kernels::ops::{RopeScaling, RopeStyle};

/// What differs between the decoder architectures we run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ArchSpec {
    pub name: &'static str,
    pub rope_style: RopeStyle,
    /// Whether q/k/v projections carry biases.
    pub qkv_bias: bool,
    /// Whether a mixture of experts renormalises its chosen experts' weights to sum to 1.
    pub moe_normalize: bool,
}

/// A mixture-of-experts feed-forward: `used` of `experts` SwiGLU experts per token.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MoeShape {
    pub experts: usize,
    pub used: usize,
    /// Hidden size of one expert.
    pub expert_ffn: usize,
    pub normalize: bool,
}

/// The architectures hearth runs, by their GGUF name.
const ARCHITECTURES: [ArchSpec; 4] = [llama::SPEC, qwen2::SPEC, qwen3::SPEC, qwen3::MOE_SPEC];

/// Their names, for error messages ("llama, qwen2, ...").
pub fn supported_architectures() -> String {
    ARCHITECTURES.iter().map(|spec| spec.name).collect::<Vec<_>>().join(", ")
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
    /// The feed-forward is a mixture of experts (`{arch}.expert_count` in the file).
    pub moe: Option<MoeShape>,
}

impl ModelConfig {
    pub fn from_gguf(file: &GgufFile) -> Result<Self, ModelError> {
        let arch_name = file.require_str("general.architecture")?;
        let arch = *ARCHITECTURES
            .iter()
            .find(|spec| spec.name == arch_name)
            .ok_or_else(|| ModelError::UnsupportedArchitecture { path: file.path().into(), arch: arch_name.to_string() })?;
        let key = |k: &str| format!("{arch_name}.{k}");
        let int = |k: &str| file.require_u64(&key(k)).map(|v| v as usize);
        let hidden = int("embedding_length")?;
        let n_heads = int("attention.head_count")?;
        let n_kv_heads = match file.meta(&key("attention.head_count_kv")) {
            Some(_) => int("attention.head_count_kv")?,
            None => n_heads,
        };
        let bad = |message: String| ModelError::Config { path: file.path().into(), message };
        // the head dimension: `attention.key_length` where given (Qwen3's 128 need not be
        // hidden / heads), else the rotary dimension, else hidden / heads
        let head_dim = match (file.meta(&key("attention.key_length")), file.meta(&key("rope.dimension_count"))) {
            (Some(_), _) => int("attention.key_length")?,
            (None, Some(_)) => int("rope.dimension_count")?,
            (None, None) if n_heads > 0 && hidden % n_heads == 0 => hidden / n_heads,
            (None, None) => return Err(bad(format!("inconsistent heads: hidden {hidden} is not a multiple of {n_heads} heads"))),
        };
        if n_heads == 0 || n_kv_heads == 0 || n_heads % n_kv_heads != 0 {
            return Err(bad(format!("inconsistent heads: hidden {hidden}, heads {n_heads}, kv heads {n_kv_heads}")));
        }
        if file.meta(&key("attention.value_length")).is_some() {
            let value_length = int("attention.value_length")?;
            if value_length != head_dim {
                return Err(bad(format!("value heads of {value_length} dimensions beside key heads of {head_dim} are not supported")));
            }
        }
        if file.meta(&key("rope.dimension_count")).is_some() {
            let rotary = int("rope.dimension_count")?;
            if rotary != head_dim {
                return Err(bad(format!("partial rotary embeddings ({rotary} of {head_dim} dimensions) are not supported")));
            }
        }
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
            moe: gguf_moe(file, &key, arch)?,
        })
    }

    /// A model rope's frequencies (with their scaling).
    pub fn rope(&self) -> hearth_kernels::ops::Rope {
        hearth_kernels::ops::Rope::with_scaling(self.head_dim, self.rope_base, self.arch.rope_style, self.rope_scaling)
    }

    /// (all, active per token) weight parameters: the matrices of every layer, the embedding
    /// and the output projection (counted once when tied); a mixture of experts counts all its
    /// experts in the first and only the `used` ones in the second.
    pub fn parameter_counts(&self, tied_output: bool) -> (u64, u64) {
        let (h, q, kv) = (self.hidden as u64, (self.n_heads * self.head_dim) as u64, self.kv_width() as u64);
        let attention = h * (q + 2 * kv) + q * h;
        let (ffn_all, ffn_active) = match self.moe {
            None => (3 * h * self.ffn_hidden as u64, 3 * h * self.ffn_hidden as u64),
            Some(m) => {
                let expert = 3 * h * m.expert_ffn as u64;
                (m.experts as u64 * (expert + h), m.used as u64 * expert + m.experts as u64 * h)
            }
        };
        let embeddings = self.vocab_size as u64 * h * if tied_output { 1 } else { 2 };
        let layers = self.n_layers as u64;
        (embeddings + layers * (attention + ffn_all), embeddings + layers * (attention + ffn_active))
    }

    pub fn kv_width(&self) -> usize {
        self.n_kv_heads * self.head_dim
    }

    /// Bytes of KV cache per token (f16 keys and values in every layer).
    pub fn kv_bytes_per_token(&self) -> usize {
        2 * self.n_layers * self.kv_width() * 2
    }
}

/// `expert_count`, `expert_used_count` and `expert_feed_forward_length`: a mixture of experts.
fn gguf_moe(file: &GgufFile, key: &dyn Fn(&str) -> String, arch: ArchSpec) -> Result<Option<MoeShape>, ModelError> {
    if file.meta(&key("expert_count")).is_none() {
        return Ok(None);
    }
    let int = |k: &str| file.require_u64(&key(k)).map(|v| v as usize);
    let shape = MoeShape { experts: int("expert_count")?, used: int("expert_used_count")?, expert_ffn: int("expert_feed_forward_length")?, normalize: arch.moe_normalize };
    if shape.used == 0 || shape.used > shape.experts || shape.expert_ffn == 0 {
        let message = format!("{} of {} experts per token, of width {}: not a mixture of experts", shape.used, shape.experts, shape.expert_ffn);
        return Err(ModelError::Config { path: file.path().into(), message });
    }
    Ok(Some(shape))
}

/// llama.cpp's `rope.scaling.*` keys: `linear` and `yarn` (Llama 3.1 GGUFs carry their scaling
/// as a `rope_freqs` tensor instead, which the transformer applies).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qwen3_30b_a3b_has_about_3b_active_parameters() {
        let config = ModelConfig {
            arch: qwen3::MOE_SPEC,
            vocab_size: 151_936,
            hidden: 2048,
            n_layers: 48,
            n_heads: 32,
            n_kv_heads: 4,
            head_dim: 128,
            ffn_hidden: 6144,
            rms_eps: 1e-6,
            rope_base: 1e6,
            rope_scaling: RopeScaling::None,
            context_length: 262_144,
            moe: Some(MoeShape { experts: 128, used: 8, expert_ffn: 768, normalize: true }),
        };
        let (all, active) = config.parameter_counts(false);
        assert!((30.3e9..30.7e9).contains(&(all as f64)), "{all}");
        assert!((3.2e9..3.5e9).contains(&(active as f64)), "{active}");
    }
}
