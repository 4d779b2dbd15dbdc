//! AVX-512 VNNI kernels over interleaved weights (see `interleaved`): 16 rows in the lanes
//! of one register, eight, four or one token at a time, exact integer sums per block, then
//! `blocks::add_block` lane by lane.

#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::*;

use crate::interleaved::{record, GROUP_ROWS, Q6K_GROUP_BYTES};
use crate::blocks::QuantActs;
use crate::QuantType;

const Q4_0: u8 = 0;
const Q4_1: u8 = 1;
const Q8_0: u8 = 2;
const Q4K: u8 = 3;
const Q6K: u8 = 4;

/// From this many tokens on, steps of eight tokens run; below it, steps of four. Measured on
/// Qwen2.5-Coder-1.5B: eights make 512-token prefill 2-3% faster but a 16-sequence decode step
/// 20% slower (its activation rows no longer fit the L1 cache beside the weights).
const EIGHTS_FROM: usize = 64;

/// Runs `kernel::<.., T>` over tokens 0..m in steps of eight (long batches only), then
/// four, then two, then one (a mixture's experts often see two or three rows of a batch).
macro_rules! in_token_steps {
    ($kernel:ident $(, $kind:ident)?; $bytes:expr, $acts:expr, $m:expr, $out:expr) => {{
        let mut t = 0;
        while $m >= EIGHTS_FROM && t + 8 <= $m {
            $kernel::<$($kind,)? 8>($bytes, $acts, t, $out);
            t += 8;
        }
        while t + 4 <= $m {
            $kernel::<$($kind,)? 4>($bytes, $acts, t, $out);
            t += 4;
        }
        while t + 2 <= $m {
            $kernel::<$($kind,)? 2>($bytes, $acts, t, $out);
            t += 2;
        }
        while t < $m {
            $kernel::<$($kind,)? 1>($bytes, $acts, t, $out);
            t += 1;
        }
    }};
}

/// See `interleaved::group_matmul`; the caller checked CPU features and sizes.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,f16c")]
pub(crate) unsafe fn group_matmul(dtype: QuantType, bytes: &[u8], acts: &QuantActs, m: usize, out: &mut [f32]) {
    match dtype {
        QuantType::Q4_1 => in_token_steps!(small_block_tokens, Q4_1; bytes, acts, m, out),
        QuantType::Q4_0 => in_token_steps!(small_block_tokens, Q4_0; bytes, acts, m, out),
        QuantType::Q8_0 => in_token_steps!(small_block_tokens, Q8_0; bytes, acts, m, out),
        QuantType::Q6K => in_token_steps!(superblock_tokens, Q6K; bytes, acts, m, out),
        _ => in_token_steps!(superblock_tokens, Q4K; bytes, acts, m, out),
    }
}

fn dtype_of(kind: u8) -> QuantType {
    match kind {
        Q4_0 => QuantType::Q4_0,
        Q4_1 => QuantType::Q4_1,
        _ => QuantType::Q8_0,
    }
}

/// Eight code vectors from four vectors of packed nibbles at `codes`: vector j holds
/// elements 4j..4j+4 of every row.
#[target_feature(enable = "avx512f,avx512bw")]
#[inline]
unsafe fn nibble_codes(codes: *const u8) -> [__m512i; 8] {
    let mask = _mm512_set1_epi8(0x0F);
    let mut out = [_mm512_setzero_si512(); 8];
    for v in 0..4 {
        // SAFETY: the caller's record holds 256 code bytes at `codes`.
        let packed = unsafe { _mm512_loadu_si512(codes.add(64 * v) as *const _) };
        out[2 * v] = _mm512_and_si512(packed, mask);
        out[2 * v + 1] = _mm512_and_si512(_mm512_srli_epi16(packed, 4), mask);
    }
    out
}

/// Eight code vectors of one 32-element record.
#[target_feature(enable = "avx512f,avx512bw")]
#[inline]
unsafe fn record_codes<const KIND: u8>(rec: *const u8, codes_at: usize) -> [__m512i; 8] {
    if KIND == Q8_0 {
        // SAFETY: a Q8_0 record holds 512 code bytes at `codes_at`.
        return std::array::from_fn(|j| unsafe { _mm512_loadu_si512(rec.add(codes_at + 64 * j) as *const _) });
    }
    // SAFETY: a 4-bit record holds 256 code bytes at `codes_at`.
    unsafe { nibble_codes(rec.add(codes_at)) }
}

/// Records ahead of the one in use that the first token step asks the L2 cache for: the
/// hardware prefetcher alone left the kernels waiting on weight loads, and one record into L2
/// decodes faster than two into L1 (Qwen Q4_K_M tg ~18.4 -> ~18.6-19.8 t/s, 2 threads), as on
/// the AVX2 path (on an Intel Xeon; whether to prefetch at all is `prefetch`'s choice).
const PREFETCH_RECORDS: usize = 1;

