//! AVX-512 VNNI kernel for the tile product: 16 weight rows in the lanes of one register,
//! eight (or four) tokens at a time, integer sums per group, f32 scaling per group and block.

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
    let (k, g_len, blk) = (tile.k, tile.group, acts.block);
    let steps = g_len / 4;
    let groups_per_block = blk / g_len;
    let w_base = tile.q.as_ptr();
    let a_rows: [*const i8; T] = std::array::from_fn(|i| acts.q.as_ptr().add((t0 + i) * k));
    let mut total = [_mm512_setzero_ps(); T];
    for b in 0..k / blk {
        let mut block_sum = [_mm512_setzero_ps(); T];
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
            let scale = _mm512_loadu_ps(tile.scale.as_ptr().add(g * TILE_ROWS));
            let offset = _mm512_loadu_ps(tile.offset.as_ptr().add(g * TILE_ROWS));
            for i in 0..T {
                block_sum[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[i]), scale, block_sum[i]);
                let group_sum = _mm512_set1_ps(*acts.group_sum.get_unchecked((t0 + i) * (k / g_len) + g));
                block_sum[i] = _mm512_fmadd_ps(offset, group_sum, block_sum[i]);
            }
        }
        for i in 0..T {
            let d = _mm512_set1_ps(*acts.scale.get_unchecked((t0 + i) * (k / blk) + b));
            total[i] = _mm512_fmadd_ps(block_sum[i], d, total[i]);
        }
    }
    for (i, sum) in total.iter().enumerate() {
        // SAFETY: out holds at least m * 16 floats and t0 + i < m.
        _mm512_storeu_ps(out.as_mut_ptr().add((t0 + i) * TILE_ROWS), *sum);
    }
}
