//! Batched (prompt) matmul: 16 weight rows at a time are unpacked from their GGUF blocks into
//! a row-interleaved u8 tile (with integer group scales and per-block float scales), then
//! multiplied with int8 activations by an AVX-512 VNNI kernel. The tile lives only while its
//! rows are in use, so no repacked copy of the weights is ever kept.
//!
//! Every weight type is written as: per block, weight = d * sc_g * code - dmin * mn_g with
//! integer sc_g and mn_g per group. A block's contribution is then
//! `(dx * d) * A + (dx * -dmin) * M` with exact integers A = sum sc_g * (codes . acts) and
//! M = sum mn_g * (sum of the group's acts): the tile kernel and the one-row kernel
//! (`rowdot`) compute the same integers and the same rounded float steps, so a row's
//! result is bit-identical whichever computed it (decode alone or inside a batch).

use half::f16;

use crate::QuantType;

/// Weight rows per tile: one i32 lane each in a 512-bit register.
pub const TILE_ROWS: usize = 16;

/// Weight types the tile path handles, with (group, activation block) sizes.
pub fn tile_layout(dtype: QuantType) -> Option<(usize, usize)> {
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
        use rayon::prelude::*;
        let mut q = vec![0i8; m * k];
        let mut scale = vec![0f32; m * k / block];
        let quantize_row = |((xr, qr), sr): ((&[f32], &mut [i8]), &mut [f32])| {
            for ((xb, qb), d) in xr.chunks_exact(block).zip(qr.chunks_exact_mut(block)).zip(sr.iter_mut()) {
                *d = if block == 256 { quantize_block_q8k(xb, qb) } else { quantize_block_q8_0(xb, qb) };
            }
        };
        x.par_chunks(k).zip(q.par_chunks_mut(k)).zip(scale.par_chunks_mut(k / block)).with_min_len(8).for_each(quantize_row);
        let group_sum: Vec<i32> = q.chunks_exact(group).map(|g| g.iter().map(|&v| v as i32).sum::<i32>()).collect();
        let group_sum16 = group_sum.iter().map(|&s| s as i16).collect();
        QuantActs { k, block, group, q, scale, group_sum, group_sum16 }
    }
}

fn quantize_block_q8k(x: &[f32], q: &mut [i8]) -> f32 {
    let (mut max, mut amax) = (0f32, 0f32);
    for &v in x {
        if v.abs() > amax {
            amax = v.abs();
            max = v;
        }
    }
    if amax == 0.0 {
        q.fill(0);
        return 0.0;
    }
    let iscale = -127.0 / max;
    for (o, &v) in q.iter_mut().zip(x) {
        *o = (iscale * v).round().min(127.0) as i8;
    }
    1.0 / iscale
}

fn quantize_block_q8_0(x: &[f32], q: &mut [i8]) -> f32 {
    let amax = x.iter().fold(0f32, |a, &v| a.max(v.abs()));
    let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
    for (o, &v) in q.iter_mut().zip(x) {
        *o = (v * id).round_ties_even() as i8;
    }
    f16::from_f32(amax / 127.0).to_f32()
}

/// 16 weight rows over the full k, row-interleaved: element e of row r is at
/// `q[((e / 4) * 16 + r) * 4 + e % 4]`; `sc`/`mn` are `[group][row]`, `d`/`neg_dmin`
/// are `[block][row]`.
pub struct Tile {
    pub k: usize,
    pub group: usize,
    pub block: usize,
    pub q: Vec<u8>,
    pub sc: Vec<i32>,
    pub mn: Vec<i32>,
    pub d: Vec<f32>,
    pub neg_dmin: Vec<f32>,
    row: RowParams,
}

/// One row's unpacked codes and parameters (scratch for `Tile::fill`).
struct RowParams {
    q: Vec<u8>,
    sc: Vec<i32>,
    mn: Vec<i32>,
    d: Vec<f32>,
    neg_dmin: Vec<f32>,
}

