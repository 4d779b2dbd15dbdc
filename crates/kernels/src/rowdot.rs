//! One weight row times one activation row with exactly the tile path's arithmetic (integer
//! group sums, then the same fused float steps), so decoding a sequence alone or inside a
//! batch gives bit-identical logits.

use crate::tile::{add_block, block_params, groups_per_block, tile_layout, unpack_codes, QuantActs};
use crate::QuantType;

/// Elements handled per step: one K-quant superblock, or eight 32-blocks.
const SPAN: usize = 256;

/// Rows computed together: their float steps run side by side in vector lanes.
pub const ROWS: usize = 16;

/// `dot(weight row, activation row t)` for a tile-layout weight type.
pub fn row_dot(dtype: QuantType, row: &[u8], acts: &QuantActs, t: usize) -> f32 {
    let mut out = [0f32; ROWS];
    rows_dot(dtype, &[row], acts, t..t + 1, &mut RowScratch::default(), &mut out);
    out[0]
}

/// Weight blocks in one span at most (eight 32-blocks).
const MAX_BLOCKS: usize = SPAN / 32;

/// A span's per-block integers and scales for one row (see `tile::add_block`).
#[derive(Default, Clone, Copy)]
struct BlockSums {
    a: [i32; MAX_BLOCKS],
    m: [i32; MAX_BLOCKS],
    d: [f32; MAX_BLOCKS],
    neg_dmin: [f32; MAX_BLOCKS],
}

/// Per-block values of up to 16 rows and tokens, reused between calls: `a` and `m` are
/// `[token][block][row]`, `d` and `neg_dmin` are `[block][row]`.
#[derive(Default)]
pub struct RowScratch {
    pub(crate) a: Vec<i32>,
    pub(crate) m: Vec<i32>,
    pub(crate) d: Vec<f32>,
    pub(crate) neg_dmin: Vec<f32>,
}

/// Activation rows handled per call: each weight row's codes are decoded once for all.
pub const TOKENS: usize = 16;

/// `out[(t - tokens.start) * 16 + r] = dot(rows[r], activation row t)` for up to 16 rows of
/// a tile-layout type and up to 16 tokens. Each row is read front to back for its integer
/// sums; the float steps then run for all rows side by side.
pub fn rows_dot(
    dtype: QuantType,
    rows: &[&[u8]],
    acts: &QuantActs,
    tokens: std::ops::Range<usize>,
    scratch: &mut RowScratch,
    out: &mut [f32],
) {
    rows_dot_impl(dtype, rows, acts, tokens, scratch, out, crate::cpu::has_avx512_vnni())
}

fn rows_dot_impl(
    dtype: QuantType,
    rows: &[&[u8]],
    acts: &QuantActs,
    tokens: std::ops::Range<usize>,
    scratch: &mut RowScratch,
    out: &mut [f32],
    simd: bool,
) {
    assert!(rows.len() <= ROWS && tokens.len() <= TOKENS && out.len() >= tokens.len() * ROWS);
    let (_, block) = tile_layout(dtype).expect("rows_dot needs a tile layout type");
    let n_blocks = acts.k / block;
    // Lanes of rows past `rows.len()` keep stale values; their results are never read.
    for v in [&mut scratch.a, &mut scratch.m] {
        v.resize(v.len().max(TOKENS * n_blocks * ROWS), 0);
    }
    for v in [&mut scratch.d, &mut scratch.neg_dmin] {
        v.resize(v.len().max(n_blocks * ROWS), 0.0);
    }
    #[cfg(target_arch = "x86_64")]
    if simd && tokens.len() == 1 && crate::cpu::has_avx512_vnni() && !matches!(dtype, QuantType::Q4K | QuantType::Q6K) {
        // one token of small blocks: the float chain runs inline, nothing goes through scratch
        // rows in pairs: their float chains interleave, each in its own (unchanged) order
        // (measured: pairs 7% faster than single rows on SmolLM2 decode; fours slower again)
        let mut pairs = rows.chunks_exact(2);
        for (p, pair) in pairs.by_ref().enumerate() {
            // SAFETY: avx512f/bw/vnni are present (checked); each row holds k elements.
            let totals = unsafe { x86::small_block_rows_single::<2>(dtype, [pair[0], pair[1]], acts, tokens.start) };
            out[2 * p..2 * p + 2].copy_from_slice(&totals);
        }
        let done = rows.len() - pairs.remainder().len();
        for (r, row) in pairs.remainder().iter().enumerate() {
            // SAFETY: as above.
            out[done + r] = unsafe { x86::small_block_row_single(dtype, row, acts, tokens.start) };
        }
        return;
    }
    for (r, row) in rows.iter().enumerate() {
        #[cfg(target_arch = "x86_64")]
        if simd && crate::cpu::has_avx512_vnni() {
            // SAFETY: avx512f/bw/vnni are present (checked); the row holds k elements of
            // whole blocks; the scratch was sized for 16 tokens of n_blocks blocks above.
            unsafe {
                if matches!(dtype, QuantType::Q4K | QuantType::Q6K) {
                    x86::kquant_row(dtype, row, acts, tokens.clone(), r, scratch)
                } else {
                    x86::small_block_row(dtype, row, acts, tokens.clone(), r, scratch)
                }
            };
            continue;
        }
        for t in tokens.clone() {
            row_sums_portable(dtype, row, acts, t, (t - tokens.start) * n_blocks * ROWS, r, scratch);
        }
    }
    for (i, t) in tokens.enumerate() {
        let mut total = [0f32; ROWS];
        for b in 0..n_blocks {
            let dx = acts.scale[t * n_blocks + b];
            let (at, at_t) = (b * ROWS, (i * n_blocks + b) * ROWS);
            for r in 0..ROWS {
                let (a, m) = (scratch.a[at_t + r], scratch.m[at_t + r]);
                total[r] = add_block(total[r], a, m, scratch.d[at + r], scratch.neg_dmin[at + r], dx);
            }
        }
        out[i * ROWS..(i + 1) * ROWS].copy_from_slice(&total);
    }
}

