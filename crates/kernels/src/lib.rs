//! Compute kernels candle-core lacks: quantized matmul over interleaved or in-place weights, attention, small ops.

pub mod attention;
pub mod cpu;
pub mod interleaved;
#[cfg(target_arch = "x86_64")]
mod interleaved_avx512;
pub mod ops;
pub mod q4_1;
pub mod q8;
pub mod qmatmul;
pub mod rowdot;
mod quant;
pub mod threads;
pub mod tile;
#[cfg(target_arch = "x86_64")]
mod tile_avx512;

pub use qmatmul::{matmul_many, LayoutError, QMatrix};
pub use quant::QuantType;
