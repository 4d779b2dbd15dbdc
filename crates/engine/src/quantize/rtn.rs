//! Round-to-nearest int4 quantization of a weight matrix, one scale and zero point per row and
//! group of input features (the groups need not be contiguous: GPTQ's act order scatters them).

use half::f16;
use hearth_kernels::interleaved::{self, Q4_1Block};
use hearth_model::int4::Int4Codes;
use rayon::prelude::*;

/// How codes map to values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zero {
    /// A zero point per group from the group's range (AWQ).
    Asymmetric,
    /// The same with zero points of at least 1 (GPTQ `sym: false`): GPTQ's original format
    /// stores `zero - 1` in four bits, so a zero point of 0 cannot be written (it would read
    /// back as 16); such a group gets zero point 1 and a scale that still covers its range.
    AsymmetricNonzero,
    /// Zero point 8 and a range symmetric about zero (GPTQ `sym: true`).
    Symmetric,
}

/// The group of each of `cols` input features for contiguous groups of `group`.
pub fn contiguous_groups(cols: usize, group: usize) -> Vec<u32> {
    (0..cols).map(|i| (i / group) as u32).collect()
}

/// Quantizes `w` (`rows x cols`, row-major) over `groups` (one per column, `n_groups` in all).
/// Each range is widened to include zero, so an all-positive group does not clip.
pub fn quantize(w: &[f32], rows: usize, cols: usize, groups: &[u32], zero: Zero) -> Int4Codes {
    assert_eq!(w.len(), rows * cols);
    let n_groups = groups.iter().max().map_or(0, |&g| g as usize + 1);
    let mut codes = vec![0u8; rows * cols];
    let per_row: Vec<(Vec<u8>, Vec<f16>)> = codes
        .par_chunks_mut(cols)
        .zip(w.par_chunks(cols))
        .map(|(row_codes, row)| quantize_row(row, row_codes, groups, n_groups, zero))
        .collect();
    let (mut zeros, mut scales) = (vec![0u8; n_groups * rows], vec![f16::ZERO; n_groups * rows]);
    for (o, (row_zeros, row_scales)) in per_row.into_iter().enumerate() {
        for g in 0..n_groups {
            zeros[g * rows + o] = row_zeros[g];
            scales[g * rows + o] = row_scales[g];
        }
    }
    Int4Codes { rows, cols, codes, zeros, scales }
}

/// Asymmetric round-to-nearest of `W * diag(s)` over contiguous groups of `group` (a multiple
/// of 32), straight into the interleaved Q4_1 form the kernels read (`QMatrix::interleaved`):
/// the same values `quantize` then `to_q4_1` give, in one pass without intermediate copies
/// or a repack (AWQ's search quantizes every candidate this way).
pub fn scaled_q4_1_interleaved(w: &[f32], cols: usize, group: usize, s: &[f32]) -> Vec<u8> {
    assert!(group.is_multiple_of(32) && cols.is_multiple_of(group) && s.len() == cols);
    interleaved::interleave_q4_1_from(w.len() / cols, cols, |r, blocks| {
        scaled_q4_1_row(&w[r * cols..(r + 1) * cols], group, s, blocks)
    })
}

/// One row of `scaled_q4_1_interleaved`: its Q4_1 blocks, group by group.
fn scaled_q4_1_row(row: &[f32], group: usize, s: &[f32], blocks: &mut [Q4_1Block]) {
    const BLOCK: usize = 32;
    let mut scaled = vec![0f32; group];
    for ((group_blocks, w_group), s_group) in blocks.chunks_mut(group / BLOCK).zip(row.chunks(group)).zip(s.chunks(group)) {
        for ((x, &w), &s) in scaled.iter_mut().zip(w_group).zip(s_group) {
            *x = w * s;
        }
        let (lo, hi) = range_with_zero(&scaled);
        let (scale, zero) = asymmetric_range(lo, hi);
        let scale = f16::from_f32(scale);
        let min = f16::from_f32(-zero * scale.to_f32());
        let inv = 1.0 / scale.to_f32();
        // + 0.5 then truncation rounds the non-negative codes to nearest
        let offset = zero + 0.5;
        for (block, x) in group_blocks.iter_mut().zip(scaled.chunks_exact(BLOCK)) {
            block.d = scale.to_bits();
            block.min = min.to_bits();
            for (c, &v) in block.codes.iter_mut().zip(x) {
                *c = code_of(v * inv + offset);
            }
        }
    }
}

