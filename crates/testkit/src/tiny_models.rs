//! Tiny seeded models of each architecture, written as GGUF, for the architecture test bench:
//! real dimension rules (K-quant rows are multiples of 256), random weights from a fixed seed,
//! a byte-level vocabulary so that hearth's tokenizer and llama.cpp load them too. The same bytes come out
//! on every machine, so logits recorded once from llama.cpp on these files are golden data.

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};

use crate::gguf_writer::{write_gguf, Meta, RawTensor};

/// The shape of a tiny model.
#[derive(Debug, Clone, PartialEq)]
pub struct TinyShape {
    /// GGUF architecture name.
    pub arch: &'static str,
    pub vocab: usize,
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub ffn: usize,
    pub qk_norm: bool,
    pub tied_output: bool,
    /// (experts, used per token, expert hidden size) for a mixture of experts.
    pub moe: Option<(usize, usize, usize)>,
    /// A `rope_freqs` tensor of per-frequency divisors (Llama 3.1's long-context RoPE).
    pub rope_freqs: bool,
}

/// Qwen3's layout at a tiny size: QK-norm, no biases, a head dimension (128) that is not
/// hidden / heads (64), an untied output.
pub fn qwen3_dense() -> TinyShape {
    TinyShape { arch: "qwen3", vocab: 384, hidden: 256, layers: 2, heads: 4, kv_heads: 2, head_dim: 128, ffn: 512, qk_norm: true, tied_output: false, moe: None, rope_freqs: false }
}

/// Qwen3-MoE's layout at a tiny size: qwen3's attention, 8 experts of which 2 per token, tied
/// output.
pub fn qwen3_moe() -> TinyShape {
    TinyShape { arch: "qwen3moe", layers: 2, tied_output: true, moe: Some((8, 2, 256)), ..qwen3_dense() }
}

/// Qwen3-30B-A3B's layer shapes (hidden 2048, 32 query / 4 KV heads of 128, 128 experts of
/// width 768, 8 per token, its 151,936-token vocabulary) with `layers` layers: a synthetic
/// model for speed comparisons, not for goldens.
pub fn qwen3_30b_a3b_shaped(layers: usize) -> TinyShape {
    TinyShape {
        arch: "qwen3moe",
        vocab: 151_936,
        hidden: 2048,
        layers,
        heads: 32,
        kv_heads: 4,
        head_dim: 128,
        ffn: 6144,
        qk_norm: true,
        tied_output: false,
        moe: Some((128, 8, 768)),
        rope_freqs: false,
    }
}

/// Llama 3.1's layout at a tiny size: no QK-norm, head dimension hidden / heads, untied output,
/// and a `rope_freqs` tensor dividing each rotary frequency (by 1 to 8 here; Llama 3.1's own
/// factors run from 1 for the fastest to 8 for the slowest).
pub fn llama_rope_freqs() -> TinyShape {
    TinyShape { arch: "llama", head_dim: 64, qk_norm: false, rope_freqs: true, ..qwen3_dense() }
}

/// The seed every golden was recorded with.
pub const TINY_SEED: u64 = 20261208;

/// The models of the bench, by the name their goldens are filed under.
pub fn bench() -> Vec<(&'static str, TinyShape)> {
    vec![("qwen3-dense", qwen3_dense()), ("qwen3-moe", qwen3_moe()), ("llama-rope-freqs", llama_rope_freqs())]
}

/// How the matrices are stored (vectors stay f32, as converters keep them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TinyType {
    F32,
    Q8_0,
    Q4K,
}

impl TinyType {
    pub fn name(self) -> &'static str {
        match self {
            TinyType::F32 => "f32",
            TinyType::Q8_0 => "q8_0",
            TinyType::Q4K => "q4_k",
        }
    }
}

/// splitmix64: a small generator whose stream is the same everywhere.
struct Seeded(u64);

impl Seeded {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [-1, 1).
    fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }

    fn values(&mut self, n: usize, scale: f32, offset: f32) -> Vec<f32> {
        (0..n).map(|_| offset + scale * self.unit()).collect()
    }
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// A `rows x cols` matrix (GGUF dims `[cols, rows]`) in `ty`.
fn matrix(name: String, rows: usize, cols: usize, values: Vec<f32>, ty: TinyType) -> RawTensor {
    stacked(name, 1, rows, cols, values, ty)
}