impl Tile {
    pub fn new(k: usize, group: usize, block: usize) -> Self {
        let (groups, blocks) = (k / group, k / block);
        Tile {
            k,
            group,
            block,
            q: vec![0; k * TILE_ROWS],
            sc: vec![0; groups * TILE_ROWS],
            mn: vec![0; groups * TILE_ROWS],
            d: vec![0.0; blocks * TILE_ROWS],
            neg_dmin: vec![0.0; blocks * TILE_ROWS],
            row: RowParams { q: vec![0; k], sc: vec![0; groups], mn: vec![0; groups], d: vec![0.0; blocks], neg_dmin: vec![0.0; blocks] },
        }
    }

    /// Makes the tile fit rows of length `k` with these group and block sizes.
    pub fn reshape(&mut self, k: usize, group: usize, block: usize) {
        if self.k != k || self.group != group || self.block != block {
            *self = Tile::new(k, group, block);
        }
    }

    /// The scalar unpacking, for comparison in tests.
    #[cfg(test)]
    fn fill_portable(&mut self, dtype: QuantType, rows: &[&[u8]]) {
        self.q.fill(0);
        for (r, bytes) in rows.iter().enumerate() {
            let p = &mut self.row;
            unpack_row(dtype, bytes, &mut p.q, &mut p.sc, &mut p.mn, &mut p.d, &mut p.neg_dmin);
            for (e4, chunk) in p.q.chunks_exact(4).enumerate() {
                let at = (e4 * TILE_ROWS + r) * 4;
                self.q[at..at + 4].copy_from_slice(chunk);
            }
        }
    }

    /// Unpacks `rows` (at most 16) consecutive rows of GGUF blocks; missing rows are zero.
    pub fn fill(&mut self, dtype: QuantType, rows: &[&[u8]]) {
        assert!(rows.len() <= TILE_ROWS);
        if rows.len() < TILE_ROWS {
            if !cfg!(target_arch = "x86_64") || !crate::cpu::has_avx512_vnni() {
                self.q.fill(0); // the SIMD fill writes zero rows itself
            }
            self.sc.fill(0);
            self.mn.fill(0);
            self.d.fill(0.0);
            self.neg_dmin.fill(0.0);
        }
        let (n_groups, n_blocks) = (self.k / self.group, self.k / self.block);
        #[cfg(target_arch = "x86_64")]
        let simd = crate::cpu::has_avx512_vnni();
        #[cfg(not(target_arch = "x86_64"))]
        let simd = false;
        if simd {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: avx512f/bw/vnni are present (checked); rows hold k elements each.
            unsafe {
                crate::tile_avx512::fill_codes_vnni(self, dtype, rows)
            };
        }
        if simd {
            self.fill_params(dtype, rows);
            return;
        }
        for (r, bytes) in rows.iter().enumerate() {
            let p = &mut self.row;
            unpack_row(dtype, bytes, &mut p.q, &mut p.sc, &mut p.mn, &mut p.d, &mut p.neg_dmin);
            for (e4, chunk) in p.q.chunks_exact(4).enumerate() {
                let at = (e4 * TILE_ROWS + r) * 4;
                self.q[at..at + 4].copy_from_slice(chunk);
            }
            for g in 0..n_groups {
                self.sc[g * TILE_ROWS + r] = p.sc[g];
                self.mn[g * TILE_ROWS + r] = p.mn[g];
            }
            for b in 0..n_blocks {
                self.d[b * TILE_ROWS + r] = p.d[b];
                self.neg_dmin[b * TILE_ROWS + r] = p.neg_dmin[b];
            }
        }
    }

