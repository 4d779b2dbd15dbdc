//! Q8_0 activation quantization with llama.cpp's rounding (scale 127/amax, ties to even), so
//! logits match the reference runtime as closely as the weights allow.

use half::f16;

pub const QK8_0: usize = 32;

/// GGML's Q8_0 block: value = d * q.
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub struct BlockQ8_0 {
    pub d: f16,
    pub qs: [i8; QK8_0],
}
const _: () = assert!(std::mem::size_of::<BlockQ8_0>() == 34);

/// Quantizes a row (length a multiple of 32) into Q8_0 blocks.
pub fn quantize_row_q8_0(xs: &[f32], out: &mut [BlockQ8_0]) {
    debug_assert_eq!(xs.len(), out.len() * QK8_0);
    for (chunk, block) in xs.chunks_exact(QK8_0).zip(out.iter_mut()) {
        let amax = chunk.iter().fold(0f32, |a, &x| a.max(x.abs()));
        let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
        for (q, &x) in block.qs.iter_mut().zip(chunk) {
            *q = (x * id).round_ties_even() as i8;
        }
        block.d = f16::from_f32(amax / 127.0);
    }
}

/// Scalar reference dot product of two Q8_0 rows.
pub fn dot_q8_0_scalar(xs: &[BlockQ8_0], ys: &[BlockQ8_0]) -> f32 {
    xs.iter()
        .zip(ys)
        .map(|(x, y)| {
            let isum: i32 = x.qs.iter().zip(&y.qs).map(|(&a, &b)| a as i32 * b as i32).sum();
            x.d.to_f32() * y.d.to_f32() * isum as f32
        })
        .sum()
}

/// Dot product of two Q8_0 rows, with AVX-512 VNNI when available.
pub fn dot_q8_0(xs: &[BlockQ8_0], ys: &[BlockQ8_0]) -> f32 {
    assert_eq!(xs.len(), ys.len());
    #[cfg(target_arch = "x86_64")]
    {
        if crate::cpu::has_avx512_vnni() {
            // SAFETY: the CPU supports avx512f/bw/vnni (checked); lengths are equal.
            return unsafe { x86::dot_avx512_vnni(xs, ys) };
        }
    }
    dot_q8_0_scalar(xs, ys)
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::BlockQ8_0;
    use std::arch::x86_64::*;

    /// Two blocks per step; signed x signed via |x| (unsigned) times y with x's sign.
    #[target_feature(enable = "avx512f,avx512vnni,avx512bw,avx512dq,avx2")]
    pub(super) unsafe fn dot_avx512_vnni(xs: &[BlockQ8_0], ys: &[BlockQ8_0]) -> f32 {
        let mut acc = _mm512_setzero_ps();
        let pairs = xs.len() / 2;
        let load2 = |a: &BlockQ8_0, b: &BlockQ8_0| {
            // SAFETY: each qs is 32 bytes; unaligned loads.
            unsafe {
                _mm512_inserti64x4(
                    _mm512_castsi256_si512(_mm256_loadu_si256(a.qs.as_ptr() as *const __m256i)),
                    _mm256_loadu_si256(b.qs.as_ptr() as *const __m256i),
                    1,
                )
            }
        };
        for p in 0..pairs {
            let (x0, x1, y0, y1) = (&xs[2 * p], &xs[2 * p + 1], &ys[2 * p], &ys[2 * p + 1]);
            let x = load2(x0, x1);
            let y = load2(y0, y1);
            let negative = _mm512_movepi8_mask(x);
            let y_signed = _mm512_mask_sub_epi8(y, negative, _mm512_setzero_si512(), y);
            let dots = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_abs_epi8(x), y_signed);
            let scale = _mm512_insertf32x8(
                _mm512_castps256_ps512(_mm256_set1_ps(x0.d.to_f32() * y0.d.to_f32())),
                _mm256_set1_ps(x1.d.to_f32() * y1.d.to_f32()),
                1,
            );
            acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dots), scale, acc);
        }
        let mut total = _mm512_reduce_add_ps(acc);
        if xs.len() % 2 == 1 {
            let last = xs.len() - 1;
            total += super::dot_q8_0_scalar(&xs[last..], &ys[last..]);
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn simd_dot_matches_scalar_on_odd_sizes() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        for n in [1usize, 2, 3, 9, 18, 31] {
            let gen = |rng: &mut rand::rngs::StdRng| -> Vec<BlockQ8_0> {
                (0..n)
                    .map(|_| BlockQ8_0 {
                        d: f16::from_f32(rng.random_range(-0.1..0.1)),
                        qs: std::array::from_fn(|_| rng.random_range(-127..=127)),
                    })
                    .collect()
            };
            let (x, y) = (gen(&mut rng), gen(&mut rng));
            let (fast, slow) = (dot_q8_0(&x, &y), dot_q8_0_scalar(&x, &y));
            assert!((fast - slow).abs() <= 1e-4 * (1.0 + slow.abs()), "{n}: {fast} vs {slow}");
        }
    }

    #[test]
    fn rounds_ties_to_even_and_keeps_scale() {
        let mut xs = vec![0f32; 32];
        xs[0] = 127.0;
        xs[1] = 2.5;
        xs[2] = -3.5;
        let mut out = [BlockQ8_0 { d: f16::ZERO, qs: [0; 32] }];
        quantize_row_q8_0(&xs, &mut out);
        assert_eq!(out[0].d.to_f32(), 1.0);
        assert_eq!(&out[0].qs[..3], &[127, 2, -4]);
    }
}
