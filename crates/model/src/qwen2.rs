//! The qwen2 architecture (Qwen2.5, Qwen2.5-Coder): llama's layout plus q/k/v biases and
//! NeoX-style rotary embeddings (GGUF keeps HF's weight order for qwen2).

use crate::config::ArchSpec;
use hearth_kernels::ops::RopeStyle;

pub const SPEC: ArchSpec = ArchSpec { name: "qwen2", rope_style: RopeStyle::Neox, qkv_bias: true, moe_normalize: false };
