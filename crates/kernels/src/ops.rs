//! Small dense ops on f32 rows: dot, RMS norm, rotary embeddings, SwiGLU, softmax.

use half::f16;

use crate::dispatch::kernels;

/// Dot product (lane-wise partial sums, then their sum).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    // SAFETY: the active table's code runs on this CPU (`dispatch::table`).
    unsafe { (kernels().portable.dot)(a, b) }
}

/// `out += scale * x`.
pub fn axpy(out: &mut [f32], scale: f32, x: &[f32]) {
    portable::axpy(out, scale, x)
}

/// RMS norm of each row of `x` (row length = weight length), in place.
pub fn rms_norm_rows(x: &mut [f32], weight: &[f32], eps: f32) {
    let kernel = kernels().portable.rms_norm_rows;
    let rows_per_chunk = PARALLEL_ELEMENTS.div_ceil(weight.len().max(1)) * weight.len().max(1);
    // SAFETY: as in `dot`.
    in_parallel_chunks(x, rows_per_chunk, |rows| unsafe { kernel(rows, weight, eps) });
}

/// Below this many elements an elementwise op runs on the calling thread; above, in chunks of
/// about this size on the compute pool (a batch's SwiGLU or residual add on one thread left
/// the other idle: ~3% of a 512-token prefill). Every element's arithmetic is the same either
/// way, so the bits do not depend on the split.
const PARALLEL_ELEMENTS: usize = 1 << 15;

/// Runs `op` over `x` in chunks of `chunk` elements (a whole number of rows for row ops), on
/// the pool when there are several.
fn in_parallel_chunks(x: &mut [f32], chunk: usize, op: impl Fn(&mut [f32]) + Sync) {
    use rayon::prelude::*;
    if x.len() <= chunk || chunk == 0 {
        op(x);
    } else {
        x.par_chunks_mut(chunk).for_each(&op);
    }
}

/// Runs `op` over matching chunks of `a` and `b` (same lengths), on the pool when large.
fn in_parallel_pairs(a: &mut [f32], b: &[f32], op: impl Fn(&mut [f32], &[f32]) + Sync) {
    use rayon::prelude::*;
    assert_eq!(a.len(), b.len());
    if a.len() <= PARALLEL_ELEMENTS {
        op(a, b);
    } else {
        a.par_chunks_mut(PARALLEL_ELEMENTS).zip(b.par_chunks(PARALLEL_ELEMENTS)).for_each(|(a, b)| op(a, b));
    }
}

/// How rotary embeddings pair up the dimensions of a head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RopeStyle {
    /// Pairs (2i, 2i+1): GGUF llama (weights permuted by the converter).
    Interleaved,
    /// Pairs (i, i + d/2): GPT-NeoX, Qwen2.
    Neox,
}

/// How rotary frequencies are stretched to serve contexts longer than the model was trained
/// on (Hugging Face's `rope_scaling`, GGUF's `rope.scaling.*`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum RopeScaling {
    #[default]
    None,
    /// Every frequency divided by `factor` (position interpolation).
    Linear { factor: f32 },
    /// Llama 3.1: long wavelengths divided by `factor`, short ones kept, a smooth ramp between.
    Llama3 { factor: f32, low_freq_factor: f32, high_freq_factor: f32, original_context: f32 },
    /// YaRN: a per-frequency blend of interpolation and extrapolation between the `beta_fast`
    /// and `beta_slow` rotation counts, and cos/sin scaled by `attention_factor`.
    Yarn { factor: f32, original_context: f32, beta_fast: f32, beta_slow: f32, attention_factor: f32 },
}

impl RopeScaling {
    /// YaRN's default attention factor for a stretch of `factor`.
    pub fn yarn_attention_factor(factor: f32) -> f32 {
        if factor <= 1.0 {
            1.0
        } else {
            0.1 * factor.ln() + 1.0
        }
    }