/// One row's block sums for token t without SIMD (the reference the SIMD path must equal).
fn row_sums_portable(dtype: QuantType, row: &[u8], acts: &QuantActs, t: usize, base: usize, r: usize, s: &mut RowScratch) {
    let (group, block) = tile_layout(dtype).expect("tile type");
    let k = acts.k;
    let a_row = &acts.q[t * k..(t + 1) * k];
    let group_sums = &acts.group_sum[t * k / group..(t + 1) * k / group];
    let mut acts_pad = [0i8; SPAN];
    let mut sums = BlockSums::default();
    for start in (0..k).step_by(SPAN) {
        let n = SPAN.min(k - start);
        let a = if n == SPAN {
            &a_row[start..start + SPAN]
        } else {
            // zero activations make the missing tail contribute nothing
            acts_pad[..n].copy_from_slice(&a_row[start..start + n]);
            acts_pad[n..].fill(0);
            &acts_pad[..]
        };
        let gsums = &group_sums[start / group..(start + n) / group];
        span_block_sums(dtype, &row[dtype.bytes_for(start)..dtype.bytes_for(start + n)], a, gsums, &mut sums);
        for i in 0..n / block {
            let b = start / block + i;
            (s.a[base + b * ROWS + r], s.m[base + b * ROWS + r]) = (sums.a[i], sums.m[i]);
            (s.d[b * ROWS + r], s.neg_dmin[b * ROWS + r]) = (sums.d[i], sums.neg_dmin[i]);
        }
    }
}

/// Fills one row's block sums for a span of up to 256 elements.
fn span_block_sums(dtype: QuantType, bytes: &[u8], acts: &[i8], group_sums: &[i32], out: &mut BlockSums) {
    let per_block = groups_per_block(dtype);
    let (mut sc, mut mn) = ([0i32; SPAN / 16], [0i32; SPAN / 16]);
    for (i, wblock) in bytes.chunks_exact(dtype.block_bytes()).enumerate() {
        (out.d[i], out.neg_dmin[i]) = block_params(dtype, wblock, &mut sc[i * per_block..], &mut mn[i * per_block..]);
    }
    let group = tile_layout(dtype).expect("tile type").0;
    if per_block > 1 {
        // one K-quant superblock: A weighs each group by its integer scale
        out.a[0] = scaled_sum(dtype, bytes, acts, group, &sc);
        out.m[0] = mn.iter().zip(group_sums).map(|(m, g)| m * g).sum();
    } else {
        let mut isums = [0i32; SPAN / 16];
        span_sums(dtype, bytes, acts, group, &mut isums);
        let n_blocks = bytes.len() / dtype.block_bytes();
        out.a[..n_blocks].copy_from_slice(&isums[..n_blocks]);
        out.m[..n_blocks].copy_from_slice(&group_sums[..n_blocks]);
    }
}

