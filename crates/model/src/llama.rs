//! The llama architecture (SmolLM2 and friends): RMSNorm, SwiGLU, rotary embeddings, GQA.
//!
//! GGUF converters permute llama's q/k weights so rotary pairs are adjacent dimensions.

use crate::config::ArchSpec;
use hearth_kernels::ops::RopeStyle;

pub const SPEC: ArchSpec = ArchSpec { name: "llama", rope_style: RopeStyle::Interleaved, qkv_bias: false, moe_normalize: false };