    /// Writes the scales of `rows` straight into the `[group][row]` and `[block][row]` arrays.
    fn fill_params(&mut self, dtype: QuantType, rows: &[&[u8]]) {
        let (size, groups) = (dtype.block_bytes(), groups_per_block(dtype));
        let (mut sc, mut mn) = ([0i32; 16], [0i32; 16]);
        for (r, bytes) in rows.iter().enumerate() {
            for (b, block) in bytes.chunks_exact(size).enumerate() {
                let (d, neg_dmin) = match dtype {
                    QuantType::Q4K => {
                        let (s8, m8) = q4k_scale_bytes(block);
                        for g in 0..8 {
                            (sc[g], mn[g]) = (s8[g] as i32, m8[g] as i32);
                        }
                        superblock_scales(dtype, block)
                    }
                    _ => block_params(dtype, block, &mut sc, &mut mn),
                };
                for g in 0..groups {
                    let at = (b * groups + g) * TILE_ROWS + r;
                    (self.sc[at], self.mn[at]) = (sc[g], mn[g]);
                }
                (self.d[b * TILE_ROWS + r], self.neg_dmin[b * TILE_ROWS + r]) = (d, neg_dmin);
            }
        }
    }
}

/// Groups per weight block of a tile-layout type.
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
        other => unreachable!("tile_layout rejects {other}"),
    }
}

/// (d, -dmin) of a K-quant superblock, exactly as `block_params` gives them.
#[inline]
pub(crate) fn superblock_scales(dtype: QuantType, block: &[u8]) -> (f32, f32) {
    match dtype {
        QuantType::Q4K => (f16_at(block, 0), -f16_at(block, 2)),
        _ => {
            let d = f16_at(block, 208);
            (d, -d)
        }
    }
}

