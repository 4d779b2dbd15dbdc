//! The qwen3 and qwen3moe architectures (Qwen3 dense; Qwen3-30B-A3B, Qwen3-Coder-30B-A3B): qwen2's layout without q/k/v biases, with a per-head
//! RMSNorm of q and k before the rotary embedding (`attn_q_norm`/`attn_k_norm`, found by the
//! loader) and a head dimension read from `attention.key_length`.

use crate::config::ArchSpec;
use hearth_kernels::ops::RopeStyle;

pub const SPEC: ArchSpec = ArchSpec { name: "qwen3", rope_style: RopeStyle::Neox, qkv_bias: false, moe_normalize: false };

/// qwen3's attention with a mixture of experts in every layer (`ffn_gate_inp`, `ffn_*_exps`),
/// the chosen experts' weights renormalised to sum to 1.
pub const MOE_SPEC: ArchSpec = ArchSpec { name: "qwen3moe", rope_style: RopeStyle::Neox, qkv_bias: false, moe_normalize: true };