/// `y.clamp(0.0, 15.0) as u8` (a NaN gives 0), in steps that vectorize on every x86-64
/// (a float-to-int cast does not: its saturation is scalarized): `max` first maps NaN to 0,
/// and an integer of 0..=15 plus 2^23 holds itself in the low mantissa bits.
#[inline(always)]
fn code_of(y: f32) -> u8 {
    const INTEGER_BIAS: f32 = 8_388_608.0;
    ((y.max(0.0).min(15.0).floor() + INTEGER_BIAS).to_bits() & 0xF) as u8
}

/// The f16-exact scale and the zero point that map [lo, hi] (which holds 0) onto codes 0..=15.
fn asymmetric_range(lo: f32, hi: f32) -> (f32, f32) {
    let scale = f16::from_f32(((hi - lo) / 15.0).max(1e-5)).to_f32();
    (scale, (-lo / scale).round().clamp(0.0, 15.0))
}

/// (min, max) of `x` and zero, in independent lanes so that it vectorizes.
fn range_with_zero(x: &[f32]) -> (f32, f32) {
    const LANES: usize = 16;
    let (mut lo, mut hi) = ([0f32; LANES], [0f32; LANES]);
    let mut chunks = x.chunks_exact(LANES);
    for chunk in &mut chunks {
        for i in 0..LANES {
            lo[i] = lo[i].min(chunk[i]);
            hi[i] = hi[i].max(chunk[i]);
        }
    }
    let tail = chunks.remainder().iter();
    let lo = lo.iter().chain(tail.clone()).fold(0f32, |a, &v| a.min(v));
    let hi = hi.iter().chain(tail).fold(0f32, |a, &v| a.max(v));
    (lo, hi)
}