    fn apply(&self, inv_freq: &mut [f32], head_dim: usize, base: f32) {
        use std::f32::consts::PI;
        match *self {
            RopeScaling::None => {}
            RopeScaling::Linear { factor } => inv_freq.iter_mut().for_each(|f| *f /= factor),
            RopeScaling::Llama3 { factor, low_freq_factor, high_freq_factor, original_context } => {
                let (low_wavelen, high_wavelen) = (original_context / low_freq_factor, original_context / high_freq_factor);
                for f in inv_freq.iter_mut() {
                    let wavelen = 2.0 * PI / *f;
                    if wavelen > low_wavelen {
                        *f /= factor;
                    } else if wavelen >= high_wavelen {
                        let smooth = (original_context / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor);
                        *f = (1.0 - smooth) * *f / factor + smooth * *f;
                    }
                }
            }
            RopeScaling::Yarn { factor, original_context, beta_fast, beta_slow, .. } => {
                // the dimension at which a frequency turns `rotations` times over the original context
                let dim_for = |rotations: f32| head_dim as f32 * (original_context / (rotations * 2.0 * PI)).ln() / (2.0 * base.ln());
                let low = dim_for(beta_fast).floor().max(0.0);
                let high = dim_for(beta_slow).ceil().min(head_dim as f32 - 1.0);
                let high = if high == low { high + 0.001 } else { high };
                for (i, f) in inv_freq.iter_mut().enumerate() {
                    let ramp = ((i as f32 - low) / (high - low)).clamp(0.0, 1.0);
                    let extrapolation = 1.0 - ramp;
                    *f = *f / factor * (1.0 - extrapolation) + *f * extrapolation;
                }
            }
        }
    }
}

/// Precomputed inverse frequencies for rotary embeddings.
#[derive(Debug, Clone)]
pub struct Rope {
    inv_freq: Vec<f32>,
    style: RopeStyle,
    /// Multiplies cos and sin (YaRN's attention factor; 1 otherwise).
    magnitude: f32,
}

impl Rope {
    pub fn new(head_dim: usize, base: f32, style: RopeStyle) -> Self {
        Self::with_scaling(head_dim, base, style, RopeScaling::None)
    }

    pub fn with_scaling(head_dim: usize, base: f32, style: RopeStyle, scaling: RopeScaling) -> Self {
        let mut inv_freq: Vec<f32> = (0..head_dim / 2).map(|i| base.powf(-2.0 * i as f32 / head_dim as f32)).collect();
        scaling.apply(&mut inv_freq, head_dim, base);
        let magnitude = match scaling {
            RopeScaling::Yarn { attention_factor, .. } => attention_factor,
            _ => 1.0,
        };
        Rope { inv_freq, style, magnitude }
    }

    /// The frequencies divided by per-frequency `factors` (a GGUF's `rope_freqs` tensor, which
    /// Llama 3.1 files carry in place of their rope scaling keys).
    pub fn with_freq_factors(mut self, factors: &[f32]) -> Self {
        for (frequency, factor) in self.inv_freq.iter_mut().zip(factors) {
            *frequency /= factor;
        }
        self
    }

    /// Rotates every head in `heads` (n heads of head_dim contiguous values) for position `pos`.
    pub fn apply(&self, heads: &mut [f32], pos: usize, cos_sin: &mut Vec<(f32, f32)>) {
        cos_sin.clear();
        cos_sin.extend(self.inv_freq.iter().map(|f| {
            let (s, c) = (pos as f32 * f).sin_cos();
            (c * self.magnitude, s * self.magnitude)
        }));
        for head in heads.chunks_exact_mut(self.inv_freq.len() * 2) {
            // SAFETY: as in `dot`.
            unsafe { (kernels().portable.rotate_pairs)(head, cos_sin, self.style) };
        }
    }
}

