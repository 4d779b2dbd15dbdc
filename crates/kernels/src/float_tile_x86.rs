//! Register tiles of f32 dot products for the float-weight path (`qmatmul::float_rows`) on
//! AVX2 and AVX-512: `R` weight rows times `T` tokens with every accumulator in a register.
//! Each product is summed exactly as `ops::portable::dot` sums it: 16 lanes (one zmm, or two
//! ymm halves) multiplied then added (never fused), the lanes summed in order, then the tail.

#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::*;

use crate::ops::portable::{finish_tile, LANES};

/// `dot(a[r], x[t])` for 4 rows and 4 tokens: 16 zmm accumulators, 8 loads per 256 products.
///
/// # Safety
/// The CPU must have AVX-512F. All slices must have one length (checked).
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn dot_4x4(a: [&[f32]; 4], x: [&[f32]; 4]) -> [[f32; 4]; 4] {
    let n = a[0].len();
    assert!(a.iter().chain(&x).all(|v| v.len() == n));
    let mut acc = [[_mm512_setzero_ps(); 4]; 4];
    for c in 0..n / LANES {
        let at = c * LANES;
        // SAFETY: at + 16 <= n, the length of every slice (asserted above).
        let (av, xv) = unsafe { (a.map(|v| _mm512_loadu_ps(v.as_ptr().add(at))), x.map(|v| _mm512_loadu_ps(v.as_ptr().add(at)))) };
        for r in 0..4 {
            for t in 0..4 {
                acc[r][t] = _mm512_add_ps(acc[r][t], _mm512_mul_ps(av[r], xv[t]));
            }
        }
    }
    let mut lanes = [[[0f32; LANES]; 4]; 4];
    for r in 0..4 {
        for t in 0..4 {
            // SAFETY: a 16-float array is 64 writable bytes.
            unsafe { _mm512_storeu_ps(lanes[r][t].as_mut_ptr(), acc[r][t]) };
        }
    }
    finish_tile(&lanes, a, x)
}

/// `dot(a[r], x[t])` for 2 rows and 2 tokens: each accumulator two ymm halves (lanes 0..8 and
/// 8..16), 8 registers in all, leaving room for the loads within AVX2's 16.
///
/// # Safety
/// The CPU must have AVX. All slices must have one length (checked).
#[target_feature(enable = "avx")]
pub(crate) unsafe fn dot_2x2(a: [&[f32]; 2], x: [&[f32]; 2]) -> [[f32; 2]; 2] {
    let n = a[0].len();
    assert!(a.iter().chain(&x).all(|v| v.len() == n));
    let mut acc = [[[_mm256_setzero_ps(); 2]; 2]; 2];
    for c in 0..n / LANES {
        for (half, at) in [c * LANES, c * LANES + 8].into_iter().enumerate() {
            // SAFETY: at + 8 <= n, the length of every slice (asserted above).
            let (av, xv) = unsafe { (a.map(|v| _mm256_loadu_ps(v.as_ptr().add(at))), x.map(|v| _mm256_loadu_ps(v.as_ptr().add(at)))) };
            for r in 0..2 {
                for t in 0..2 {
                    acc[r][t][half] = _mm256_add_ps(acc[r][t][half], _mm256_mul_ps(av[r], xv[t]));
                }
            }
        }
    }
    let mut lanes = [[[0f32; LANES]; 2]; 2];
    for r in 0..2 {
        for t in 0..2 {
            for half in 0..2 {
                // SAFETY: 8 floats from lane 8 * half of a 16-float array are in bounds.
                unsafe { _mm256_storeu_ps(lanes[r][t].as_mut_ptr().add(8 * half), acc[r][t][half]) };
            }
        }
    }
    finish_tile(&lanes, a, x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Both tiles give each product's `portable::dot` bits, for lengths with and without a
    /// tail, on the CPUs that run them.
    #[test]
    fn tiles_equal_plain_dots_bit_for_bit() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(37);
        for n in [0usize, 1, 8, 15, 16, 17, 33, 100, 301, 1536] {
            let v: Vec<Vec<f32>> = (0..8).map(|_| (0..n).map(|_| rng.random_range(-3.0..3.0)).collect()).collect();
            let want = |r: usize, t: usize| crate::ops::portable::dot(&v[r], &v[4 + t]).to_bits();
            if is_x86_feature_detected!("avx") {
                // SAFETY: AVX was detected.
                let got = unsafe { dot_2x2([&v[0], &v[1]], [&v[4], &v[5]]) };
                assert_eq!(got.map(|row| row.map(f32::to_bits)), [[want(0, 0), want(0, 1)], [want(1, 0), want(1, 1)]], "2x2 n={n}");
            }
            if is_x86_feature_detected!("avx512f") {
                // SAFETY: AVX-512F was detected.
                let got = unsafe { dot_4x4([&v[0], &v[1], &v[2], &v[3]], [&v[4], &v[5], &v[6], &v[7]]) };
                assert_eq!(got.map(|row| row.map(f32::to_bits)), std::array::from_fn(|r| std::array::from_fn(|t| want(r, t))), "4x4 n={n}");
            }
        }
    }
}
