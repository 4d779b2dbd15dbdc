//! The one dispatch point: a table of kernels per instruction set, one of which the process
//! uses (`isa::active`). Hand-written SIMD microkernels exist for the quantized matmul; every
//! other kernel (attention, small ops, activation quantization, float matmul rows) is one
//! portable body compiled once per instruction set by the wrappers below, so all paths give
//! the same bits: Rust never reorders or contracts float operations, whatever the target
//! features, and the bodies fix their summation order (lane-wise partial sums) themselves.

use std::ops::Range;

use crate::attention::{self, KvRows};
use crate::isa::Isa;
use crate::blocks::QuantActs;
use crate::{ops, qmatmul, QMatrix, QuantType};

/// `out[t * 16 + lane] = dot(row 16g + lane, activation row t)` over one group's records.
pub(crate) type GroupMatmul = unsafe fn(QuantType, &[u8], &QuantActs, usize, &mut [f32]);

/// The kernels of one instruction set. Calling any entry is safe once the CPU supports
/// `isa` (`table` hands out tables for supported paths only).
pub(crate) struct Kernels {
    /// The path these kernels belong to (named in test failures).
    #[cfg_attr(not(test), allow(dead_code))]
    pub isa: Isa,
    pub group_matmul: GroupMatmul,
    /// f16 values (a KV-cache row) as f32, exactly.
    pub f16_row: F16Row,
    pub portable: PortableKernels,
}

/// Converts `src` into `dst` (same length).
pub(crate) type F16Row = unsafe fn(&[half::f16], &mut [f32]);

