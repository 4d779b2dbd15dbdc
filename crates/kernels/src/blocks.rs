//! GGUF blocks of the types with an interleaved form (Q4_0, Q4_1, Q8_0, Q4_K, Q6_K) and the
//! int8 activations their kernels read.
//!
//! Every weight type is written as: per block, weight = d * sc_g * code - dmin * mn_g with
//! integer sc_g and mn_g per group. A block's contribution is then
//! `(dx * d) * A + (dx * -dmin) * M` with exact integers A = sum sc_g * (codes . acts) and
//! M = sum mn_g * (sum of the group's acts): every kernel path computes the same integers and
//! the same rounded float steps (`add_block`), so a row's result is bit-identical whichever
//! path computed it, and whether it was decoded alone or inside a batch.

use half::f16;

use crate::dispatch::Kernels;
use crate::QuantType;

/// Weight types with an interleaved form, with their (group, activation block) sizes.
pub fn acts_layout(dtype: QuantType) -> Option<(usize, usize)> {
    match dtype {
        QuantType::Q4K => Some((32, 256)),
        QuantType::Q6K => Some((16, 256)),
        QuantType::Q4_0 | QuantType::Q4_1 | QuantType::Q8_0 => Some((32, 32)),
        _ => None,
    }
}

/// int8 activations: per-block scales and per-group integer sums.
pub struct QuantActs {
    pub k: usize,
    pub block: usize,
    pub group: usize,
    pub q: Vec<i8>,
    pub scale: Vec<f32>,
    pub group_sum: Vec<i32>,
    /// The same sums as i16 (they fit: a group holds at most 32 values of at most 128), which
    /// the interleaved K-quant kernels read two at a time.
    pub group_sum16: Vec<i16>,
}

impl QuantActs {
    /// Quantizes `m` rows of `k` values as the reference does: Q8_K style (signed max, f32
    /// scale, rounding half away from zero, which reproduces llama.cpp's Qwen greedy tokens)
    /// for 256-blocks, Q8_0 style (f16 scale, ties to even) for 32-blocks.
    pub fn quantize(x: &[f32], m: usize, k: usize, block: usize, group: usize) -> Self {
        Self::quantize_on(crate::dispatch::kernels(), x, m, k, block, group)
    }

    /// `quantize` on the given table's kernel.
    pub(crate) fn quantize_on(kernels: &Kernels, x: &[f32], m: usize, k: usize, block: usize, group: usize) -> Self {
        use rayon::prelude::*;
        assert!(x.len() == m * k && k.is_multiple_of(block) && block.is_multiple_of(group));
        let (mut q, mut scale) = (vec![0i8; m * k], vec![0f32; m * k / block]);
        let (mut group_sum, mut group_sum16) = (vec![0i32; m * k / group], vec![0i16; m * k / group]);
        let rows: Vec<(&[f32], ActsRow<'_>)> = x
            .chunks_exact(k)
            .zip(q.chunks_exact_mut(k))
            .zip(scale.chunks_exact_mut(k / block))
            .zip(group_sum.chunks_exact_mut(k / group).zip(group_sum16.chunks_exact_mut(k / group)))
            .map(|(((x, q), scale), (group_sum, group_sum16))| (x, ActsRow { q, scale, group_sum, group_sum16 }))
            .collect();
        let kernel = kernels.portable.quantize_row;
        // SAFETY: tables exist only for paths this CPU runs (`dispatch::table`).
        rows.into_par_iter().with_min_len(8).for_each(|(x, mut row)| unsafe { kernel(x, &mut row, block, group) });
        QuantActs { k, block, group, q, scale, group_sum, group_sum16 }
    }
}

/// One activation row's share of `QuantActs`.
pub(crate) struct ActsRow<'a> {
    q: &'a mut [i8],
    scale: &'a mut [f32],
    group_sum: &'a mut [i32],
    group_sum16: &'a mut [i16],
}

/// One activation row into int8 blocks of `block` values, their scales and the sums of each
/// group of `group` codes (the body `dispatch` compiles per instruction set).
#[inline(always)]
pub(crate) fn quantize_row(x: &[f32], row: &mut ActsRow<'_>, block: usize, group: usize) {
    for ((xb, qb), d) in x.chunks_exact(block).zip(row.q.chunks_exact_mut(block)).zip(row.scale.iter_mut()) {
        *d = if block == 256 { quantize_block_q8k(xb, qb) } else { quantize_block_q8_0(xb, qb) };
    }
    for ((codes, sum), sum16) in row.q.chunks_exact(group).zip(row.group_sum.iter_mut()).zip(row.group_sum16.iter_mut()) {
        *sum = codes.iter().map(|&v| v as i32).sum();
        // fits: a group holds at most 32 values of at most 127
        *sum16 = *sum as i16;
    }
}