/// Asks the L2 cache for the record `PREFETCH_RECORDS` after `rec` (a hint: addresses past the matrix are
/// never dereferenced).
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn prefetch_ahead(rec: *const u8, size: usize) {
    let ahead = rec.wrapping_add(PREFETCH_RECORDS * size);
    for line in (0..size).step_by(64) {
        _mm_prefetch::<_MM_HINT_T1>(ahead.wrapping_add(line) as *const i8);
    }
}

/// Four activations starting at `a` in every lane.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn broadcast4(a: *const i8) -> __m512i {
    // SAFETY: the caller passes a pointer to four readable bytes.
    _mm512_set1_epi32(unsafe { std::ptr::read_unaligned(a as *const i32) })
}

/// The exact dot of `N` code vectors with `4N` activations at `a`, per lane (one chain: the
/// callers keep several groups and tokens in flight).
#[target_feature(enable = "avx512f,avx512vnni")]
#[inline]
unsafe fn dot<const N: usize>(codes: &[__m512i; N], a: *const i8) -> __m512i {
    let mut sum = _mm512_setzero_si512();
    for (j, c) in codes.iter().enumerate() {
        // SAFETY: the caller passes 4N readable activations at `a`.
        sum = _mm512_dpbusd_epi32(sum, *c, unsafe { broadcast4(a.add(4 * j)) });
    }
    sum
}

/// `sum over pairs q of lanes(q) . group sums (2q, 2q+1)`: per lane, its i16 pair times the
/// activations' i16 group-sum pair, exactly (VNNI's 16-bit dot).
#[target_feature(enable = "avx512f,avx512vnni")]
#[inline]
unsafe fn pair_dot<const P: usize>(pairs: &[__m512i; P], group_sums: *const i16) -> __m512i {
    let mut sum = _mm512_setzero_si512();
    for (q, p) in pairs.iter().enumerate() {
        // SAFETY: the caller passes 2P readable group sums.
        let two = _mm512_set1_epi32(unsafe { std::ptr::read_unaligned(group_sums.add(2 * q) as *const i32) });
        sum = _mm512_dpwssd_epi32(sum, *p, two);
    }
    sum
}

/// P vectors of i16 pairs from a `[group pair][row][2]` byte table at `table` (zero- or
/// sign-extended).
#[target_feature(enable = "avx512f,avx512bw")]
#[inline]
unsafe fn byte_pairs<const P: usize, const SIGNED: bool>(table: *const u8) -> [__m512i; P] {
    std::array::from_fn(|q| {
        // SAFETY: the caller passes a table of 32P bytes.
        let bytes = unsafe { _mm256_loadu_si256(table.add(32 * q) as *const __m256i) };
        if SIGNED {
            _mm512_cvtepi8_epi16(bytes)
        } else {
            _mm512_cvtepu8_epi16(bytes)
        }
    })
}

/// 16 f16 values at `p` as f32 lanes.
#[target_feature(enable = "avx512f,f16c")]
#[inline]
unsafe fn halves(p: *const u8) -> __m512 {
    // SAFETY: the caller passes 32 readable bytes.
    _mm512_cvtph_ps(unsafe { _mm256_loadu_si256(p as *const __m256i) })
}

/// `blocks::add_block` in every lane: `(dx*d) * a + ((dx*neg_dmin) * m + total)`.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn add_block(total: __m512, sum_a: __m512i, sum_m: __m512, d: __m512, neg_dmin: __m512, dx: f32) -> __m512 {
    let dx = _mm512_set1_ps(dx);
    let with_min = _mm512_fmadd_ps(_mm512_mul_ps(dx, neg_dmin), sum_m, total);
    _mm512_fmadd_ps(_mm512_mul_ps(dx, d), _mm512_cvtepi32_ps(sum_a), with_min)
}