/// Decodes one row of blocks into unsigned codes, integer group scales and block scales.
pub(crate) fn unpack_row(
    dtype: QuantType,
    bytes: &[u8],
    q: &mut [u8],
    sc: &mut [i32],
    mn: &mut [i32],
    d: &mut [f32],
    neg_dmin: &mut [f32],
) {
    let (size, len, groups) = (dtype.block_bytes(), dtype.block_len(), groups_per_block(dtype));
    for (i, block) in bytes.chunks_exact(size).enumerate() {
        (d[i], neg_dmin[i]) = block_params(dtype, block, &mut sc[i * groups..], &mut mn[i * groups..]);
        unpack_codes(dtype, block, &mut q[i * len..(i + 1) * len]);
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
        other => unreachable!("tile_layout rejects {other}"),
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

/// `out[t * 16 + r] = dot(tile row r, activation row t)` for every token t (scalar reference).
pub fn tile_matmul_scalar(tile: &Tile, acts: &QuantActs, m: usize, out: &mut [f32]) {
    let (k, g_len, blk) = (tile.k, tile.group, tile.block);
    assert!(out.len() >= m * TILE_ROWS && acts.q.len() >= m * k && acts.k == k && acts.group == g_len && acts.block == blk);
    for t in 0..m {
        let a = &acts.q[t * k..(t + 1) * k];
        for r in 0..TILE_ROWS {
            let mut total = 0f32;
            for b in 0..k / blk {
                let (mut sum_a, mut sum_m) = (0i32, 0i32);
                for g in b * blk / g_len..(b + 1) * blk / g_len {
                    let isum: i32 = (g * g_len..(g + 1) * g_len)
                        .map(|e| tile.q[((e / 4) * TILE_ROWS + r) * 4 + e % 4] as i32 * a[e] as i32)
                        .sum();
                    sum_a += tile.sc[g * TILE_ROWS + r] * isum;
                    sum_m += tile.mn[g * TILE_ROWS + r] * acts.group_sum[t * k / g_len + g];
                }
                let (d, neg_dmin) = (tile.d[b * TILE_ROWS + r], tile.neg_dmin[b * TILE_ROWS + r]);
                total = add_block(total, sum_a, sum_m, d, neg_dmin, acts.scale[t * k / blk + b]);
            }
            out[t * TILE_ROWS + r] = total;
        }
    }
}

/// The tile product, with AVX-512 VNNI when the CPU has it.
pub fn tile_matmul(tile: &Tile, acts: &QuantActs, m: usize, out: &mut [f32]) {
    assert!(out.len() >= m * TILE_ROWS && acts.q.len() >= m * tile.k && acts.k == tile.k);
    assert!(acts.group == tile.group && acts.block == tile.block);
    #[cfg(target_arch = "x86_64")]
    {
        if crate::cpu::has_avx512_vnni() {
            // SAFETY: the CPU has avx512f and avx512vnni (checked); sizes were asserted above.
            unsafe { crate::tile_avx512::tile_matmul_vnni(tile, acts, m, out) };
            return;
        }
    }
    tile_matmul_scalar(tile, acts, m, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Random but well-formed blocks: random bytes with sane f16 scales patched in.
    fn random_row(rng: &mut impl Rng, dtype: QuantType, k: usize) -> Vec<u8> {
        let mut bytes: Vec<u8> = (0..dtype.bytes_for(k)).map(|_| rng.random()).collect();
        let scale_at: &[usize] = match dtype {
            QuantType::Q4K => &[0, 2],
            QuantType::Q6K => &[208],
            QuantType::Q4_1 => &[0, 2],
            _ => &[0],
        };
        for block in bytes.chunks_exact_mut(dtype.block_bytes()) {
            for &at in scale_at {
                block[at..at + 2].copy_from_slice(&f16::from_f32(rng.random_range(-0.05..0.05)).to_le_bytes());
            }
        }
        bytes
    }

    #[test]
    fn simd_tile_matches_scalar_reference() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        for dtype in [QuantType::Q4K, QuantType::Q6K, QuantType::Q4_1, QuantType::Q4_0, QuantType::Q8_0] {
            let (group, block) = tile_layout(dtype).unwrap();
            let k = if block == 256 { 512 } else { 96 };
            for (rows, m) in [(16usize, 9usize), (5, 4), (16, 1), (11, 7)] {
                let row_bytes: Vec<Vec<u8>> = (0..rows).map(|_| random_row(&mut rng, dtype, k)).collect();
                let refs: Vec<&[u8]> = row_bytes.iter().map(|r| r.as_slice()).collect();
                let mut tile = Tile::new(k, group, block);
                tile.fill(dtype, &refs);
                let mut portable = Tile::new(k, group, block);
                portable.fill_portable(dtype, &refs);
                assert_eq!(tile.q, portable.q, "{dtype} rows {rows}: SIMD tile codes");
                let x: Vec<f32> = (0..m * k).map(|_| rng.random_range(-4.0..4.0)).collect();
                let acts = QuantActs::quantize(&x, m, k, block, group);
                let mut fast = vec![0f32; m * TILE_ROWS];
                let mut slow = vec![1f32; m * TILE_ROWS];
                tile_matmul(&tile, &acts, m, &mut fast);
                tile_matmul_scalar(&tile, &acts, m, &mut slow);
                assert_eq!(fast, slow, "{dtype} rows {rows} m {m}: SIMD and scalar must agree bit for bit");
                // one row at a time gives the very same numbers
                for t in 0..m {
                    for (r, row) in refs.iter().enumerate() {
                        let single = crate::rowdot::row_dot(dtype, row, &acts, t);
                        assert_eq!(single.to_bits(), fast[t * TILE_ROWS + r].to_bits(), "{dtype} row {r} token {t}");
                    }
                }
                // padded rows are zero
                assert!(fast.chunks(TILE_ROWS).all(|t| t[rows..].iter().all(|&v| v == 0.0)));
            }
        }
    }

    #[test]
    fn k4_scales_unpack_like_ggml() {
        let s = [1u8, 2, 3, 4, 65, 66, 67, 200, 0x21, 0x43, 0x65, 0x87];
        assert_eq!(k4_scale_min(0, &s), (1, 65 & 63));
        assert_eq!(k4_scale_min(4, &s), ((0x21 & 0x0F) | ((1 >> 6) << 4), (0x21 >> 4) | ((65 >> 6) << 4)));
        assert_eq!(k4_scale_min(7, &s), ((0x87 & 0x0F) | ((4 >> 6) << 4), (0x87 >> 4) | ((200 >> 6) << 4)));
    }
}
