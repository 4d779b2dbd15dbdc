//! Q4_1 weights times Q8_1 activations: block layouts, quantization, scalar and AVX2 dot.

use half::f16;

pub const QK: usize = 32;

/// GGML's Q4_1 block: 32 weights as 4-bit codes, value = d * q + m.
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub struct BlockQ4_1 {
    pub d: f16,
    pub m: f16,
    /// Element j is the low nibble of qs[j]; element j + 16 is its high nibble.
    pub qs: [u8; QK / 2],
}
const _: () = assert!(std::mem::size_of::<BlockQ4_1>() == 20);

/// GGML's Q8_1 block: 32 activations as i8, value = d * q; s = d * sum(q).
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub struct BlockQ8_1 {
    pub d: f16,
    pub s: f16,
    pub qs: [i8; QK],
}
const _: () = assert!(std::mem::size_of::<BlockQ8_1>() == 36);

impl BlockQ8_1 {
    pub const ZERO: BlockQ8_1 = BlockQ8_1 { d: f16::ZERO, s: f16::ZERO, qs: [0; QK] };
}

/// Quantizes a row of activations (length a multiple of 32) into Q8_1 blocks, rounding as
/// llama.cpp does (scale 127/amax, ties to even).
pub fn quantize_row_q8_1(xs: &[f32], out: &mut [BlockQ8_1]) {
    debug_assert_eq!(xs.len(), out.len() * QK);
    for (chunk, block) in xs.chunks_exact(QK).zip(out.iter_mut()) {
        let amax = chunk.iter().fold(0f32, |a, &x| a.max(x.abs()));
        let d = amax / 127.0;
        let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
        let mut sum = 0i32;
        for (q, &x) in block.qs.iter_mut().zip(chunk) {
            *q = (x * id).round_ties_even() as i8;
            sum += *q as i32;
        }
        block.d = f16::from_f32(d);
        block.s = f16::from_f32(d * sum as f32);
    }
}

/// Dequantizes Q4_1 blocks into floats.
pub fn dequantize_q4_1(xs: &[BlockQ4_1], out: &mut [f32]) {
    for (block, chunk) in xs.iter().zip(out.chunks_exact_mut(QK)) {
        let d = block.d.to_f32();
        let m = block.m.to_f32();
        for j in 0..QK / 2 {
            chunk[j] = (block.qs[j] & 0x0F) as f32 * d + m;
            chunk[j + QK / 2] = (block.qs[j] >> 4) as f32 * d + m;
        }
    }
}

/// Scalar reference dot product.
pub fn dot_q4_1_q8_1_scalar(xs: &[BlockQ4_1], ys: &[BlockQ8_1]) -> f32 {
    let mut total = 0f32;
    for (x, y) in xs.iter().zip(ys) {
        let mut isum = 0i32;
        for j in 0..QK / 2 {
            isum += (x.qs[j] & 0x0F) as i32 * y.qs[j] as i32;
            isum += (x.qs[j] >> 4) as i32 * y.qs[j + QK / 2] as i32;
        }
        total += x.d.to_f32() * y.d.to_f32() * isum as f32 + x.m.to_f32() * y.s.to_f32();
    }
    total
}