/// SwiGLU: `gate[i] = silu(gate[i]) * up[i]`, in place over `gate`.
pub fn silu_mul(gate: &mut [f32], up: &[f32]) {
    let kernel = kernels().portable.silu_mul;
    // SAFETY: as in `dot`.
    in_parallel_pairs(gate, up, |gate, up| unsafe { kernel(gate, up) });
}

/// In-place softmax; leaves probabilities summing to 1.
pub fn softmax(x: &mut [f32]) {
    // SAFETY: as in `dot`.
    unsafe { (kernels().portable.softmax)(x) }
}

/// Adds `b` into `a` elementwise.
pub fn add_in_place(a: &mut [f32], b: &[f32]) {
    let kernel = kernels().portable.add_in_place;
    // SAFETY: as in `dot`.
    in_parallel_pairs(a, b, |a, b| unsafe { kernel(a, b) });
}

/// e^x within 2 ulp for x in [-87, 88] (below: 0, where e^x is subnormal; above: e^88), in
/// plain arithmetic that the compiler turns into vector code inside loops, where libm's
/// `expf` is a call per value: x = n ln2 + r with |r| <= ln2/2, e^r by its degree-7 Taylor
/// polynomial, 2^n put into the exponent bits.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    let clamped = x.clamp(-87.0, 88.0);
    let n = (clamped * std::f32::consts::LOG2_E).round_ties_even();
    let r = n.mul_add(-LN2_LO, n.mul_add(-LN2_HI, clamped));
    let mut p: f32 = 1.0 / 5040.0;
    for c in [1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0] {
        p = p.mul_add(r, c);
    }
    let value = p * f32::from_bits(((n as i32 + 127) as u32) << 23);
    if x < -87.0 {
        0.0
    } else {
        value
    }
}

/// The bodies behind the public ops, always inlined: `dispatch` compiles each once per
/// instruction set.
pub(crate) mod portable {
    use super::{exp, RopeStyle};

    /// Lanes of partial sums: fixed, so the result does not depend on the vector width.
    pub(crate) const LANES: usize = 16;

    #[inline(always)]
    pub fn dot(a: &[f32], b: &[f32]) -> f32 {
        let mut acc = [0f32; LANES];
        let chunks = a.len() / LANES;
        for (ca, cb) in a.chunks_exact(LANES).zip(b.chunks_exact(LANES)) {
            for i in 0..LANES {
                acc[i] += ca[i] * cb[i];
            }
        }
        let mut total: f32 = acc.iter().sum();
        for i in chunks * LANES..a.len() {
            total += a[i] * b[i];
        }
        total
    }

    /// `out[r][t] = dot(a[r], x[t])` for every pair, each summed exactly as `dot` sums it (the
    /// same lanes in the same order, then the same tail), in one pass over the slices (all of
    /// one length): every vector loaded serves `T` (or `R`) products. The portable form of the
    /// float path's tiles (LLVM keeps its accumulators in memory; `float_tile_x86` holds the
    /// register-resident AVX2 and AVX-512 ones).
    #[inline(always)]
    pub fn dot_block<const R: usize, const T: usize>(a: [&[f32]; R], x: [&[f32]; T]) -> [[f32; T]; R] {
        let n = a[0].len();
        assert!(a.iter().chain(&x).all(|v| v.len() == n));
        let mut acc = [[[0f32; LANES]; T]; R];
        for c in 0..n / LANES {
            let at = c * LANES;
            // fixed-length views: the lane loops below compile to whole vectors, unchecked
            let av: [&[f32; LANES]; R] = a.map(|v| v[at..at + LANES].try_into().expect("LANES floats"));
            let xv: [&[f32; LANES]; T] = x.map(|v| v[at..at + LANES].try_into().expect("LANES floats"));
            // lanes outermost: the loop vectorizes with every (row, token) pair in its body
            for i in 0..LANES {
                for r in 0..R {
                    for t in 0..T {
                        acc[r][t][i] += av[r][i] * xv[t][i];
                    }
                }
            }
        }
        finish_tile(&acc, a, x)
    }