/// `sum over groups g of sc[g] * (codes . acts over g)` for one K-quant superblock.
fn scaled_sum(dtype: QuantType, bytes: &[u8], acts: &[i8], group: usize, sc: &[i32; SPAN / 16]) -> i32 {
    let mut isums = [0i32; SPAN / 16];
    span_sums(dtype, bytes, acts, group, &mut isums);
    isums.iter().zip(sc).take(SPAN / group).map(|(i, s)| i * s).sum()
}

/// The four 64-code vectors of up to 256 elements of weight blocks (AVX-512 CPUs only).
#[cfg(target_arch = "x86_64")]
pub(crate) unsafe fn span_codes(dtype: QuantType, bytes: &[u8]) -> [std::arch::x86_64::__m512i; 4] {
    // SAFETY: the caller checked avx512f/bw; `bytes` holds whole blocks of `dtype`.
    unsafe { x86::codes(dtype, bytes) }
}

/// Integer group sums of up to 256 elements of weight blocks against activations (256
/// values, zero past the row's end); scalar, the reference the SIMD kernels must equal.
fn span_sums(dtype: QuantType, bytes: &[u8], acts: &[i8], group: usize, out: &mut [i32; SPAN / 16]) {
    let mut codes = [0u8; SPAN];
    let len = dtype.block_len();
    for (i, wblock) in bytes.chunks_exact(dtype.block_bytes()).enumerate() {
        unpack_codes(dtype, wblock, &mut codes[i * len..(i + 1) * len]);
    }
    group_sums_scalar(&codes, acts, group, out)
}

