//! AVX-512 VNNI kernel for the tile product: 16 weight rows in the lanes of one register,
//! several tokens at a time; integer group sums scaled by integer group scales, then per
//! block the same float steps as `tile::add_block`.

#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::*;

use crate::tile::{QuantActs, Tile, TILE_ROWS};

/// See `tile::tile_matmul_scalar` for the meaning; the caller checked sizes and CPU features.
#[target_feature(enable = "avx512f,avx512vnni")]
pub(crate) unsafe fn tile_matmul_vnni(tile: &Tile, acts: &QuantActs, m: usize, out: &mut [f32]) {
    let mut t = 0;
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
        let mut sum_m = [_mm512_setzero_si512(); T];
        for g in b * groups_per_block..(b + 1) * groups_per_block {
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
            let mn = _mm512_loadu_si512(tile.mn.as_ptr().add(g * TILE_ROWS) as *const _);
            for i in 0..T {
                sum_a[i] = _mm512_add_epi32(sum_a[i], _mm512_mullo_epi32(isum[i], sc));
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