    /// A tile's products from its lane sums (`lanes[r][t]`): the lanes summed in order, then
    /// the scalar tail, as `dot` finishes.
    #[inline(always)]
    pub(crate) fn finish_tile<const R: usize, const T: usize>(lanes: &[[[f32; LANES]; T]; R], a: [&[f32]; R], x: [&[f32]; T]) -> [[f32; T]; R] {
        let n = a[0].len();
        let whole = n / LANES * LANES;
        std::array::from_fn(|r| {
            std::array::from_fn(|t| {
                let mut total: f32 = lanes[r][t].iter().sum();
                for i in whole..n {
                    total += a[r][i] * x[t][i];
                }
                total
            })
        })
    }

    /// An f16 (its bits) as f32, exactly, in plain integer and float steps that vectorize in
    /// a loop on every path (half's conversion is a runtime-dispatched call per slice, which
    /// costs more than a short KV row): the exponent and mantissa are moved into f32 position
    /// and scaled by 2^112 (exact for normal and subnormal values); infinities and NaNs get
    /// the all-ones exponent, NaNs the quiet bit.
    #[inline(always)]
    pub fn f16_to_f32(h: u16) -> f32 {
        let sign = ((h & 0x8000) as u32) << 16;
        let magnitude = (h & 0x7FFF) as u32;
        let shifted = magnitude << 13;
        let scaled = (f32::from_bits(shifted) * f32::from_bits(0x7780_0000)).to_bits();
        // a NaN comes out quiet, as F16C's vcvtph2ps makes it
        let special = if magnitude > 0x7C00 { shifted | 0x7FC0_0000 } else { shifted | 0x7F80_0000 };
        let bits = if magnitude >= 0x7C00 { special } else { scaled };
        f32::from_bits(bits | sign)
    }

    /// A bf16 (its bits) as f32, exactly as `half::bf16::to_f32` (a NaN comes out quiet).
    #[inline(always)]
    pub fn bf16_to_f32(bits: u16) -> f32 {
        let bits = if bits & 0x7FFF > 0x7F80 { bits | 0x40 } else { bits };
        f32::from_bits((bits as u32) << 16)
    }

    #[inline(always)]
    pub fn axpy(out: &mut [f32], scale: f32, x: &[f32]) {
        for (o, v) in out.iter_mut().zip(x) {
            *o += scale * v;
        }
    }

    #[inline(always)]
    pub fn rms_norm_rows(x: &mut [f32], weight: &[f32], eps: f32) {
        for row in x.chunks_exact_mut(weight.len()) {
            let mean_sq = dot(row, row) / row.len() as f32;
            let inv = 1.0 / (mean_sq + eps).sqrt();
            for (v, w) in row.iter_mut().zip(weight) {
                *v *= inv * w;
            }
        }
    }

    /// Rotates the pairs of one head by the given (cos, sin) per frequency.
    #[inline(always)]
    pub fn rotate_pairs(head: &mut [f32], cos_sin: &[(f32, f32)], style: RopeStyle) {
        let half = cos_sin.len();
        for (i, &(c, s)) in cos_sin.iter().enumerate() {
            let (a, b) = match style {
                RopeStyle::Interleaved => (2 * i, 2 * i + 1),
                RopeStyle::Neox => (i, i + half),
            };
            let (x0, x1) = (head[a], head[b]);
            head[a] = x0 * c - x1 * s;
            head[b] = x0 * s + x1 * c;
        }
    }

    /// SwiGLU: `gate[i] = silu(gate[i]) * up[i]`, in place over `gate`.
    #[inline(always)]
    pub fn silu_mul(gate: &mut [f32], up: &[f32]) {
        for (g, u) in gate.iter_mut().zip(up) {
            *g = *g / (1.0 + exp(-*g)) * u;
        }
    }