fn group_sums_scalar(codes: &[u8; SPAN], acts: &[i8], group: usize, out: &mut [i32; SPAN / 16]) {
    for (g, o) in out.iter_mut().enumerate().take(SPAN / group) {
        *o = (g * group..(g + 1) * group).map(|e| codes[e] as i32 * acts[e] as i32).sum();
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::SPAN;
    use crate::tile::QuantActs;
    use crate::QuantType;
    use std::arch::x86_64::*;
    use std::ops::Range;

    /// A, M, d and -dmin of every superblock of one K-quant row for `tokens`, into row
    /// lane `r` of the scratch; each superblock's codes and scales are decoded once.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,f16c")]
    pub(super) unsafe fn kquant_row(dtype: QuantType, row: &[u8], acts: &QuantActs, tokens: Range<usize>, r: usize, out: &mut super::RowScratch) {
        let (size, k) = (dtype.block_bytes(), acts.k);
        let groups = if dtype == QuantType::Q4K { 8 } else { 16 };
        let n_blocks = k / SPAN;
        assert!(row.len() >= n_blocks * size && tokens.end * k <= acts.q.len() && r < super::ROWS);
        assert!(out.a.len() >= tokens.len() * n_blocks * super::ROWS && out.d.len() >= n_blocks * super::ROWS);
        for b in 0..n_blocks {
            let block = &row[b * size..(b + 1) * size];
            let prepared = prepare_superblock(dtype, block);
            let (d, neg_dmin) = crate::tile::superblock_scales(dtype, block);
            *out.d.get_unchecked_mut(b * super::ROWS + r) = d;
            *out.neg_dmin.get_unchecked_mut(b * super::ROWS + r) = neg_dmin;
            for (i, t) in tokens.clone().enumerate() {
                let acts_block = &acts.q[t * k + b * SPAN..t * k + (b + 1) * SPAN];
                let sums = &acts.group_sum[(t * k + b * SPAN) / (SPAN / groups)..];
                let (a, m) = superblock_sums(&prepared, acts_block, sums);
                let at = (i * n_blocks + b) * super::ROWS + r;
                *out.a.get_unchecked_mut(at) = a;
                *out.m.get_unchecked_mut(at) = m;
            }
        }
    }

    /// The same for a row of 32-element blocks (Q4_0, Q4_1, Q8_0): A is the block's integer
    /// dot product, M its activation sum.
    pub(super) unsafe fn small_block_row(dtype: QuantType, row: &[u8], acts: &QuantActs, tokens: Range<usize>, r: usize, out: &mut super::RowScratch) {
        match dtype {
            QuantType::Q4_1 => small_blocks::<Q4_1>(row, acts, tokens, r, out),
            QuantType::Q4_0 => small_blocks::<Q4_0>(row, acts, tokens, r, out),
            _ => small_blocks::<Q8_0>(row, acts, tokens, r, out),
        }
    }

    /// `dot(row, activation row t)` for 32-element blocks, the float steps done inline in
    /// block order (the same `tile::add_block` sequence as every other path).
    pub(super) unsafe fn small_block_row_single(dtype: QuantType, row: &[u8], acts: &QuantActs, t: usize) -> f32 {
        small_block_rows_single::<1>(dtype, [row], acts, t)[0]
    }

    /// `R` rows at once for token t; each result equals a `small_block_row_single` call (every
    /// row keeps its own summation order; only the rows' float chains interleave).
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,f16c")]
    pub(super) unsafe fn small_block_rows_single<const R: usize>(dtype: QuantType, rows: [&[u8]; R], acts: &QuantActs, t: usize) -> [f32; R] {
        match dtype {
            QuantType::Q4_1 => small_blocks_multi::<Q4_1, R>(rows, acts, t),
            QuantType::Q4_0 => small_blocks_multi::<Q4_0, R>(rows, acts, t),
            _ => small_blocks_multi::<Q8_0, R>(rows, acts, t),
        }
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,f16c")]
    unsafe fn small_blocks_multi<K: SmallBlock, const R: usize>(rows: [&[u8]; R], acts: &QuantActs, t: usize) -> [f32; R] {
        let (size, k) = (K::SIZE, acts.k);
        let n_blocks = k / 32;
        assert!(rows.iter().all(|r| r.len() >= n_blocks * size) && (t + 1) * k <= acts.q.len());
        let a_row = &acts.q[t * k..(t + 1) * k];
        let (scales, sums) = (&acts.scale[t * n_blocks..(t + 1) * n_blocks], &acts.group_sum[t * n_blocks..(t + 1) * n_blocks]);
        let mut padded = [0i8; SPAN];
        let mut isums = [[0i32; SPAN / 16]; R];
        let mut totals = [0f32; R];
        for start in (0..n_blocks).step_by(8) {
            let n = 8.min(n_blocks - start);
            let acts_span = span_acts(a_row, start, n, &mut padded);
            let spans: [&[u8]; R] = std::array::from_fn(|r| &rows[r][start * size..(start + n) * size]);
            for (bytes, isum) in spans.iter().zip(isums.iter_mut()) {
                // blocks past the end repeat the first one; their activations are zero
                let block = |i: usize| &bytes[if i < n { i } else { 0 } * size..][..size];
                let code: [__m512i; 4] = std::array::from_fn(|c| K::pair(block(2 * c), block(2 * c + 1)));
                reduce_groups_of_32(dots(code, acts_span), isum);
            }
            for i in 0..n {
                let (m_i, dx) = (sums[start + i], scales[start + i]);
                for r in 0..R {
                    let (d, neg_dmin) = small_block_scales::<K>(&spans[r][i * size..(i + 1) * size]);
                    totals[r] = crate::tile::add_block(totals[r], isums[r][i], m_i, d, neg_dmin, dx);
                }
            }
        }
        totals
    }

    /// The 256 activations of blocks `start .. start + n` of a row, zero-padded past `n`.
    #[inline]
    fn span_acts<'a>(a_row: &'a [i8], start: usize, n: usize, padded: &'a mut [i8; SPAN]) -> &'a [i8] {
        if n == 8 {
            &a_row[start * 32..start * 32 + SPAN]
        } else {
            padded[..n * 32].copy_from_slice(&a_row[start * 32..(start + n) * 32]);
            padded[n * 32..].fill(0);
            &padded[..]
        }
    }

    /// (d, -dmin) of one block, as `tile::block_params` gives them.
    #[inline]
    fn small_block_scales<K: SmallBlock>(block: &[u8]) -> (f32, f32) {
        let d = half::f16::from_le_bytes([block[0], block[1]]).to_f32();
        (d, K::neg_dmin(block, d))
    }

    /// How one 32-element block type decodes (monomorphized, so the loops are branch-free).
    trait SmallBlock {
        const SIZE: usize;
        /// Codes of two blocks in one vector.
        unsafe fn pair(b0: &[u8], b1: &[u8]) -> __m512i;
        /// -dmin as `tile::block_params` gives it.
        fn neg_dmin(block: &[u8], d: f32) -> f32;
    }
    struct Q4_0;
    struct Q4_1;
    struct Q8_0;
    impl SmallBlock for Q4_0 {
        const SIZE: usize = 18;
        unsafe fn pair(b0: &[u8], b1: &[u8]) -> __m512i {
            q4_pair(&b0[2..18], &b1[2..18])
        }
        fn neg_dmin(_: &[u8], d: f32) -> f32 {
            -8.0 * d
        }
    }
    impl SmallBlock for Q4_1 {
        const SIZE: usize = 20;
        unsafe fn pair(b0: &[u8], b1: &[u8]) -> __m512i {
            q4_pair(&b0[4..20], &b1[4..20])
        }
        fn neg_dmin(block: &[u8], _: f32) -> f32 {
            half::f16::from_le_bytes([block[2], block[3]]).to_f32()
        }
    }
    impl SmallBlock for Q8_0 {
        const SIZE: usize = 34;
        unsafe fn pair(b0: &[u8], b1: &[u8]) -> __m512i {
            q8_0_pair(b0, b1)
        }
        fn neg_dmin(_: &[u8], d: f32) -> f32 {
            -128.0 * d
        }
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,f16c")]
    unsafe fn small_blocks<K: SmallBlock>(row: &[u8], acts: &QuantActs, tokens: Range<usize>, r: usize, out: &mut super::RowScratch) {
        let (size, k) = (K::SIZE, acts.k);
        let n_blocks = k / 32;
        assert!(row.len() >= n_blocks * size && tokens.end * k <= acts.q.len() && r < super::ROWS);
        assert!(out.a.len() >= tokens.len() * n_blocks * super::ROWS && out.d.len() >= n_blocks * super::ROWS);
        let mut padded = [0i8; SPAN];
        let mut isums = [0i32; SPAN / 16];
        for start in (0..n_blocks).step_by(8) {
            let n = 8.min(n_blocks - start);
            let bytes = &row[start * size..(start + n) * size];
            // blocks past the end repeat the first one; their activations are zero
            let block = |i: usize| &bytes[if i < n { i } else { 0 } * size..][..size];
            let code: [__m512i; 4] = std::array::from_fn(|c| K::pair(block(2 * c), block(2 * c + 1)));
            for i in 0..n {
                let (d, neg_dmin) = small_block_scales::<K>(&bytes[i * size..(i + 1) * size]);
                *out.d.get_unchecked_mut((start + i) * super::ROWS + r) = d;
                *out.neg_dmin.get_unchecked_mut((start + i) * super::ROWS + r) = neg_dmin;
            }
            for (j, t) in tokens.clone().enumerate() {
                let a_row = &acts.q[t * k..(t + 1) * k];
                reduce_groups_of_32(dots(code, span_acts(a_row, start, n, &mut padded)), &mut isums);
                for i in 0..n {
                    let at = (j * n_blocks + start + i) * super::ROWS + r;
                    *out.a.get_unchecked_mut(at) = isums[i];
                    *out.m.get_unchecked_mut(at) = acts.group_sum[t * n_blocks + start + i];
                }
            }
        }
    }

    /// A K-quant superblock's codes and integer scales, decoded once for several tokens.
    struct Superblock {
        codes: [__m512i; 4],
        /// Each lane's group scale, per code vector.
        lane_scales: [__m512i; 4],
        scales: __m512i,
        mins: __m256i,
        group: usize,
    }

    #[target_feature(enable = "avx512f,avx512bw,avx2")]
    #[inline]
    unsafe fn prepare_superblock(dtype: QuantType, block: &[u8]) -> Superblock {
        let (codes, scales, mins, group) = if dtype == QuantType::Q4K {
            assert!(block.len() >= 144);
            let (sc, mn) = q4k_scales(block);
            // 8 scales in lanes 0..8 (the permutes only read those)
            let scales = _mm512_castsi256_si512(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(sc as i64)));
            (q4k_codes(block), scales, _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(mn as i64)), 32)
        } else {
            assert!(block.len() >= 210);
            let scales = _mm512_cvtepi8_epi32(_mm_loadu_si128(block.as_ptr().add(192) as *const __m128i));
            (q6k_codes(block), scales, _mm256_setzero_si256(), 16)
        };
        let table = if group == 16 { &GROUP_OF_LANE_16 } else { &GROUP_OF_LANE_32 };
        let lane_scales = std::array::from_fn(|i| {
            // SAFETY: the table rows are 16 i32 each.
            unsafe { _mm512_permutexvar_epi32(_mm512_loadu_si512(table[i].as_ptr() as *const _), scales) }
        });
        Superblock { codes, lane_scales, scales, mins, group }
    }

    /// (A, M) of a prepared superblock against one token's 256 activations and group sums.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2")]
    #[inline]
    unsafe fn superblock_sums(sb: &Superblock, acts: &[i8], group_sums: &[i32]) -> (i32, i32) {
        assert!(acts.len() >= SPAN && group_sums.len() >= SPAN / sb.group);
        let d = dots(sb.codes, acts);
        let mut acc = _mm512_setzero_si512();
        for (v, lane_scale) in d.iter().zip(&sb.lane_scales) {
            acc = _mm512_add_epi32(acc, _mm512_mullo_epi32(*v, *lane_scale));
        }
        let m8 = if sb.group == 32 {
            _mm256_mullo_epi32(sb.mins, _mm256_loadu_si256(group_sums.as_ptr() as *const __m256i))
        } else {
            // Q6_K: mn = 32 * sc
            let p = _mm512_mullo_epi32(sb.scales, _mm512_loadu_si512(group_sums.as_ptr() as *const _));
            let p8 = _mm256_add_epi32(_mm512_castsi512_si256(p), _mm512_extracti64x4_epi64(p, 1));
            _mm256_slli_epi32(p8, 5)
        };
        // reduce A and M together: 16 -> 8 lanes for A, then pairwise adds of both
        let a8 = _mm256_add_epi32(_mm512_castsi512_si256(acc), _mm512_extracti64x4_epi64(acc, 1));
        let h = _mm256_hadd_epi32(a8, m8); // [a a m m | a a m m]
        let h = _mm256_hadd_epi32(h, h); // [a m a m | a m a m]
        let both = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
        (_mm_cvtsi128_si32(both), _mm_extract_epi32(both, 1))
    }

    #[inline]
    fn q4k_scales(block: &[u8]) -> (u64, u64) {
        let (sc, mn) = crate::tile::q4k_scale_bytes(block);
        (u64::from_le_bytes(sc), u64::from_le_bytes(mn))
    }

    /// Group of lane j of dot i: each dot covers 64 elements, a lane 4 of them.
    const fn group_of_lane(group: usize) -> [[i32; 16]; 4] {
        let mut table = [[0i32; 16]; 4];
        let mut i = 0;
        while i < 4 {
            let mut lane = 0;
            while lane < 16 {
                table[i][lane] = ((64 * i + 4 * lane) / group) as i32;
                lane += 1;
            }
            i += 1;
        }
        table
    }
    static GROUP_OF_LANE_16: [[i32; 16]; 4] = group_of_lane(16);
    static GROUP_OF_LANE_32: [[i32; 16]; 4] = group_of_lane(32);

    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    #[inline]
    pub(super) unsafe fn dots(codes: [__m512i; 4], acts: &[i8]) -> [__m512i; 4] {
        std::array::from_fn(|i| {
            // SAFETY: i < 4, so bytes i*64 .. i*64+64 of the 256 activations exist.
            unsafe {
                let a = _mm512_loadu_si512(acts.as_ptr().add(i * 64) as *const _);
                _mm512_dpbusd_epi32(_mm512_setzero_si512(), codes[i], a)
            }
        })
    }

    /// The four 64-byte code vectors of a span, straight from the GGUF bytes.
    #[target_feature(enable = "avx512f,avx512bw,avx2")]
    #[inline]
    pub(crate) unsafe fn codes(dtype: QuantType, bytes: &[u8]) -> [__m512i; 4] {
        match dtype {
            QuantType::Q4K => q4k_codes(bytes),
            QuantType::Q6K => q6k_codes(bytes),
            _ => {
                // 32-element blocks, two per vector; a missing block repeats the first one
                // (its activations are zero, so it adds nothing)
                let size = dtype.block_bytes();
                let n = bytes.len() / size;
                let block = |i: usize| &bytes[if i < n { i } else { 0 } * size..][..size];
                std::array::from_fn(|c| match dtype {
                    QuantType::Q8_0 => q8_0_pair(block(2 * c), block(2 * c + 1)),
                    QuantType::Q4_1 => q4_pair(&block(2 * c)[4..20], &block(2 * c + 1)[4..20]),
                    _ => q4_pair(&block(2 * c)[2..18], &block(2 * c + 1)[2..18]),
                })
            }
        }
    }

    /// Q4_K: each 32 bytes hold group 2j (low nibbles) and group 2j+1 (high nibbles).
    #[target_feature(enable = "avx512f,avx2")]
    unsafe fn q4k_codes(block: &[u8]) -> [__m512i; 4] {
        assert!(block.len() >= 144);
        let mask = _mm256_set1_epi8(0x0F);
        std::array::from_fn(|j| {
            // SAFETY: bytes 16 + 32j .. 48 + 32j are inside the 144-byte block.
            unsafe {
                let q = _mm256_loadu_si256(block.as_ptr().add(16 + 32 * j) as *const __m256i);
                let lo = _mm256_and_si256(q, mask);
                let hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), mask);
                _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1)
            }
        })
    }

    /// Q6_K: low nibbles from ql, two high bits from qh, 128 codes per half.
    #[target_feature(enable = "avx512f,avx2")]
    unsafe fn q6k_codes(block: &[u8]) -> [__m512i; 4] {
        assert!(block.len() >= 210);
        let (m4, m2) = (_mm256_set1_epi8(0x0F), _mm256_set1_epi8(3));
        let mut out = [_mm512_setzero_si512(); 4];
        for half in 0..2 {
            // SAFETY: ql half = 64 bytes at 64*half, qh half = 32 bytes at 128 + 32*half.
            let (a, b, h) = (
                _mm256_loadu_si256(block.as_ptr().add(64 * half) as *const __m256i),
                _mm256_loadu_si256(block.as_ptr().add(64 * half + 32) as *const __m256i),
                _mm256_loadu_si256(block.as_ptr().add(128 + 32 * half) as *const __m256i),
            );
            let high = |shift: i32| {
                let bits = match shift {
                    0 => h,
                    2 => _mm256_srli_epi16(h, 2),
                    4 => _mm256_srli_epi16(h, 4),
                    _ => _mm256_srli_epi16(h, 6),
                };
                _mm256_slli_epi16(_mm256_and_si256(bits, m2), 4)
            };
            let c0 = _mm256_or_si256(_mm256_and_si256(a, m4), high(0));
            let c1 = _mm256_or_si256(_mm256_and_si256(b, m4), high(2));
            let c2 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(a, 4), m4), high(4));
            let c3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(b, 4), m4), high(6));
            out[2 * half] = _mm512_inserti64x4(_mm512_castsi256_si512(c0), c1, 1);
            out[2 * half + 1] = _mm512_inserti64x4(_mm512_castsi256_si512(c2), c3, 1);
        }
        out
    }

    /// Two Q4_0/Q4_1 blocks: [low nibbles 0, high nibbles 0, low 1, high 1].
    #[target_feature(enable = "avx512f,avx2")]
    #[inline]
    unsafe fn q4_pair(qs0: &[u8], qs1: &[u8]) -> __m512i {
        assert!(qs0.len() >= 16 && qs1.len() >= 16);
        let mask = _mm256_set1_epi8(0x0F);
        let packed = _mm256_set_m128i(
            _mm_loadu_si128(qs1.as_ptr() as *const __m128i),
            _mm_loadu_si128(qs0.as_ptr() as *const __m128i),
        );
        let lo = _mm256_and_si256(packed, mask);
        let hi = _mm256_and_si256(_mm256_srli_epi16(packed, 4), mask);
        let both = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
        _mm512_shuffle_i64x2(both, both, 0b11_01_10_00)
    }

    /// Two Q8_0 blocks as unsigned codes q + 128.
    #[target_feature(enable = "avx512f,avx2")]
    #[inline]
    unsafe fn q8_0_pair(b0: &[u8], b1: &[u8]) -> __m512i {
        assert!(b0.len() >= 34 && b1.len() >= 34);
        let flip = _mm512_set1_epi8(-128);
        let both = _mm512_inserti64x4(
            _mm512_castsi256_si512(_mm256_loadu_si256(b0.as_ptr().add(2) as *const __m256i)),
            _mm256_loadu_si256(b1.as_ptr().add(2) as *const __m256i),
            1,
        );
        _mm512_xor_si512(both, flip)
    }

    /// Sums of 32-element groups from four 64-byte dots: a transposing reduction leaves in
    /// 128-bit lane L, for dots 0..4, the sum of that lane's four partial sums; groups 2i
    /// and 2i+1 are lanes 0+1 and 2+3 of dot i.
    #[target_feature(enable = "avx512f")]
    #[inline]
    pub(super) unsafe fn reduce_groups_of_32(v: [__m512i; 4], out: &mut [i32; SPAN / 16]) {
        let h0 = _mm512_add_epi32(_mm512_unpacklo_epi32(v[0], v[1]), _mm512_unpackhi_epi32(v[0], v[1]));
        let h1 = _mm512_add_epi32(_mm512_unpacklo_epi32(v[2], v[3]), _mm512_unpackhi_epi32(v[2], v[3]));
        let u = _mm512_add_epi32(_mm512_unpacklo_epi64(h0, h1), _mm512_unpackhi_epi64(h0, h1));
        let pairs = _mm512_add_epi32(u, _mm512_shuffle_i64x2(u, u, 0b10_11_00_01));
        let mut lanes = [0i32; 16];
        _mm512_storeu_si512(lanes.as_mut_ptr() as *mut _, pairs);
        for i in 0..4 {
            out[2 * i] = lanes[i];
            out[2 * i + 1] = lanes[8 + i];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn many_tokens_at_once_equal_one_at_a_time_with_and_without_simd() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(22);
        for dtype in [QuantType::Q4K, QuantType::Q6K, QuantType::Q4_1, QuantType::Q4_0, QuantType::Q8_0] {
            let (group, block) = tile_layout(dtype).unwrap();
            let k = if block == 256 { 768 } else { 288 };
            let rows: Vec<Vec<u8>> = (0..5)
                .map(|_| {
                    let mut bytes: Vec<u8> = (0..dtype.bytes_for(k)).map(|_| rng.random()).collect();
                    // keep f16 scales finite
                    for b in bytes.chunks_exact_mut(dtype.block_bytes()) {
                        let at = if dtype == QuantType::Q6K { 208 } else { 0 };
                        b[at + 1] &= 0x3b;
                        if matches!(dtype, QuantType::Q4K | QuantType::Q4_1) {
                            b[3] &= 0x3b;
                        }
                    }
                    bytes
                })
                .collect();
            let refs: Vec<&[u8]> = rows.iter().map(|r| r.as_slice()).collect();
            let m = 7;
            let x: Vec<f32> = (0..m * k).map(|_| rng.random_range(-3.0..3.0)).collect();
            let acts = QuantActs::quantize(&x, m, k, block, group);
            let mut together = vec![0f32; m * ROWS];
            rows_dot(dtype, &refs, &acts, 0..m, &mut RowScratch::default(), &mut together);
            let mut portable = vec![0f32; m * ROWS];
            rows_dot_impl(dtype, &refs, &acts, 0..m, &mut RowScratch::default(), &mut portable, false);
            for t in 0..m {
                // one token over five rows: rows go in pairs plus a remainder on the SIMD path
                let mut single = vec![0f32; ROWS];
                rows_dot(dtype, &refs, &acts, t..t + 1, &mut RowScratch::default(), &mut single);
                for r in 0..refs.len() {
                    let alone = row_dot(dtype, refs[r], &acts, t);
                    assert_eq!(alone.to_bits(), single[r].to_bits(), "{dtype} single token t {t} r {r}");
                    assert_eq!(alone.to_bits(), together[t * ROWS + r].to_bits(), "{dtype} t {t} r {r}");
                    assert_eq!(alone.to_bits(), portable[t * ROWS + r].to_bits(), "{dtype} portable t {t} r {r}");
                }
            }
        }
    }

    /// The SIMD code builders, VNNI dots and group reduction against the scalar unpacking and
    /// sums, on random bytes, full and partial spans.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn simd_span_codes_and_sums_equal_scalar() {
        if !crate::cpu::has_avx512_vnni() {
            return;
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(21);
        for dtype in [QuantType::Q4K, QuantType::Q6K, QuantType::Q4_1, QuantType::Q4_0, QuantType::Q8_0] {
            let group = tile_layout(dtype).unwrap().0;
            for n in [SPAN, 64, 32, 160] {
                if n % dtype.block_len() != 0 {
                    continue;
                }
                let bytes: Vec<u8> = (0..dtype.bytes_for(n)).map(|_| rng.random()).collect();
                let mut acts = [0i8; SPAN];
                for a in &mut acts[..n] {
                    *a = rng.random_range(-127..=127);
                }
                let mut codes = [0u8; SPAN];
                let len = dtype.block_len();
                for (i, b) in bytes.chunks_exact(dtype.block_bytes()).enumerate() {
                    unpack_codes(dtype, b, &mut codes[i * len..(i + 1) * len]);
                }
                // SAFETY: avx512f/bw/vnni are present (checked above).
                let simd_codes = unsafe { span_codes(dtype, &bytes) };
                let mut simd_bytes = [0u8; SPAN];
                for (i, v) in simd_codes.iter().enumerate() {
                    // SAFETY: 64 bytes at i * 64 are inside the 256-byte buffer.
                    unsafe { std::arch::x86_64::_mm512_storeu_si512(simd_bytes.as_mut_ptr().add(i * 64) as *mut _, *v) };
                }
                assert_eq!(simd_bytes[..n], codes[..n], "{dtype} n={n}: codes");
                let mut slow = [0i32; SPAN / 16];
                group_sums_scalar(&codes, &acts, group, &mut slow);
                if group == 32 {
                    let mut fast = [0i32; SPAN / 16];
                    // SAFETY: as above; acts holds 256 values.
                    unsafe { x86::reduce_groups_of_32(x86::dots(simd_codes, &acts), &mut fast) };
                    assert_eq!(fast[..n / 32], slow[..n / 32], "{dtype} n={n}: sums");
                }
            }
        }
    }
}