/// Q8_K: the scale comes from the value of largest magnitude, with its sign (the first one
/// when several tie), written as a max then a search so that both loops vectorize.
#[inline(always)]
fn quantize_block_q8k(x: &[f32], q: &mut [i8]) -> f32 {
    let amax = x.iter().fold(0f32, |a, &v| a.max(v.abs()));
    if amax == 0.0 || amax.is_nan() {
        q.fill(0);
        return 0.0;
    }
    let first = x.chunks(8).position(|c| c.iter().fold(false, |found, v| found | (v.abs() == amax))).unwrap_or(0);
    let max = x[8 * first..].iter().copied().find(|v| v.abs() == amax).unwrap_or(amax);
    let iscale = -127.0 / max;
    for (o, &v) in q.iter_mut().zip(x) {
        *o = to_code((iscale * v).round());
    }
    1.0 / iscale
}

#[inline(always)]
fn quantize_block_q8_0(x: &[f32], q: &mut [i8]) -> f32 {
    let amax = x.iter().fold(0f32, |a, &v| a.max(v.abs()));
    let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
    for (o, &v) in q.iter_mut().zip(x) {
        *o = to_code((v * id).round_ties_even());
    }
    f16::from_f32(amax / 127.0).to_f32()
}

/// A rounded value as an int8 code, saturating (NaN gives 127): bounded first, so the
/// conversion is a plain vector one where `as i8` alone would be a checked scalar one.
#[inline(always)]
fn to_code(rounded: f32) -> i8 {
    let bounded = rounded.min(127.0).max(-128.0);
    // SAFETY: `min` returns 127 for NaN, so `bounded` is a finite integer in -128..=127.
    unsafe { bounded.to_int_unchecked::<i32>() as i8 }
}

/// Groups per weight block of a type with an interleaved form.
pub(crate) fn groups_per_block(dtype: QuantType) -> usize {
    match dtype {
        QuantType::Q4K => 8,
        QuantType::Q6K => 16,
        _ => 1,
    }
}

#[inline]
fn f16_at(b: &[u8], i: usize) -> f32 {
    f16::from_le_bytes([b[i], b[i + 1]]).to_f32()
}

/// Integer group scales of one weight block; returns the block's (d, -dmin).
#[inline]
pub(crate) fn block_params(dtype: QuantType, block: &[u8], sc: &mut [i32], mn: &mut [i32]) -> (f32, f32) {
    match dtype {
        QuantType::Q4_0 | QuantType::Q4_1 | QuantType::Q8_0 => {
            (sc[0], mn[0]) = (1, 1);
            let d = f16_at(block, 0);
            let neg_dmin = match dtype {
                QuantType::Q4_1 => f16_at(block, 2),
                QuantType::Q4_0 => -8.0 * d,
                _ => -128.0 * d,
            };
            (d, neg_dmin)
        }
        QuantType::Q4K => {
            for j in 0..8 {
                let (s, m) = k4_scale_min(j, &block[4..16]);
                (sc[j], mn[j]) = (s as i32, m as i32);
            }
            (f16_at(block, 0), -f16_at(block, 2))
        }
        QuantType::Q6K => {
            for g in 0..16 {
                sc[g] = block[192 + g] as i8 as i32;
                mn[g] = 32 * sc[g];
            }
            let d = f16_at(block, 208);
            (d, -d)
        }
        other => unreachable!("acts_layout rejects {other}"),
    }
}

/// Adds a block's contribution to a row's total, in the one order every kernel uses (the
/// activation scale folded into the weight scales first, as llama.cpp does).
#[inline(always)]
pub fn add_block(total: f32, a: i32, m: i32, d: f32, neg_dmin: f32, dx: f32) -> f32 {
    (dx * d).mul_add(a as f32, (dx * neg_dmin).mul_add(m as f32, total))
}

/// The unsigned codes of one weight block, in element order.
pub(crate) fn unpack_codes(dtype: QuantType, block: &[u8], q: &mut [u8]) {
    match dtype {
        QuantType::Q4_0 | QuantType::Q4_1 => {
            let qs = if dtype == QuantType::Q4_1 { &block[4..20] } else { &block[2..18] };
            for j in 0..16 {
                q[j] = qs[j] & 0x0F;
                q[j + 16] = qs[j] >> 4;
            }
        }
        QuantType::Q8_0 => {
            for j in 0..32 {
                q[j] = (block[2 + j] as i8 as i16 + 128) as u8;
            }
        }
        QuantType::Q4K => {
            for pair in 0..4 {
                let src = &block[16 + pair * 32..16 + pair * 32 + 32];
                for l in 0..32 {
                    q[pair * 64 + l] = src[l] & 0x0F;
                    q[pair * 64 + l + 32] = src[l] >> 4;
                }
            }
        }
        QuantType::Q6K => {
            for half in 0..2 {
                let (ql, qh) = (&block[half * 64..], &block[128 + half * 32..]);
                let dst = &mut q[half * 128..];
                for l in 0..32 {
                    dst[l] = (ql[l] & 0x0F) | ((qh[l] & 3) << 4);
                    dst[l + 32] = (ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4);
                    dst[l + 64] = (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4);
                    dst[l + 96] = (ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4);
                }
            }
        }
        other => unreachable!("acts_layout rejects {other}"),
    }
}