    /// In-place softmax; returns nothing, leaves probabilities summing to 1.
    #[inline(always)]
    pub fn softmax(x: &mut [f32]) {
        let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        // lane-wise partial sums, so the loop vectorizes (a single float sum would not)
        let mut sums = [0f32; LANES];
        let mut chunks = x.chunks_exact_mut(LANES);
        for chunk in chunks.by_ref() {
            for (v, sum) in chunk.iter_mut().zip(&mut sums) {
                *v = exp(*v - max);
                *sum += *v;
            }
        }
        for v in chunks.into_remainder() {
            *v = exp(*v - max);
            sums[0] += *v;
        }
        let inv = 1.0 / sums.iter().sum::<f32>();
        for v in x.iter_mut() {
            *v *= inv;
        }
    }

    /// Adds `b` into `a` elementwise.
    #[inline(always)]
    pub fn add_in_place(a: &mut [f32], b: &[f32]) {
        for (x, y) in a.iter_mut().zip(b) {
            *x += y;
        }
    }
}

/// f16 values as f32 (exact): the portable steps of `portable::f16_to_f32`, one per value.
pub(crate) fn f16_row_portable(src: &[f16], dst: &mut [f32]) {
    for (d, h) in dst.iter_mut().zip(src) {
        *d = portable::f16_to_f32(h.to_bits());
    }
}