/// Dot product of a Q4_1 row and a Q8_1 row, using AVX2 when the CPU has it.
pub fn dot_q4_1_q8_1(xs: &[BlockQ4_1], ys: &[BlockQ8_1]) -> f32 {
    assert_eq!(xs.len(), ys.len());
    #[cfg(target_arch = "x86_64")]
    {
        if crate::cpu::has_avx512_vnni() {
            // SAFETY: the CPU supports avx512f and avx512vnni (checked); equal lengths asserted.
            return unsafe { x86::dot_avx512_vnni(xs, ys) };
        }
        if crate::cpu::has_avx2_fma() {
            // SAFETY: the CPU supports avx2 and fma (checked above); slices have equal length.
            return unsafe { x86::dot_avx2(xs, ys) };
        }
    }
    dot_q4_1_q8_1_scalar(xs, ys)
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{BlockQ4_1, BlockQ8_1};
    use std::arch::x86_64::*;

    /// Two blocks per step: 64 weight nibbles against 64 activations in one VNNI dot.
    #[target_feature(enable = "avx512f,avx512vnni,avx512bw,avx512dq,avx2,fma")]
    pub(super) unsafe fn dot_avx512_vnni(xs: &[BlockQ4_1], ys: &[BlockQ8_1]) -> f32 {
        let mask = _mm256_set1_epi8(0x0F);
        let mut acc = _mm512_setzero_ps();
        let mut min_sum = 0f32;
        let pairs = xs.len() / 2;
        for p in 0..pairs {
            let (x0, x1, y0, y1) = (&xs[2 * p], &xs[2 * p + 1], &ys[2 * p], &ys[2 * p + 1]);
            min_sum += x0.m.to_f32() * y0.s.to_f32() + x1.m.to_f32() * y1.s.to_f32();
            // SAFETY: each qs is 16 (weights) or 32 (activations) bytes; loads are unaligned.
            let packed = _mm256_set_m128i(
                _mm_loadu_si128(x1.qs.as_ptr() as *const __m128i),
                _mm_loadu_si128(x0.qs.as_ptr() as *const __m128i),
            );
            let lo = _mm256_and_si256(packed, mask);
            let hi = _mm256_and_si256(_mm256_srli_epi16(packed, 4), mask);
            // [lo0 lo1 hi0 hi1] -> [lo0 hi0 lo1 hi1]: block 0's 32 codes, then block 1's
            let both = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
            let weights = _mm512_shuffle_i64x2(both, both, 0b11_01_10_00);
            let acts = _mm512_inserti64x4(
                _mm512_castsi256_si512(_mm256_loadu_si256(y0.qs.as_ptr() as *const __m256i)),
                _mm256_loadu_si256(y1.qs.as_ptr() as *const __m256i),
                1,
            );
            let dots = _mm512_dpbusd_epi32(_mm512_setzero_si512(), weights, acts);
            let scale = _mm512_insertf32x8(
                _mm512_castps256_ps512(_mm256_set1_ps(x0.d.to_f32() * y0.d.to_f32())),
                _mm256_set1_ps(x1.d.to_f32() * y1.d.to_f32()),
                1,
            );
            acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dots), scale, acc);
        }
        let mut total = _mm512_reduce_add_ps(acc) + min_sum;
        if xs.len() % 2 == 1 {
            let last = xs.len() - 1;
            total += super::dot_q4_1_q8_1_scalar(&xs[last..], &ys[last..]);
        }
        total
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn dot_avx2(xs: &[BlockQ4_1], ys: &[BlockQ8_1]) -> f32 {
        let mask = _mm256_set1_epi8(0x0F);
        let ones = _mm256_set1_epi16(1);
        let mut acc = _mm256_setzero_ps();
        let mut min_sum = 0f32;
        for (x, y) in xs.iter().zip(ys) {
            min_sum += x.m.to_f32() * y.s.to_f32();
            // SAFETY: qs is 16 bytes and y.qs is 32 bytes; unaligned loads are used.
            let packed = _mm_loadu_si128(x.qs.as_ptr() as *const __m128i);
            let nibbles = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(packed, 4), packed), mask);
            let acts = _mm256_loadu_si256(y.qs.as_ptr() as *const __m256i);
            let pairs = _mm256_maddubs_epi16(nibbles, acts);
            let quads = _mm256_madd_epi16(pairs, ones);
            let scale = _mm256_set1_ps(x.d.to_f32() * y.d.to_f32());
            acc = _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(quads), acc);
        }
        let hi = _mm256_extractf128_ps(acc, 1);
        let sum4 = _mm_add_ps(_mm256_castps256_ps128(acc), hi);
        let sum2 = _mm_add_ps(sum4, _mm_movehl_ps(sum4, sum4));
        let sum1 = _mm_add_ss(sum2, _mm_shuffle_ps(sum2, sum2, 1));
        _mm_cvtss_f32(sum1) + min_sum
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn random_q4_1(rng: &mut impl Rng, n: usize) -> Vec<BlockQ4_1> {
        (0..n)
            .map(|_| BlockQ4_1 {
                d: f16::from_f32(rng.random_range(-0.1..0.1)),
                m: f16::from_f32(rng.random_range(-0.5..0.5)),
                qs: std::array::from_fn(|_| rng.random()),
            })
            .collect()
    }

    #[test]
    fn simd_dot_matches_scalar_on_odd_sizes() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for n_blocks in [1usize, 2, 3, 7, 18, 33] {
            let w = random_q4_1(&mut rng, n_blocks);
            let x: Vec<f32> = (0..n_blocks * QK).map(|_| rng.random_range(-3.0..3.0)).collect();
            let mut xq = vec![BlockQ8_1::ZERO; n_blocks];
            quantize_row_q8_1(&x, &mut xq);
            let fast = dot_q4_1_q8_1(&w, &xq);
            let slow = dot_q4_1_q8_1_scalar(&w, &xq);
            assert!((fast - slow).abs() <= 1e-4 * (1.0 + slow.abs()), "{n_blocks}: {fast} vs {slow}");
            #[cfg(target_arch = "x86_64")]
            if crate::cpu::has_avx2_fma() {
                // SAFETY: avx2 and fma are present (checked).
                let avx2 = unsafe { x86::dot_avx2(&w, &xq) };
                assert!((avx2 - slow).abs() <= 1e-4 * (1.0 + slow.abs()), "avx2 {n_blocks}: {avx2} vs {slow}");
            }
            // and the quantized dot approximates the float dot
            let mut wf = vec![0f32; n_blocks * QK];
            dequantize_q4_1(&w, &mut wf);
            let exact: f32 = wf.iter().zip(&x).map(|(a, b)| a * b).sum();
            assert!((fast - exact).abs() <= 0.02 * (1.0 + exact.abs()) + 0.05 * n_blocks as f32, "{fast} vs {exact}");
        }
    }
}