/// `count` matrices of `rows x cols` stacked (GGUF dims `[cols, rows, count]`; one dimension
/// fewer for a single matrix) in `ty`.
fn stacked(name: String, count: usize, rows: usize, cols: usize, values: Vec<f32>, ty: TinyType) -> RawTensor {
    let mut dims = vec![cols as u64, rows as u64];
    if count > 1 {
        dims.push(count as u64);
    }
    let (type_id, dtype) = match ty {
        TinyType::F32 => return RawTensor { name, dims, type_id: 0, data: f32_bytes(&values) },
        TinyType::Q8_0 => (8, GgmlDType::Q8_0),
        TinyType::Q4K => (12, GgmlDType::Q4K),
    };
    let tensor = Tensor::from_vec(values, (count * rows, cols), &Device::Cpu).expect("a CPU tensor");
    let quantized = QTensor::quantize(&tensor, dtype).expect("rows are whole blocks");
    let data = quantized.data().expect("quantized bytes").into_owned();
    RawTensor { name, dims, type_id, data }
}

fn vector(name: String, values: Vec<f32>) -> RawTensor {
    RawTensor { name, dims: vec![values.len() as u64], type_id: 0, data: f32_bytes(&values) }
}

/// A byte-level BPE vocabulary as GPT-2 writes it (which hearth's tokenizer and llama.cpp
/// both read): the 256 byte symbols, filler pieces up to `vocab - 1`, then `<|endoftext|>`;
/// no merges.
fn vocabulary(vocab: usize) -> Vec<(&'static str, Meta)> {
    let printable = |b: u32| (33..=126).contains(&b) || (161..=172).contains(&b) || (174..=255).contains(&b);
    let mut shifted = 0;
    let mut tokens: Vec<String> = (0..256u32)
        .map(|b| {
            let code = if printable(b) { b } else { shifted += 1; 255 + shifted };
            char::from_u32(code).expect("a valid char").to_string()
        })
        .collect();
    let fillers = vocab.saturating_sub(tokens.len() + 1);
    tokens.extend((0..fillers).map(|i| format!("t{i}")));
    tokens.push("<|endoftext|>".into());
    let eos = tokens.len() as u32 - 1;
    let types: Vec<i32> = (0..tokens.len() as u32).map(|i| if i == eos { 3 } else { 1 }).collect();
    vec![
        ("tokenizer.ggml.model", Meta::Str("gpt2".into())),
        ("tokenizer.ggml.pre", Meta::Str("qwen2".into())),
        ("tokenizer.ggml.tokens", Meta::StrArray(tokens)),
        ("tokenizer.ggml.token_type", Meta::I32Array(types)),
        ("tokenizer.ggml.merges", Meta::StrArray(Vec::new())),
        ("tokenizer.ggml.eos_token_id", Meta::U32(eos)),
    ]
}

