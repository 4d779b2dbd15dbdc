//! AVX-512 VNNI kernel for the tile product: 16 weight rows in the lanes of one register,
//! eight (or four, or one) tokens at a time; integer group sums scaled by integer group scales, then per
//! block the same float steps as `tile::add_block`.

#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::*;

use crate::tile::{QuantActs, Tile, TILE_ROWS};

/// See `tile::tile_matmul_scalar` for the meaning; the caller checked sizes and CPU features.
#[target_feature(enable = "avx512f,avx512vnni")]
pub(crate) unsafe fn tile_matmul_vnni(tile: &Tile, acts: &QuantActs, m: usize, out: &mut [f32]) {
    let mut t = 0;
    while t + 8 <= m {
        tokens::<8>(tile, acts, t, out);
        t += 8;
    }
    while t + 4 <= m {
        tokens::<4>(tile, acts, t, out);
        t += 4;
    }
    while t < m {
        tokens::<1>(tile, acts, t, out);
        t += 1;
    }
}

#[target_feature(enable = "avx512f,avx512vnni")]
#[inline]
unsafe fn tokens<const T: usize>(tile: &Tile, acts: &QuantActs, t0: usize, out: &mut [f32]) {
    let (k, g_len, blk) = (tile.k, tile.group, tile.block);
    let steps = g_len / 4;
    let groups_per_block = blk / g_len;
    let (n_groups, n_blocks) = (k / g_len, k / blk);
    let w_base = tile.q.as_ptr();
    let a_rows: [*const i8; T] = std::array::from_fn(|i| acts.q.as_ptr().add((t0 + i) * k));
    let mut total = [_mm512_setzero_ps(); T];
    for b in 0..n_blocks {
        let mut sum_a = [_mm512_setzero_si512(); T];
        let groups = b * groups_per_block..(b + 1) * groups_per_block;
        for g in groups.clone() {
            let mut isum = [_mm512_setzero_si512(); T];
            for s in 0..steps {
                let e4 = g * steps + s;
                // SAFETY: e4 < k / 4 and the tile holds k * 16 bytes; activation rows hold k bytes.
                let w = _mm512_loadu_si512(w_base.add(e4 * 64) as *const _);
                for i in 0..T {
                    let a = _mm512_set1_epi32(std::ptr::read_unaligned(a_rows[i].add(e4 * 4) as *const i32));
                    isum[i] = _mm512_dpbusd_epi32(isum[i], w, a);
                }
            }
            let sc = _mm512_loadu_si512(tile.sc.as_ptr().add(g * TILE_ROWS) as *const _);
            for i in 0..T {
                sum_a[i] = _mm512_add_epi32(sum_a[i], _mm512_mullo_epi32(isum[i], sc));
            }
        }
        // M after A, so fewer registers are live inside the group loop
        let mut sum_m = [_mm512_setzero_si512(); T];
        for g in groups {
            let mn = _mm512_loadu_si512(tile.mn.as_ptr().add(g * TILE_ROWS) as *const _);
            for i in 0..T {
                let group_sum = _mm512_set1_epi32(*acts.group_sum.get_unchecked((t0 + i) * n_groups + g));
                sum_m[i] = _mm512_add_epi32(sum_m[i], _mm512_mullo_epi32(mn, group_sum));
            }
        }
        let d = _mm512_loadu_ps(tile.d.as_ptr().add(b * TILE_ROWS));
        let neg_dmin = _mm512_loadu_ps(tile.neg_dmin.as_ptr().add(b * TILE_ROWS));
        for i in 0..T {
            // tile::add_block, lane by lane
            let dx = _mm512_set1_ps(*acts.scale.get_unchecked((t0 + i) * n_blocks + b));
            let with_min = _mm512_fmadd_ps(_mm512_mul_ps(dx, neg_dmin), _mm512_cvtepi32_ps(sum_m[i]), total[i]);
            total[i] = _mm512_fmadd_ps(_mm512_mul_ps(dx, d), _mm512_cvtepi32_ps(sum_a[i]), with_min);
        }
    }
    for (i, sum) in total.iter().enumerate() {
        // SAFETY: out holds at least m * 16 floats and t0 + i < m.
        _mm512_storeu_ps(out.as_mut_ptr().add((t0 + i) * TILE_ROWS), *sum);
    }
}