/// Tokens t0..t0+T against a group's 16 rows of 32-element blocks.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,f16c")]
#[inline]
unsafe fn small_block_tokens<const KIND: u8, const T: usize>(bytes: &[u8], acts: &QuantActs, t0: usize, out: &mut [f32]) {
    let layout = record(dtype_of(KIND));
    let (k, n_blocks) = (acts.k, acts.k / 32);
    assert!(bytes.len() >= n_blocks * layout.size && acts.q.len() >= (t0 + T) * k && out.len() >= (t0 + T) * GROUP_ROWS);
    assert!(acts.scale.len() >= (t0 + T) * n_blocks && acts.group_sum.len() >= (t0 + T) * n_blocks);
    let a_rows: [*const i8; T] = std::array::from_fn(|i| acts.q.as_ptr().wrapping_add((t0 + i) * k));
    let mut total = [_mm512_setzero_ps(); T];
    // whether this CPU gains from the hints (`prefetch`); later token passes find the record cached
    let prefetch = t0 == 0 && crate::prefetch::enabled();
    for b in 0..n_blocks {
        // SAFETY (all reads below): record b lies inside `bytes`; activation row t0 + i
        // holds k = 32 * n_blocks values; scales and sums hold (t0 + T) * n_blocks entries.
        let rec = bytes.as_ptr().add(b * layout.size);
        if prefetch {
            prefetch_ahead(rec, layout.size);
        }
        let codes = record_codes::<KIND>(rec, layout.codes);
        let d = halves(rec);
        let neg_dmin = match KIND {
            Q4_1 => halves(rec.add(layout.mins)),
            Q4_0 => _mm512_mul_ps(_mm512_set1_ps(-8.0), d),
            _ => _mm512_mul_ps(_mm512_set1_ps(-128.0), d),
        };
        for i in 0..T {
            let sum_a = dot(&codes, a_rows[i].add(32 * b));
            let at = (t0 + i) * n_blocks + b;
            let sum_m = _mm512_set1_ps(*acts.group_sum.get_unchecked(at) as f32);
            total[i] = add_block(total[i], sum_a, sum_m, d, neg_dmin, *acts.scale.get_unchecked(at));
        }
    }
    for (i, sum) in total.iter().enumerate() {
        // SAFETY: out holds (t0 + T) * 16 floats (asserted above).
        _mm512_storeu_ps(out.as_mut_ptr().add((t0 + i) * GROUP_ROWS), *sum);
    }
}

/// `-x` in every lane (the sign bit flipped, exactly as the scalar negation).
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn negate(x: __m512) -> __m512 {
    _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(x), _mm512_set1_epi32(i32::MIN)))
}

/// The four code vectors of Q6_K group g (elements 16g..16g+16): low nibbles from the
/// group's two packed vectors, top bits from its high vector (192 bytes in a row).
#[target_feature(enable = "avx512f,avx512bw")]
#[inline]
unsafe fn q6k_group_codes(rec: *const u8, codes_at: usize, high_at: usize, g: usize) -> [__m512i; 4] {
    let (low4, top2) = (_mm512_set1_epi8(0x0F), _mm512_set1_epi8(0x30));
    // SAFETY: a Q6_K record holds 16 groups of two nibble vectors at `codes_at` and one high
    // vector at `high_at`, Q6K_GROUP_BYTES apart; g < 16.
    let (p0, p1, high) = unsafe {
        (
            _mm512_loadu_si512(rec.add(codes_at + Q6K_GROUP_BYTES * g) as *const _),
            _mm512_loadu_si512(rec.add(codes_at + Q6K_GROUP_BYTES * g + 64) as *const _),
            _mm512_loadu_si512(rec.add(high_at + Q6K_GROUP_BYTES * g) as *const _),
        )
    };
    // element quarter q's two bits sit at 2q..2q+2 of each byte: moved straight to 4..6 (one
    // shift at most; bits a 16-bit shift carries over from the neighbouring byte are masked)
    let top = |q: u32| {
        let bits = match q {
            0 => _mm512_slli_epi16(high, 4),
            1 => _mm512_slli_epi16(high, 2),
            2 => high,
            _ => _mm512_srli_epi16(high, 2),
        };
        _mm512_and_si512(bits, top2)
    };
    [
        _mm512_or_si512(_mm512_and_si512(p0, low4), top(0)),
        _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(p0, 4), low4), top(1)),
        _mm512_or_si512(_mm512_and_si512(p1, low4), top(2)),
        _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(p1, 4), low4), top(3)),
    ]
}

/// Integer sums of one superblock record for T tokens: (A, M as floats, -dmin).
type SuperblockSums<const T: usize> = ([__m512i; T], [__m512; T], __m512);

/// Q6_K: per 16-element group the exact dot times the group's signed scale; M = 32 * sum of
/// scale times activation group sum (Q6_K's codes are offset by 32); -dmin = -d.
/// `acts[i]` points at token i's 256 activations, `sums[i]` at its 16 group sums.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,f16c")]
#[inline]
unsafe fn q6k_sums<const T: usize>(rec: *const u8, acts: [*const i8; T], sums: [*const i16; T]) -> SuperblockSums<T> {
    let layout = record(QuantType::Q6K);
    let mut sum_a = [_mm512_setzero_si512(); T];
    for q in 0..8 {
        // SAFETY (all reads): the record holds its scales, codes and top bits; each token's
        // pointers cover 256 activations and 16 group sums.
        // groups 2q and 2q+1: their scales are the low and high halves of each lane's pair
        let pair = byte_pairs::<1, true>(rec.add(layout.group_scales + 32 * q))[0];
        let scales = [_mm512_srai_epi32(_mm512_slli_epi32(pair, 16), 16), _mm512_srai_epi32(pair, 16)];
        for (h, sc) in scales.iter().enumerate() {
            let g = 2 * q + h;
            let c = q6k_group_codes(rec, layout.codes, layout.high_bits, g);
            for i in 0..T {
                sum_a[i] = _mm512_add_epi32(sum_a[i], _mm512_mullo_epi32(dot(&c, acts[i].add(16 * g)), *sc));
            }
        }
    }
    // M after A, so fewer registers are live inside the code loop
    let pairs = byte_pairs::<8, true>(rec.add(layout.group_scales));
    let sum_m = std::array::from_fn(|i| _mm512_cvtepi32_ps(_mm512_slli_epi32(pair_dot(&pairs, sums[i]), 5)));
    (sum_a, sum_m, negate(halves(rec)))
}