/// `f16_row_portable` with F16C's vcvtph2ps, eight values an instruction (the same bits).
///
/// # Safety
/// The CPU must have AVX and F16C.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx,f16c")]
pub(crate) unsafe fn f16_row_f16c(src: &[f16], dst: &mut [f32]) {
    use std::arch::x86_64::*;
    let n = src.len().min(dst.len());
    let whole = n - n % 8;
    for i in (0..whole).step_by(8) {
        // SAFETY: i + 8 <= n, inside both slices; unaligned loads and stores.
        unsafe {
            let halves = _mm_loadu_si128(src.as_ptr().add(i) as *const __m128i);
            _mm256_storeu_ps(dst.as_mut_ptr().add(i), _mm256_cvtph_ps(halves));
        }
    }
    f16_row_portable(&src[whole..n], &mut dst[whole..n]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_handles_odd_lengths() {
        for n in [0usize, 1, 15, 16, 17, 33, 100] {
            let a: Vec<f32> = (0..n).map(|i| i as f32 * 0.5 - 3.0).collect();
            let b: Vec<f32> = (0..n).map(|i| (i as f32).sin()).collect();
            let want: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!((dot(&a, &b) - want).abs() < 1e-3, "n={n}");
        }
    }

    #[test]
    fn dot_blocks_give_each_dot_bits() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(29);
        for n in [0usize, 1, 15, 16, 17, 33, 100, 301] {
            let v: Vec<Vec<f32>> = (0..8).map(|_| (0..n).map(|_| rng.random_range(-3.0..3.0)).collect()).collect();
            let want = |r: usize, t: usize| dot(&v[r], &v[4 + t]).to_bits();
            let got = portable::dot_block::<2, 2>([&v[0], &v[1]], [&v[4], &v[5]]);
            assert_eq!(got.map(|row| row.map(f32::to_bits)), [[want(0, 0), want(0, 1)], [want(1, 0), want(1, 1)]], "2x2 n={n}");
            let got = portable::dot_block::<4, 4>([&v[0], &v[1], &v[2], &v[3]], [&v[4], &v[5], &v[6], &v[7]]);
            assert_eq!(got.map(|row| row.map(f32::to_bits)), std::array::from_fn(|r| std::array::from_fn(|t| want(r, t))), "4x4 n={n}");
        }
    }

    #[test]
    fn rope_styles_rotate_the_right_pairs() {
        let rope = Rope::new(4, 10000.0, RopeStyle::Neox);
        let mut v = vec![1.0, 0.0, 0.0, 0.0];
        let mut scratch = Vec::new();
        rope.apply(&mut v, 1, &mut scratch);
        // dim 0 pairs with dim 2 at frequency 1
        assert!((v[0] - 1f32.cos()).abs() < 1e-6 && (v[2] - 1f32.sin()).abs() < 1e-6 && v[1] == 0.0);
        let rope = Rope::new(4, 10000.0, RopeStyle::Interleaved);
        let mut v = vec![1.0, 0.0, 0.0, 0.0];
        rope.apply(&mut v, 1, &mut scratch);
        assert!((v[0] - 1f32.cos()).abs() < 1e-6 && (v[1] - 1f32.sin()).abs() < 1e-6);
    }

    #[test]
    fn rope_scaling_stretches_the_right_frequencies() {
        let freqs = |scaling| Rope::with_scaling(128, 500_000.0, RopeStyle::Neox, scaling).inv_freq;
        let plain = freqs(RopeScaling::None);
        let linear = freqs(RopeScaling::Linear { factor: 4.0 });
        assert!(plain.iter().zip(&linear).all(|(p, l)| (p / 4.0 - l).abs() <= 1e-7 * p));
        // Llama 3.1's values: the fastest frequency is kept, the slowest divided by 8
        let llama3 = freqs(RopeScaling::Llama3 { factor: 8.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_context: 8192.0 });
        assert_eq!(llama3[0], plain[0]);
        assert!((llama3[63] - plain[63] / 8.0).abs() <= 1e-6 * plain[63]);
        assert!(llama3.windows(2).all(|w| w[1] < w[0]), "still decreasing through the ramp");
        // YaRN (Qwen2.5's long-context setting): fast dims extrapolate, slow ones interpolate
        let yarn = RopeScaling::Yarn { factor: 4.0, original_context: 32768.0, beta_fast: 32.0, beta_slow: 1.0, attention_factor: RopeScaling::yarn_attention_factor(4.0) };
        let rope = Rope::with_scaling(128, 1_000_000.0, RopeStyle::Neox, yarn);
        let base = Rope::new(128, 1_000_000.0, RopeStyle::Neox);
        assert_eq!(rope.inv_freq[0], base.inv_freq[0]);
        assert!((rope.inv_freq[63] - base.inv_freq[63] / 4.0).abs() <= 1e-6 * base.inv_freq[63]);
        assert!((rope.magnitude - (0.1 * 4f32.ln() + 1.0)).abs() < 1e-6);
    }

    /// F16C's conversion and the portable one agree on every f16, NaNs included.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn f16c_rows_equal_the_portable_conversion_on_every_value() {
        if !(std::arch::is_x86_feature_detected!("avx") && std::arch::is_x86_feature_detected!("f16c")) {
            return;
        }
        let all: Vec<f16> = (0..=u16::MAX).map(f16::from_bits).collect();
        // an odd length, so the tail after the last group of eight is converted too
        let (mut want, mut got) = (vec![0f32; all.len() - 3], vec![0f32; all.len() - 3]);
        f16_row_portable(&all[3..], &mut want);
        // SAFETY: the features were detected above.
        unsafe { f16_row_f16c(&all[3..], &mut got) };
        for (i, (a, b)) in got.iter().zip(&want).enumerate() {
            assert_eq!(a.to_bits(), b.to_bits(), "f16 bits {:#06x}", i + 3);
        }
    }

    #[test]
    fn exp_is_within_two_ulp_of_libm() {
        let mut x = -87.0f32;
        while x <= 88.0 {
            let (got, want) = (exp(x), x.exp());
            assert!(((got - want) / want).abs() <= 2.5 * f32::EPSILON, "exp({x}) = {got}, libm {want}");
            x += 0.0137;
        }
        assert_eq!(exp(0.0), 1.0);
        assert_eq!((exp(f32::NEG_INFINITY), exp(-1000.0)), (0.0, 0.0));
    }

    #[test]
    fn softmax_sums_to_one() {
        let mut x = vec![1.0, 2.0, 3.0, -1e9];
        softmax(&mut x);
        assert!((x.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(x[3] == 0.0 && x[2] > x[1]);
    }

    /// The inline f16 and bf16 conversions equal half's for every value (f16 NaNs stay NaN
    /// with their sign and payload).
    #[test]
    fn half_conversions_are_exact_for_every_value() {
        for bits in 0..=u16::MAX {
            let (got, want) = (portable::f16_to_f32(bits), half::f16::from_bits(bits).to_f32());
            if want.is_nan() {
                assert!(got.is_nan() && got.is_sign_negative() == want.is_sign_negative(), "{bits:#06x}");
                assert_eq!(got.to_bits() & 0x003F_FFFF, want.to_bits() & 0x003F_FFFF, "{bits:#06x} payload");
            } else {
                assert_eq!(got.to_bits(), want.to_bits(), "{bits:#06x}");
            }
            let (got, want) = (portable::bf16_to_f32(bits), half::bf16::from_bits(bits).to_f32());
            assert_eq!(got.to_bits(), want.to_bits(), "bf16 {bits:#06x}");
        }
    }

    /// Bits of a slice, for exact comparisons that also tell NaN apart.
    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    /// Every path's small ops give the scalar reference's bits, on random rows of odd lengths.
    #[test]
    fn every_path_gives_the_scalar_bits() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(41);
        let tables = crate::dispatch::runnable_tables();
        let scalar = &tables[0].portable;
        for n in [1usize, 7, 16, 31, 33, 100, 1537] {
            let mut random = |scale: f32| (0..n).map(|_| rng.random_range(-scale..scale)).collect::<Vec<f32>>();
            let (a, b, weight) = (random(3.0), random(3.0), random(1.5));
            let mut logits = random(30.0);
            logits[n / 2] = -1e30;
            let cos_sin: Vec<(f32, f32)> = (0..n).map(|i| ((i as f32).cos(), (i as f32).sin())).collect();
            for kernels in &tables {
                let (ops, name) = (&kernels.portable, kernels.isa.name());
                // SAFETY (all calls): runnable tables hold code this CPU runs.
                unsafe {
                    assert_eq!((ops.dot)(&a, &b).to_bits(), (scalar.dot)(&a, &b).to_bits(), "dot {name} n {n}");
                    let run = |f: &dyn Fn(&mut Vec<f32>)| {
                        let mut v = a.clone();
                        f(&mut v);
                        bits(&v)
                    };
                    let norm = |rms: unsafe fn(&mut [f32], &[f32], f32)| run(&|v: &mut Vec<f32>| rms(v, &weight, 1e-6));
                    assert_eq!(norm(ops.rms_norm_rows), norm(scalar.rms_norm_rows), "rms_norm {name} n {n}");
                    let silu = |f: unsafe fn(&mut [f32], &[f32])| run(&|v: &mut Vec<f32>| f(v, &b));
                    assert_eq!(silu(ops.silu_mul), silu(scalar.silu_mul), "silu_mul {name} n {n}");
                    assert_eq!(silu(ops.add_in_place), silu(scalar.add_in_place), "add_in_place {name} n {n}");
                    let soft = |f: unsafe fn(&mut [f32])| {
                        let mut v = logits.clone();
                        f(&mut v);
                        bits(&v)
                    };
                    assert_eq!(soft(ops.softmax), soft(scalar.softmax), "softmax {name} n {n}");
                    for style in [RopeStyle::Neox, RopeStyle::Interleaved] {
                        let rotate = |f: unsafe fn(&mut [f32], &[(f32, f32)], RopeStyle)| {
                            let mut head = [a.clone(), b.clone()].concat();
                            f(&mut head, &cos_sin, style);
                            bits(&head)
                        };
                        assert_eq!(rotate(ops.rotate_pairs), rotate(scalar.rotate_pairs), "rope {style:?} {name} n {n}");
                    }
                }
            }
        }
    }
}