/// The portable bodies, compiled for one instruction set.
pub(crate) struct PortableKernels {
    pub dot: unsafe fn(&[f32], &[f32]) -> f32,
    pub rms_norm_rows: unsafe fn(&mut [f32], &[f32], f32),
    pub silu_mul: unsafe fn(&mut [f32], &[f32]),
    pub softmax: unsafe fn(&mut [f32]),
    pub add_in_place: unsafe fn(&mut [f32], &[f32]),
    pub rotate_pairs: unsafe fn(&mut [f32], &[(f32, f32)], ops::RopeStyle),
    pub quantize_row: unsafe fn(&[f32], &mut crate::blocks::ActsRow<'_>, usize, usize),
    pub attention_job: unsafe fn(&attention::Job<'_>, &dyn KvRows, &mut attention::Scratch),
    pub float_rows: unsafe fn(&QMatrix<'_>, &[f32], usize, Range<usize>, &mut qmatmul::FloatScratch),
}

/// Wrappers of every portable body carrying the given target-feature attributes.
/// `float_tile` is the float path's register tile (`qmatmul::float_rows`): its weight rows,
/// its tokens, and the function computing it, as large as the instruction set's registers hold.
macro_rules! portable_kernels {
    (float_tile = ($rows:literal, $tokens:literal, $tile:expr) $(, #[$feature:meta])*) => {{
        $(#[$feature])*
        unsafe fn dot(a: &[f32], b: &[f32]) -> f32 {
            ops::portable::dot(a, b)
        }
        $(#[$feature])*
        unsafe fn rms_norm_rows(x: &mut [f32], weight: &[f32], eps: f32) {
            ops::portable::rms_norm_rows(x, weight, eps)
        }
        $(#[$feature])*
        unsafe fn silu_mul(gate: &mut [f32], up: &[f32]) {
            ops::portable::silu_mul(gate, up)
        }
        $(#[$feature])*
        unsafe fn softmax(x: &mut [f32]) {
            ops::portable::softmax(x)
        }
        $(#[$feature])*
        unsafe fn add_in_place(a: &mut [f32], b: &[f32]) {
            ops::portable::add_in_place(a, b)
        }
        $(#[$feature])*
        unsafe fn rotate_pairs(head: &mut [f32], cos_sin: &[(f32, f32)], style: ops::RopeStyle) {
            ops::portable::rotate_pairs(head, cos_sin, style)
        }
        $(#[$feature])*
        unsafe fn quantize_row(x: &[f32], row: &mut crate::blocks::ActsRow<'_>, block: usize, group: usize) {
            crate::blocks::quantize_row(x, row, block, group)
        }
        $(#[$feature])*
        unsafe fn attention_job(job: &attention::Job<'_>, kv: &dyn KvRows, scratch: &mut attention::Scratch) {
            // SAFETY: the job's contract (disjoint output slices) is the caller's.
            unsafe { attention::run_job(job, kv, scratch) }
        }
        $(#[$feature])*
        unsafe fn float_rows(w: &QMatrix<'_>, x: &[f32], m: usize, rows: Range<usize>, scratch: &mut qmatmul::FloatScratch) {
            qmatmul::float_rows::<$rows, $tokens>(w, x, m, rows, scratch, $tile)
        }
        PortableKernels { dot, rms_norm_rows, silu_mul, softmax, add_in_place, rotate_pairs, quantize_row, attention_job, float_rows }
    }};
}

static SCALAR: Kernels = Kernels {
    isa: Isa::Scalar,
    group_matmul: crate::interleaved::group_matmul_scalar,
    f16_row: ops::f16_row_portable,
    portable: portable_kernels!(float_tile = (2, 2, ops::portable::dot_block::<2, 2>)),
};

#[cfg(target_arch = "x86_64")]
static AVX2: Kernels = Kernels {
    isa: Isa::Avx2,
    group_matmul: crate::interleaved_avx2::plain::group_matmul,
    f16_row: ops::f16_row_f16c,
    portable: portable_kernels!(
        // SAFETY: this table runs only where AVX2 (and so AVX) is present.
        float_tile = (2, 2, |a, x| unsafe { crate::float_tile_x86::dot_2x2(a, x) }),
        #[target_feature(enable = "avx2,fma,f16c")]
    ),
};

#[cfg(target_arch = "x86_64")]
static AVX2_VNNI: Kernels = Kernels {
    isa: Isa::Avx2Vnni,
    group_matmul: crate::interleaved_avx2::vnni::group_matmul,
    f16_row: ops::f16_row_f16c,
    portable: portable_kernels!(
        // SAFETY: this table runs only where AVX2 (and so AVX) is present.
        float_tile = (2, 2, |a, x| unsafe { crate::float_tile_x86::dot_2x2(a, x) }),
        #[target_feature(enable = "avx2,fma,f16c")]
    ),
};

#[cfg(target_arch = "x86_64")]
static AVX512: Kernels = Kernels {
    isa: Isa::Avx512,
    group_matmul: crate::interleaved_avx512::group_matmul,
    f16_row: ops::f16_row_f16c,
    portable: portable_kernels!(
        // SAFETY: this table runs only where AVX-512F is present.
        float_tile = (4, 4, |a, x| unsafe { crate::float_tile_x86::dot_4x4(a, x) }),
        #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
    ),
};

/// The table of `isa`, or None when this CPU cannot run it.
pub(crate) fn table(isa: Isa) -> Option<&'static Kernels> {
    if !isa.supported() {
        return None;
    }
    #[cfg(target_arch = "x86_64")]
    let table = match isa {
        Isa::Scalar => &SCALAR,
        Isa::Avx2 => &AVX2,
        Isa::Avx2Vnni => &AVX2_VNNI,
        Isa::Avx512 => &AVX512,
    };
    #[cfg(not(target_arch = "x86_64"))]
    let table = &SCALAR;
    Some(table)
}

/// The table the process uses.
pub(crate) fn kernels() -> &'static Kernels {
    static ACTIVE: std::sync::OnceLock<&'static Kernels> = std::sync::OnceLock::new();
    ACTIVE.get_or_init(|| table(crate::isa::active()).expect("the active path is supported by construction"))
}

/// The tables of every path this CPU runs, the scalar reference first (for the tests that
/// compare each path with it).
#[cfg(test)]
pub(crate) fn runnable_tables() -> Vec<&'static Kernels> {
    crate::isa::Isa::runnable().into_iter().filter_map(table).collect()
}