/// Q4_K: per 32-element group the exact dot times the group's integer scale, the mins times
/// the activation group sums. Pointers as for `q6k_sums` (8 group sums per token).
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,f16c")]
#[inline]
unsafe fn q4k_sums<const T: usize>(rec: *const u8, acts: [*const i8; T], sums: [*const i16; T]) -> SuperblockSums<T> {
    let layout = record(QuantType::Q4K);
    let mut sum_a = [_mm512_setzero_si512(); T];
    for g in 0..8 {
        // SAFETY (all reads): as in `q6k_sums`.
        let codes = nibble_codes(rec.add(layout.codes + 256 * g));
        let sc = _mm512_cvtepu8_epi32(_mm_loadu_si128(rec.add(layout.group_scales + 16 * g) as *const __m128i));
        for i in 0..T {
            sum_a[i] = _mm512_add_epi32(sum_a[i], _mm512_mullo_epi32(dot(&codes, acts[i].add(32 * g)), sc));
        }
    }
    // M after A, so fewer registers are live inside the code loop
    let pairs = byte_pairs::<4, false>(rec.add(layout.group_scales + 128));
    let sum_m = std::array::from_fn(|i| _mm512_cvtepi32_ps(pair_dot(&pairs, sums[i])));
    (sum_a, sum_m, negate(halves(rec.add(layout.mins))))
}

/// Tokens t0..t0+T against a group's 16 rows of K-quant superblocks (`Q6K` or `Q4K`): each
/// superblock's integer sums, then one `add_block` per superblock.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,f16c")]
#[inline]
unsafe fn superblock_tokens<const KIND: u8, const T: usize>(bytes: &[u8], acts: &QuantActs, t0: usize, out: &mut [f32]) {
    let (layout, group) = if KIND == Q6K { (record(QuantType::Q6K), 16) } else { (record(QuantType::Q4K), 32) };
    let (k, n_blocks, n_groups) = (acts.k, acts.k / 256, acts.k / group);
    assert!(bytes.len() >= n_blocks * layout.size && acts.q.len() >= (t0 + T) * k && out.len() >= (t0 + T) * GROUP_ROWS);
    assert!(acts.scale.len() >= (t0 + T) * n_blocks && acts.group_sum16.len() >= (t0 + T) * n_groups);
    let mut total = [_mm512_setzero_ps(); T];
    // whether this CPU gains from the hints (`prefetch`); later token passes find the record cached
    let prefetch = t0 == 0 && crate::prefetch::enabled();
    for b in 0..n_blocks {
        // SAFETY (all reads below): record b lies inside `bytes`; activation row t0 + i
        // holds k = 256 * n_blocks values; scales hold (t0 + T) * n_blocks entries and
        // group sums (t0 + T) * n_groups.
        let rec = bytes.as_ptr().add(b * layout.size);
        if prefetch {
            prefetch_ahead(rec, layout.size);
        }
        let token_acts = std::array::from_fn(|i| acts.q.as_ptr().wrapping_add((t0 + i) * k + 256 * b));
        let token_sums = std::array::from_fn(|i| acts.group_sum16.as_ptr().wrapping_add((t0 + i) * n_groups + 256 / group * b));
        let (sum_a, sum_m, neg_dmin) = if KIND == Q6K { q6k_sums::<T>(rec, token_acts, token_sums) } else { q4k_sums::<T>(rec, token_acts, token_sums) };
        let d = halves(rec);
        for i in 0..T {
            let dx = *acts.scale.get_unchecked((t0 + i) * n_blocks + b);
            total[i] = add_block(total[i], sum_a[i], sum_m[i], d, neg_dmin, dx);
        }
    }
    for (i, sum) in total.iter().enumerate() {
        // SAFETY: out holds (t0 + T) * 16 floats (asserted above).
        _mm512_storeu_ps(out.as_mut_ptr().add((t0 + i) * GROUP_ROWS), *sum);
    }
}