/// Fills a tile from up to 16 rows: each row's 64-code vectors come from `rowdot`'s SIMD
/// decoders, and a 16x16 transpose of 4-byte units interleaves them row by row.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,f16c")]
pub(crate) unsafe fn fill_codes_vnni(tile: &mut Tile, dtype: crate::QuantType, rows: &[&[u8]]) {
    const SPAN: usize = 256;
    let k = tile.k;
    let mut columns = [[_mm512_setzero_si512(); TILE_ROWS]; 4];
    for start in (0..k).step_by(SPAN) {
        let n = SPAN.min(k - start);
        for (r, row) in rows.iter().enumerate() {
            let bytes = &row[dtype.bytes_for(start)..dtype.bytes_for(start + n)];
            let codes = crate::rowdot::span_codes(dtype, bytes);
            for (chunk, v) in codes.iter().enumerate() {
                columns[chunk][r] = *v;
            }
        }
        for r in rows.len()..TILE_ROWS {
            for chunk in &mut columns {
                chunk[r] = _mm512_setzero_si512();
            }
        }
        for (chunk, vectors) in columns.iter().enumerate() {
            if chunk * 64 >= n {
                break;
            }
            let out = transpose_dwords(vectors);
            let base = (start + chunk * 64) / 4;
            for (j, v) in out.iter().enumerate().take((n - chunk * 64).min(64) / 4) {
                // SAFETY: dword base + j < k / 4, so 64 bytes at (base + j) * 64 are inside q.
                _mm512_storeu_si512(tile.q.as_mut_ptr().add((base + j) * 64) as *mut _, *v);
            }
        }
    }
}

/// 16 vectors of 16 dwords (one per row) into 16 vectors of the same dword of every row.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn transpose_dwords(r: &[__m512i; 16]) -> [__m512i; 16] {
    let mut t = [_mm512_setzero_si512(); 16];
    for p in 0..8 {
        t[2 * p] = _mm512_unpacklo_epi32(r[2 * p], r[2 * p + 1]);
        t[2 * p + 1] = _mm512_unpackhi_epi32(r[2 * p], r[2 * p + 1]);
    }
    // u[4q + c]: lane L holds column 4L + c of rows 4q .. 4q + 4
    let mut u = [_mm512_setzero_si512(); 16];
    for q in 0..4 {
        let (a, b, c, d) = (t[4 * q], t[4 * q + 1], t[4 * q + 2], t[4 * q + 3]);
        u[4 * q] = _mm512_unpacklo_epi64(a, c);
        u[4 * q + 1] = _mm512_unpackhi_epi64(a, c);
        u[4 * q + 2] = _mm512_unpacklo_epi64(b, d);
        u[4 * q + 3] = _mm512_unpackhi_epi64(b, d);
    }
    let mut out = [_mm512_setzero_si512(); 16];
    for c in 0..4 {
        let p01 = _mm512_shuffle_i32x4(u[c], u[4 + c], 0x44);
        let p23 = _mm512_shuffle_i32x4(u[c], u[4 + c], 0xEE);
        let q01 = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0x44);
        let q23 = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0xEE);
        out[c] = _mm512_shuffle_i32x4(p01, q01, 0x88);
        out[4 + c] = _mm512_shuffle_i32x4(p01, q01, 0xDD);
        out[8 + c] = _mm512_shuffle_i32x4(p23, q23, 0x88);
        out[12 + c] = _mm512_shuffle_i32x4(p23, q23, 0xDD);
    }
    out
}