/// Q4_K's eight 6-bit scales and mins as bytes, all at once (llama.cpp's bit shuffle of the
/// 12 packed bytes); the same values as `k4_scale_min`.
#[inline]
pub(crate) fn q4k_scale_bytes(block: &[u8]) -> ([u8; 8], [u8; 8]) {
    let word = |i: usize| u32::from_le_bytes([block[4 + 4 * i], block[5 + 4 * i], block[6 + 4 * i], block[7 + 4 * i]]);
    let (w0, w1, w2) = (word(0), word(1), word(2));
    const LOW6: u32 = 0x3f3f_3f3f;
    const LOW4: u32 = 0x0f0f_0f0f;
    const LOW2: u32 = 0x0303_0303;
    let sc_hi = (w2 & LOW4) | (((w0 >> 6) & LOW2) << 4);
    let mn_hi = ((w2 >> 4) & LOW4) | (((w1 >> 6) & LOW2) << 4);
    let join = |lo: u32, hi: u32| (lo as u64 | (hi as u64) << 32).to_le_bytes();
    (join(w0 & LOW6, sc_hi), join(w1 & LOW6, mn_hi))
}

/// Q4_K's packed 6-bit scale and min of sub-block j.
fn k4_scale_min(j: usize, s: &[u8]) -> (u8, u8) {
    if j < 4 {
        (s[j] & 63, s[j + 4] & 63)
    } else {
        ((s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4), (s[j + 4] >> 4) | ((s[j] >> 6) << 4))
    }
}

/// `dot(weight row, activation row t)` for a row of GGUF blocks, straight from the block
/// formulas: the reference every interleaved kernel must equal bit for bit.
pub fn row_dot(dtype: QuantType, row: &[u8], acts: &QuantActs, t: usize) -> f32 {
    let (group, block) = acts_layout(dtype).expect("row_dot needs a type with an interleaved form");
    let (k, per_block) = (acts.k, groups_per_block(dtype));
    let (mut sc, mut mn, mut codes) = ([0i32; 16], [0i32; 16], [0u8; 256]);
    let mut total = 0f32;
    for (b, wblock) in row.chunks_exact(dtype.block_bytes()).enumerate() {
        let (d, neg_dmin) = block_params(dtype, wblock, &mut sc, &mut mn);
        unpack_codes(dtype, wblock, &mut codes[..block]);
        let (mut sum_a, mut sum_m) = (0i32, 0i32);
        for g in 0..per_block {
            let acts_at = t * k + b * block + g * group;
            let dot: i32 = (0..group).map(|e| codes[g * group + e] as i32 * acts.q[acts_at + e] as i32).sum();
            sum_a += sc[g] * dot;
            sum_m += mn[g] * acts.group_sum[acts_at / group];
        }
        total = add_block(total, sum_a, sum_m, d, neg_dmin, acts.scale[t * k / block + b]);
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn k4_scales_unpack_like_ggml() {
        let s = [1u8, 2, 3, 4, 65, 66, 67, 200, 0x21, 0x43, 0x65, 0x87];
        assert_eq!(k4_scale_min(0, &s), (1, 65 & 63));
        assert_eq!(k4_scale_min(4, &s), ((0x21 & 0x0F) | ((1 >> 6) << 4), (0x21 >> 4) | ((65 >> 6) << 4)));
        assert_eq!(k4_scale_min(7, &s), ((0x87 & 0x0F) | ((4 >> 6) << 4), (0x87 >> 4) | ((200 >> 6) << 4)));
    }

    /// Every path quantizes activations to the scalar path's codes, scales and sums.
    #[test]
    fn every_path_quantizes_activations_alike() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(43);
        let tables = crate::dispatch::runnable_tables();
        for (group, block, k) in [(32, 32, 96), (32, 256, 512), (16, 256, 256)] {
            for m in [1usize, 3, 9] {
                let mut x: Vec<f32> = (0..m * k).map(|_| rng.random_range(-5.0..5.0)).collect();
                x[..block].fill(0.0); // an all-zero block
                if let Some(v) = x.get_mut(block + 1) {
                    *v = 2.5; // a tie, if the block scale makes it one
                }
                let want = QuantActs::quantize_on(tables[0], &x, m, k, block, group);
                for kernels in &tables[1..] {
                    let got = QuantActs::quantize_on(kernels, &x, m, k, block, group);
                    let name = kernels.isa.name();
                    assert_eq!(got.q, want.q, "{name} block {block} m {m}");
                    assert_eq!(got.scale.iter().map(|s| s.to_bits()).collect::<Vec<_>>(), want.scale.iter().map(|s| s.to_bits()).collect::<Vec<_>>(), "{name}");
                    assert_eq!((&got.group_sum, &got.group_sum16), (&want.group_sum, &want.group_sum16), "{name}");
                }
            }
        }
    }
}