/// The model as GGUF bytes; the same `shape`, `ty` and `seed` give the same bytes.
pub fn tiny_gguf(shape: &TinyShape, ty: TinyType, seed: u64) -> Vec<u8> {
    let s = shape;
    let key = |k: &str| format!("{}.{k}", s.arch);
    let mut keys: Vec<(String, Meta)> = vec![
        (key("context_length"), Meta::U32(512)),
        (key("embedding_length"), Meta::U32(s.hidden as u32)),
        (key("block_count"), Meta::U32(s.layers as u32)),
        (key("feed_forward_length"), Meta::U32(s.ffn as u32)),
        (key("attention.head_count"), Meta::U32(s.heads as u32)),
        (key("attention.head_count_kv"), Meta::U32(s.kv_heads as u32)),
        (key("attention.key_length"), Meta::U32(s.head_dim as u32)),
        (key("attention.value_length"), Meta::U32(s.head_dim as u32)),
        (key("attention.layer_norm_rms_epsilon"), Meta::F32(1e-6)),
        (key("rope.freq_base"), Meta::F32(1_000_000.0)),
    ];
    if let Some((experts, used, ffn)) = s.moe {
        keys.push((key("expert_count"), Meta::U32(experts as u32)));
        keys.push((key("expert_used_count"), Meta::U32(used as u32)));
        keys.push((key("expert_feed_forward_length"), Meta::U32(ffn as u32)));
    }
    let mut metadata: Vec<(&str, Meta)> = vec![("general.architecture", Meta::Str(s.arch.into()))];
    metadata.extend(keys.iter().map(|(k, v)| (k.as_str(), v.clone())));
    metadata.extend(vocabulary(s.vocab));

    let mut rng = Seeded(seed);
    let (h, q, kv) = (s.hidden, s.heads * s.head_dim, s.kv_heads * s.head_dim);
    let mut tensors = vec![matrix("token_embd.weight".into(), s.vocab, h, rng.values(s.vocab * h, 1.0, 0.0), ty)];
    for i in 0..s.layers {
        let p = format!("blk.{i}");
        let mut weight = |name: &str, rows: usize, cols: usize| {
            let scale = 1.7 / (cols as f32).sqrt();
            matrix(format!("{p}.{name}.weight"), rows, cols, rng.values(rows * cols, scale, 0.0), ty)
        };
        let mut layer = vec![weight("attn_q", q, h), weight("attn_k", kv, h), weight("attn_v", kv, h), weight("attn_output", h, q)];
        match s.moe {
            None => layer.extend([weight("ffn_gate", s.ffn, h), weight("ffn_up", s.ffn, h), weight("ffn_down", h, s.ffn)]),
            Some((experts, _, ffn)) => {
                let mut expert_weights = |name: &str, rows: usize, cols: usize| {
                    let values = rng.values(experts * rows * cols, 1.7 / (cols as f32).sqrt(), 0.0);
                    stacked(format!("{p}.{name}.weight"), experts, rows, cols, values, ty)
                };
                layer.extend([expert_weights("ffn_gate_exps", ffn, h), expert_weights("ffn_up_exps", ffn, h), expert_weights("ffn_down_exps", h, ffn)]);
                // the router stays f32 (as converters keep it), with logits spread wide enough
                // that no two experts tie on rounding
                let router = rng.values(experts * h, 8.0 / (h as f32).sqrt(), 0.0);
                layer.push(matrix(format!("{p}.ffn_gate_inp.weight"), experts, h, router, TinyType::F32));
            }
        }
        tensors.extend(layer);
        tensors.push(vector(format!("{p}.attn_norm.weight"), rng.values(h, 0.2, 1.0)));
        tensors.push(vector(format!("{p}.ffn_norm.weight"), rng.values(h, 0.2, 1.0)));
        if s.qk_norm {
            tensors.push(vector(format!("{p}.attn_q_norm.weight"), rng.values(s.head_dim, 0.2, 1.0)));
            tensors.push(vector(format!("{p}.attn_k_norm.weight"), rng.values(s.head_dim, 0.2, 1.0)));
        }
    }
    tensors.push(vector("output_norm.weight".into(), rng.values(h, 0.2, 1.0)));
    if !s.tied_output {
        tensors.push(matrix("output.weight".into(), s.vocab, h, rng.values(s.vocab * h, 1.7 / (h as f32).sqrt(), 0.0), ty));
    }
    if s.rope_freqs {
        tensors.push(vector("rope_freqs.weight".into(), rng.values(s.head_dim / 2, 3.5, 4.5)));
    }
    write_gguf(&metadata, &tensors)
}

/// The token ids the goldens are recorded for: fixed, spread over the vocabulary.
pub fn golden_tokens(vocab: usize) -> Vec<u32> {
    let mut rng = Seeded(7);
    (0..12).map(|_| (rng.next_u64() % vocab as u64) as u32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_writes_the_same_bytes() {
        let shape = qwen3_dense();
        assert_eq!(tiny_gguf(&shape, TinyType::Q4K, 1), tiny_gguf(&shape, TinyType::Q4K, 1));
        assert_ne!(tiny_gguf(&shape, TinyType::F32, 1), tiny_gguf(&shape, TinyType::F32, 2));
        assert!(golden_tokens(shape.vocab).iter().all(|&t| (t as usize) < shape.vocab));
    }
}