fn quantize_row(row: &[f32], codes: &mut [u8], groups: &[u32], n_groups: usize, zero: Zero) -> (Vec<u8>, Vec<f16>) {
    let (mut lo, mut hi) = (vec![0f32; n_groups], vec![0f32; n_groups]);
    for (&v, &g) in row.iter().zip(groups) {
        lo[g as usize] = lo[g as usize].min(v);
        hi[g as usize] = hi[g as usize].max(v);
    }
    let mut zeros = vec![0u8; n_groups];
    let mut scales = vec![f16::ZERO; n_groups];
    for g in 0..n_groups {
        let (scale, z) = match zero {
            Zero::Asymmetric | Zero::AsymmetricNonzero => {
                let (scale, z) = asymmetric_range(lo[g], hi[g]);
                if z == 0.0 && zero == Zero::AsymmetricNonzero {
                    // codes span [-scale, 14 * scale]; lo > -scale / 2 already
                    (f16::from_f32((hi[g] / 14.0).max(scale)).to_f32(), 1.0)
                } else {
                    (scale, z)
                }
            }
            Zero::Symmetric => {
                let amax = hi[g].max(-lo[g]);
                (f16::from_f32((2.0 * amax / 15.0).max(1e-5)).to_f32(), 8.0)
            }
        };
        scales[g] = f16::from_f32(scale);
        zeros[g] = z as u8;
    }
    for ((c, &v), &g) in codes.iter_mut().zip(row).zip(groups) {
        let g = g as usize;
        *c = ((v / scales[g].to_f32()).round() + zeros[g] as f32).clamp(0.0, 15.0) as u8;
    }
    (zeros, scales)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_model::int4::Int4Values;

    fn dequantized(q: &Int4Codes, groups: &[u32], o: usize, i: usize) -> f32 {
        let g = groups[i] as usize;
        (q.code(o, i) as f32 - q.zero(o, g) as f32) * q.scale(o, g).to_f32()
    }

    #[test]
    fn round_trip_error_is_within_half_a_step() {
        let (rows, cols) = (5, 96);
        let w: Vec<f32> = (0..rows * cols).map(|k| ((k * 37 % 101) as f32 - 40.0) * 0.01).collect();
        for groups in [contiguous_groups(cols, 32), (0..cols as u32).map(|i| i % 3).collect()] {
            for zero in [Zero::Asymmetric, Zero::AsymmetricNonzero, Zero::Symmetric] {
                let q = quantize(&w, rows, cols, &groups, zero);
                for o in 0..rows {
                    for i in 0..cols {
                        let step = q.scale(o, groups[i] as usize).to_f32();
                        let err = (dequantized(&q, &groups, o, i) - w[o * cols + i]).abs();
                        // symmetric ranges put +amax half a step past code 15, so allow a full step
                        assert!(err <= step * if zero == Zero::Symmetric { 1.0 } else { 0.51 }, "{zero:?} ({o},{i}): {err} > {step}");
                    }
                }
            }
        }
    }

    #[test]
    fn the_one_pass_q4_1_path_matches_quantize_then_repack() {
        let (rows, cols, group) = (19, 256, 128);
        let w: Vec<f32> = (0..rows * cols).map(|k| ((k * 53 % 97) as f32 - 45.0) * 0.013).collect();
        let s: Vec<f32> = (0..cols).map(|c| 0.5 + (c % 7) as f32 * 0.25).collect();
        let scaled: Vec<f32> = w.chunks(cols).flat_map(|r| r.iter().zip(&s).map(|(w, s)| w * s)).collect();
        let groups = contiguous_groups(cols, group);
        let gguf = hearth_model::int4::to_q4_1(&quantize(&scaled, rows, cols, &groups, Zero::Asymmetric), &groups, None);
        let expected = interleaved::interleave(hearth_kernels::QuantType::Q4_1, rows, cols, &gguf);
        let got = scaled_q4_1_interleaved(&w, cols, group, &s);
        assert_eq!(got.len(), expected.len());
        // codes may differ where w*s rounds a hair differently; they never differ by more than one
        let mismatched = got.iter().zip(&expected).filter(|(a, b)| a != b).count();
        assert!(mismatched * 100 <= got.len(), "{mismatched} of {} bytes differ", got.len());
    }

    #[test]
    fn codes_are_the_clamped_truncation() {
        let specials = [f32::NAN, -f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -0.0, 0.0, 14.999999, 15.0, 15.5, 16.0, 1e30, -1e30, 0.49999997, 0.5, 7.5];
        let sweep = (0..4000).map(|i| i as f32 * 0.00437 - 1.0);
        for y in specials.into_iter().chain(sweep) {
            assert_eq!(code_of(y), y.clamp(0.0, 15.0) as u8, "{y}");
        }
    }

    #[test]
    fn an_all_positive_group_is_not_clipped() {
        let w: Vec<f32> = (0..32).map(|i| 1.0 + i as f32 * 0.1).collect();
        let q = quantize(&w, 1, 32, &contiguous_groups(32, 32), Zero::Asymmetric);
        assert_eq!(q.zero(0, 0), 0);
        assert!((dequantized(&q, &[0; 32], 0, 31) - 4.1).abs() < 0.15);
        // GPTQ's format cannot store zero point 0: the group takes 1 and still reaches 4.1
        let q = quantize(&w, 1, 32, &contiguous_groups(32, 32), Zero::AsymmetricNonzero);
        assert_eq!(q.zero(0, 0), 1);
        assert!((dequantized(&q, &[0; 32], 0, 31) - 4.1).abs() < 0.16);
    }
}
