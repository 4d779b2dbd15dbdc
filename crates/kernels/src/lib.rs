//! Compute kernels: quantized matmul over weights interleaved at load, attention, small ops,
//! each a portable reference plus per-ISA microkernels behind one dispatch table (`dispatch`,
//! chosen once per process: `isa`).

pub mod attention;
pub mod bandwidth;
pub mod blocks;
mod dispatch;
#[cfg(target_arch = "x86_64")]
mod float_tile_x86;
pub mod interleaved;
#[cfg(target_arch = "x86_64")]
mod interleaved_avx2;
#[cfg(target_arch = "x86_64")]
mod interleaved_avx512;
pub mod isa;
pub mod ops;
pub mod prefetch;
pub mod q4_1;
pub mod q8;
pub mod qmatmul;
mod quant;
pub mod threads;

pub use isa::Isa;
pub use qmatmul::{matmul_inputs, matmul_many, LayoutError, QMatrix};
pub use quant::QuantType;
