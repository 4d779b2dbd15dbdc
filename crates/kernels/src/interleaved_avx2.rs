//! AVX2 kernels over interleaved weights (see `interleaved`): every 64-byte vector of the
//! 16-row layout is two 256-bit halves (rows 0..8 and rows 8..16), and one record step runs
//! both halves, so each cache line fetched is used whole at once. Integer sums are exact per
//! block (AVX-VNNI's vpdpbusd where the CPU has it, else vpmaddubsw + vpmaddwd), then the
//! `blocks::add_block` float steps run lane by lane: results equal the scalar reference bit for
//! bit.
//!
//! Why not an 8-row layout for 256-bit registers: one layout for every path keeps the weights
//! in memory the same whatever `HEARTH_KERNELS` says, and a record's halves are the two loads
//! of one cache line, so nothing is lost by keeping 16 rows side by side.

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

/// Rows per 256-bit register.
const HALF: usize = GROUP_ROWS / 2;

/// One module of kernels per feature set: every function carries the set, so the compiler
/// inlines helpers and intrinsics alike (a helper without the features would leave each
/// intrinsic a call).
macro_rules! avx2_kernels {
    ($module:ident, $features:literal, $vnni:literal) => {
        pub(crate) mod $module {
            use super::*;

            /// Whether the int8 dots use AVX-VNNI's vpdpbusd.
            const VNNI: bool = $vnni;

            /// See `interleaved::group_matmul`; the caller checked the module's CPU features and the
            /// sizes.
            #[target_feature(enable = $features)]
            pub(crate) unsafe fn group_matmul(dtype: QuantType, bytes: &[u8], acts: &QuantActs, m: usize, out: &mut [f32]) {
                // SAFETY (all calls): the caller's contract is this function's.
                match dtype {
                    QuantType::Q4_1 => unsafe { in_token_steps(small_block_tokens::<Q4_1, 8>, small_block_tokens::<Q4_1, 4>, small_block_tokens::<Q4_1, 2>, small_block_tokens::<Q4_1, 1>, bytes, acts, m, out) },
                    QuantType::Q4_0 => unsafe { in_token_steps(small_block_tokens::<Q4_0, 8>, small_block_tokens::<Q4_0, 4>, small_block_tokens::<Q4_0, 2>, small_block_tokens::<Q4_0, 1>, bytes, acts, m, out) },
                    QuantType::Q8_0 => unsafe { in_token_steps(small_block_tokens::<Q8_0, 8>, small_block_tokens::<Q8_0, 4>, small_block_tokens::<Q8_0, 2>, small_block_tokens::<Q8_0, 1>, bytes, acts, m, out) },
                    QuantType::Q6K => unsafe { in_token_steps(superblock_tokens::<Q6K, 8>, superblock_tokens::<Q6K, 4>, superblock_tokens::<Q6K, 2>, superblock_tokens::<Q6K, 1>, bytes, acts, m, out) },
                    _ => unsafe { in_token_steps(superblock_tokens::<Q4K, 8>, superblock_tokens::<Q4K, 4>, superblock_tokens::<Q4K, 2>, superblock_tokens::<Q4K, 1>, bytes, acts, m, out) },
                }
            }

            /// A kernel over tokens t0..t0+T.
            type TokenKernel = unsafe fn(&[u8], &QuantActs, usize, &mut [f32]);

            /// Runs tokens 0..m in steps of eight, then four, two (a mixture's experts often see two or three rows of a batch), then one. Eight tokens per pass over a
            /// record unpack each code vector once for eight (the unpacking is a sixth of the work
            /// at four); their sums no longer fit the 16 registers and live in the L1 cache, which
            /// costs loads and stores but no vector ALU slots. (The kernels are inlined: each call
            /// site names one instantiation.)
            #[target_feature(enable = $features)]
            #[inline]
            #[allow(clippy::too_many_arguments)]
            unsafe fn in_token_steps(eights: TokenKernel, fours: TokenKernel, twos: TokenKernel, ones: TokenKernel, bytes: &[u8], acts: &QuantActs, m: usize, out: &mut [f32]) {
                let mut t = 0;
                for (kernel, step) in [(eights, 8), (fours, 4), (twos, 2), (ones, 1)] {
                    while t + step <= m {
                        // SAFETY: the caller's contract.
                        unsafe { kernel(bytes, acts, t, out) };
                        t += step;
                    }
                }
            }

            fn dtype_of(kind: u8) -> QuantType {
                match kind {
                    Q4_0 => QuantType::Q4_0,
                    Q4_1 => QuantType::Q4_1,
                    Q8_0 => QuantType::Q8_0,
                    Q4K => QuantType::Q4K,
                    _ => QuantType::Q6K,
                }
            }

            /// Four activations starting at `a` in every lane.
            #[target_feature(enable = $features)]
            #[inline]
            unsafe fn broadcast4(a: *const i8) -> __m256i {
                // SAFETY: the caller passes a pointer to four readable bytes.
                _mm256_set1_epi32(unsafe { std::ptr::read_unaligned(a as *const i32) })
            }

            /// Per lane, the exact dot of `N` code vectors (four unsigned codes of at most `MAX_CODE` a
            /// lane) with `4N` activations at `a`.
            #[target_feature(enable = $features)]
            #[inline]
            unsafe fn dot<const N: usize, const MAX_CODE: i32>(codes: &[__m256i; N], a: *const i8) -> __m256i {
                if !VNNI {
                    // SAFETY: the caller's contract.
                    return unsafe { widened_pair_sums::<N, MAX_CODE>(codes, a, _mm256_set1_epi16(1)) };
                }
                let mut sum = _mm256_setzero_si256();
                for (j, c) in codes.iter().enumerate() {
                    // SAFETY: the caller passes 4N readable activations at `a`.
                    sum = _mm256_dpbusd_avx_epi32(sum, *c, unsafe { broadcast4(a.add(4 * j)) });
                }
                sum
            }

            /// `scale * dot::<N, MAX_CODE>(codes, a)` per lane, for a scale per lane in i32 lanes
            /// (`scale`, whose value fits i16) and the same scale in both i16 halves of each lane
            /// (`scale_pairs`, from `pair_scales`). Without VNNI the scale is applied by the
            /// vpmaddwd that widens the i16 pair sums (no 32-bit multiply); the integer is the same.
            #[target_feature(enable = $features)]
            #[inline]
            unsafe fn scaled_dot<const N: usize, const MAX_CODE: i32>(codes: &[__m256i; N], a: *const i8, scale: __m256i, scale_pairs: __m256i) -> __m256i {
                // SAFETY (both calls): the caller passes 4N readable activations at `a`.
                if VNNI {
                    _mm256_mullo_epi32(unsafe { dot::<N, MAX_CODE>(codes, a) }, scale)
                } else {
                    unsafe { widened_pair_sums::<N, MAX_CODE>(codes, a, scale_pairs) }
                }
            }

            /// Without VNNI: vpmaddubsw's i16 pair sums of the codes (at most `MAX_CODE`) with 4N
            /// activations at `a` (at most 2 * MAX_CODE * 127 each) are added in i16 as long as that
            /// cannot overflow (eight at a time for 4-bit codes, 30480; two for 6-bit ones, 32004),
            /// then widened by one vpmaddwd with `multipliers` (i16 ones, or a scale in both halves
            /// of each lane) and summed in i32.
            #[target_feature(enable = $features)]
            #[inline]
            unsafe fn widened_pair_sums<const N: usize, const MAX_CODE: i32>(codes: &[__m256i; N], a: *const i8, multipliers: __m256i) -> __m256i {
                let in_i16 = (i16::MAX as i32 / (2 * MAX_CODE * 127)).max(1) as usize;
                let mut sum = _mm256_setzero_si256();
                for (chunk, codes) in codes.chunks(in_i16).enumerate() {
                    let mut pairs = _mm256_setzero_si256();
                    for (j, c) in codes.iter().enumerate() {
                        // SAFETY: the caller passes 4N readable activations at `a`.
                        let a4 = unsafe { broadcast4(a.add(4 * (chunk * in_i16 + j))) };
                        pairs = _mm256_add_epi16(pairs, _mm256_maddubs_epi16(*c, a4));
                    }
                    sum = _mm256_add_epi32(sum, _mm256_madd_epi16(pairs, multipliers));
                }
                sum
            }

            /// Each lane's i32 scale (which fits i16) copied into both of the lane's i16 halves.
            #[target_feature(enable = $features)]
            #[inline]
            unsafe fn pair_scales(scale: __m256i) -> __m256i {
                _mm256_blend_epi16::<0xAA>(scale, _mm256_slli_epi32(scale, 16))
            }

            /// Q8_0's exact dot of 8 code vectors (unsigned: weight + 128) with 32 activations at `a`
            /// whose sum is `act_sum`. Without VNNI the unsigned codes times int8 would overflow
            /// vpmaddubsw's i16, so the signed weights w are used (|w| times the activations with w's
            /// sign, at most 2 * 128 * 127 a pair) and 128 * act_sum is added back: the same integer.
            #[target_feature(enable = $features)]
            #[inline]
            unsafe fn q8_dot(codes: &[__m256i; 8], a: *const i8, act_sum: i32) -> __m256i {
                if VNNI {
                    // SAFETY: the caller passes 32 readable activations at `a`.
                    return unsafe { dot::<8, 255>(codes, a) };
                }
                let (flip, ones) = (_mm256_set1_epi8(i8::MIN), _mm256_set1_epi16(1));
                let mut sum = _mm256_set1_epi32(128 * act_sum);
                for (j, c) in codes.iter().enumerate() {
                    let signed = _mm256_xor_si256(*c, flip);
                    // SAFETY: as above.
                    let a4 = unsafe { broadcast4(a.add(4 * j)) };
                    let products = _mm256_maddubs_epi16(_mm256_sign_epi8(signed, signed), _mm256_sign_epi8(a4, signed));
                    sum = _mm256_add_epi32(sum, _mm256_madd_epi16(products, ones));
                }
                sum
            }

            /// `sum over pairs q of lanes(q) . group sums (2q, 2q+1)`: per lane, its i16 pair times the
            /// activations' i16 group-sum pair, exactly.
            #[target_feature(enable = $features)]
            #[inline]
            unsafe fn pair_dot<const P: usize>(pairs: &[__m256i; P], group_sums: *const i16) -> __m256i {
                let mut sum = _mm256_setzero_si256();
                for (q, p) in pairs.iter().enumerate() {
                    // SAFETY: the caller passes 2P readable group sums.
                    let two = _mm256_set1_epi32(unsafe { std::ptr::read_unaligned(group_sums.add(2 * q) as *const i32) });
                    sum = if VNNI { _mm256_dpwssd_avx_epi32(sum, *p, two) } else { _mm256_add_epi32(sum, _mm256_madd_epi16(*p, two)) };
                }
                sum
            }

            /// P vectors of i16 pairs, rows of half `h`, from a `[group pair][row][2]` byte table at
            /// `table` (zero- or sign-extended).
            #[target_feature(enable = $features)]
            #[inline]
            unsafe fn byte_pairs<const P: usize, const SIGNED: bool>(table: *const u8, h: usize) -> [__m256i; P] {
                // loops here, not `array::from_fn`, whose closures would lack the target features
                let mut pairs = [_mm256_setzero_si256(); P];
                for (q, pair) in pairs.iter_mut().enumerate() {
                    // SAFETY: the caller passes a table of 32P bytes; h < 2.
                    let bytes = unsafe { _mm_loadu_si128(table.add(32 * q + 16 * h) as *const __m128i) };
                    *pair = if SIGNED { _mm256_cvtepi8_epi16(bytes) } else { _mm256_cvtepu8_epi16(bytes) };
                }
                pairs
            }

            /// 8 f16 values at `p` as f32 lanes.
            #[target_feature(enable = $features)]
            #[inline]
            unsafe fn halves(p: *const u8) -> __m256 {
                // SAFETY: the caller passes 16 readable bytes.
                _mm256_cvtph_ps(unsafe { _mm_loadu_si128(p as *const __m128i) })
            }

            /// `blocks::add_block` in every lane: `(dx*d) * a + ((dx*neg_dmin) * m + total)`.
            #[target_feature(enable = $features)]
            #[inline]
            unsafe fn add_block(total: __m256, sum_a: __m256i, sum_m: __m256, d: __m256, neg_dmin: __m256, dx: f32) -> __m256 {
                let dx = _mm256_set1_ps(dx);
                let with_min = _mm256_fmadd_ps(_mm256_mul_ps(dx, neg_dmin), sum_m, total);
                _mm256_fmadd_ps(_mm256_mul_ps(dx, d), _mm256_cvtepi32_ps(sum_a), with_min)
            }

            /// `-x` in every lane (the sign bit flipped, exactly as the scalar negation).
            #[target_feature(enable = $features)]
            #[inline]
            unsafe fn negate(x: __m256) -> __m256 {
                _mm256_xor_ps(x, _mm256_set1_ps(-0.0))
            }

            /// Records ahead of the one in use that the first token step asks the L2 cache for. One
            /// record into L2 measured best on decode (Qwen Q4_K_M tg, 2 threads: ~7% over two
            /// records into L1, which fill the L1's few line-fill buffers in one burst and stall the
            /// loads the kernel is waiting on; no software prefetch at all is slower still), on an
            /// Intel Xeon; AMD's Zen 3 is faster without any (`prefetch`).
            const PREFETCH_RECORDS: usize = 1;

            /// Asks the L2 cache for the record `PREFETCH_RECORDS` after `rec` (a hint: addresses past the matrix are
            /// never dereferenced).
            #[target_feature(enable = $features)]
            #[inline]
            unsafe fn prefetch_ahead(rec: *const u8, size: usize) {
                let ahead = rec.wrapping_add(PREFETCH_RECORDS * size);
                for line in (0..size).step_by(64) {
                    _mm_prefetch::<_MM_HINT_T1>(ahead.wrapping_add(line) as *const i8);
                }
            }

            /// Eight code vectors of half `h` from four vectors of packed nibbles at `codes`: vector j
            /// holds elements 4j..4j+4 of the half's rows.
            #[target_feature(enable = $features)]
            #[inline]
            unsafe fn nibble_codes(codes: *const u8, h: usize) -> [__m256i; 8] {
                let mask = _mm256_set1_epi8(0x0F);
                let mut out = [_mm256_setzero_si256(); 8];
                for v in 0..4 {
                    // SAFETY: the caller's record holds 256 code bytes at `codes`; h < 2.
                    let packed = unsafe { _mm256_loadu_si256(codes.add(64 * v + 32 * h) as *const __m256i) };
                    out[2 * v] = _mm256_and_si256(packed, mask);
                    out[2 * v + 1] = _mm256_and_si256(_mm256_srli_epi16(packed, 4), mask);
                }
                out
            }

            /// Eight code vectors of half `h` of one 32-element record.
            #[target_feature(enable = $features)]
            #[inline]
            unsafe fn record_codes<const KIND: u8>(rec: *const u8, codes_at: usize, h: usize) -> [__m256i; 8] {
                if KIND == Q8_0 {
                    // SAFETY: a Q8_0 record holds 512 code bytes at `codes_at`; h < 2.
                    let mut codes = [_mm256_setzero_si256(); 8];
                    for (j, c) in codes.iter_mut().enumerate() {
                        *c = unsafe { _mm256_loadu_si256(rec.add(codes_at + 64 * j + 32 * h) as *const __m256i) };
                    }
                    return codes;
                }
                // SAFETY: a 4-bit record holds 256 code bytes at `codes_at`.
                unsafe { nibble_codes(rec.add(codes_at), h) }
            }

            /// Tokens t0..t0+T against a group's 16 rows of 32-element blocks.
            #[target_feature(enable = $features)]
            #[inline]
            unsafe fn small_block_tokens<const KIND: u8, const T: usize>(bytes: &[u8], acts: &QuantActs, t0: usize, out: &mut [f32]) {
                let layout = record(dtype_of(KIND));
                let (k, n_blocks) = (acts.k, acts.k / 32);
                assert!(bytes.len() >= n_blocks * layout.size && acts.q.len() >= (t0 + T) * k && out.len() >= (t0 + T) * GROUP_ROWS);
                assert!(acts.scale.len() >= (t0 + T) * n_blocks && acts.group_sum.len() >= (t0 + T) * n_blocks);
                let a_rows: [*const i8; T] = std::array::from_fn(|i| acts.q.as_ptr().wrapping_add((t0 + i) * k));
                let mut total = [[_mm256_setzero_ps(); T]; 2];
                // whether this CPU gains from the hints (`prefetch`); later token passes find the record cached
                let prefetch = t0 == 0 && crate::prefetch::enabled();
                for b in 0..n_blocks {
                    // SAFETY (all reads below): record b lies inside `bytes`; activation row t0 + i
                    // holds k = 32 * n_blocks values; scales and sums hold (t0 + T) * n_blocks entries.
                    let rec = unsafe { bytes.as_ptr().add(b * layout.size) };
                    if prefetch {
                        unsafe { prefetch_ahead(rec, layout.size) };
                    }
                    for (h, half_total) in total.iter_mut().enumerate() {
                        let codes = unsafe { record_codes::<KIND>(rec, layout.codes, h) };
                        let d = unsafe { halves(rec.add(16 * h)) };
                        let neg_dmin = match KIND {
                            Q4_1 => unsafe { halves(rec.add(layout.mins + 16 * h)) },
                            Q4_0 => _mm256_mul_ps(_mm256_set1_ps(-8.0), d),
                            _ => _mm256_mul_ps(_mm256_set1_ps(-128.0), d),
                        };
                        for (i, row_total) in half_total.iter_mut().enumerate() {
                            let at = (t0 + i) * n_blocks + b;
                            let (act_sum, dx) = unsafe { (*acts.group_sum.get_unchecked(at), *acts.scale.get_unchecked(at)) };
                            let a = a_rows[i].wrapping_add(32 * b);
                            let sum_a = if KIND == Q8_0 { unsafe { q8_dot(&codes, a, act_sum) } } else { unsafe { dot::<8, 15>(&codes, a) } };
                            *row_total = unsafe { add_block(*row_total, sum_a, _mm256_set1_ps(act_sum as f32), d, neg_dmin, dx) };
                        }
                    }
                }
                store_totals(&total, t0, out);
            }

            /// Writes `total[h][i]` to token t0 + i's rows 8h..8h+8 of `out`.
            #[target_feature(enable = $features)]
            #[inline]
            fn store_totals<const T: usize>(total: &[[__m256; T]; 2], t0: usize, out: &mut [f32]) {
                for (h, half_total) in total.iter().enumerate() {
                    for (i, sum) in half_total.iter().enumerate() {
                        let at = (t0 + i) * GROUP_ROWS + HALF * h;
                        assert!(at + HALF <= out.len());
                        // SAFETY: at..at + 8 lies inside `out` (asserted).
                        unsafe { _mm256_storeu_ps(out.as_mut_ptr().add(at), *sum) };
                    }
                }
            }

            /// The four code vectors of half `h` of Q6_K group g (elements 16g..16g+16): low nibbles
            /// from the group's two packed vectors, top bits from its high vector.
            #[target_feature(enable = $features)]
            #[inline]
            unsafe fn q6k_group_codes(rec: *const u8, codes_at: usize, high_at: usize, g: usize, h: usize) -> [__m256i; 4] {
                let (low4, top2) = (_mm256_set1_epi8(0x0F), _mm256_set1_epi8(0x30));
                // SAFETY: a Q6_K record holds 16 groups of two nibble vectors at `codes_at` and one
                // high vector at `high_at`, Q6K_GROUP_BYTES apart; g < 16 and h < 2.
                let (p0, p1, high) = unsafe {
                    (
                        _mm256_loadu_si256(rec.add(codes_at + Q6K_GROUP_BYTES * g + 32 * h) as *const __m256i),
                        _mm256_loadu_si256(rec.add(codes_at + Q6K_GROUP_BYTES * g + 64 + 32 * h) as *const __m256i),
                        _mm256_loadu_si256(rec.add(high_at + Q6K_GROUP_BYTES * g + 32 * h) as *const __m256i),
                    )
                };
                // element quarter q's two bits sit at 2q..2q+2 of each byte: moved straight to 4..6
                // (one shift at most; bits a 16-bit shift carries over from the neighbour are masked)
                let top = |q: u32| {
                    let bits = match q {
                        0 => _mm256_slli_epi16(high, 4),
                        1 => _mm256_slli_epi16(high, 2),
                        2 => high,
                        _ => _mm256_srli_epi16(high, 2),
                    };
                    _mm256_and_si256(bits, top2)
                };
                [
                    _mm256_or_si256(_mm256_and_si256(p0, low4), top(0)),
                    _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(p0, 4), low4), top(1)),
                    _mm256_or_si256(_mm256_and_si256(p1, low4), top(2)),
                    _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(p1, 4), low4), top(3)),
                ]
            }

            /// Integer sums of half of one superblock record for T tokens: (A, M as floats, -dmin).
            type SuperblockSums<const T: usize> = ([__m256i; T], [__m256; T], __m256);

            /// Q6_K, rows of half `h`: per 16-element group the exact dot times the group's signed
            /// scale; M = 32 * sum of scale times activation group sum; -dmin = -d. `acts[i]` points at
            /// token i's 256 activations, `sums[i]` at its 16 group sums.
            #[target_feature(enable = $features)]
            #[inline]
            unsafe fn q6k_sums<const T: usize>(rec: *const u8, h: usize, acts: [*const i8; T], sums: [*const i16; T]) -> SuperblockSums<T> {
                let layout = record(QuantType::Q6K);
                let mut sum_a = [_mm256_setzero_si256(); T];
                for q in 0..8 {
                    // SAFETY (all reads): the record holds its scales, codes and top bits; each token's
                    // pointers cover 256 activations and 16 group sums.
                    // groups 2q and 2q+1: their scales are the low and high halves of each lane's pair
                    let pair = unsafe { byte_pairs::<1, true>(rec.add(layout.group_scales + 32 * q), h)[0] };
                    let scales = [_mm256_srai_epi32(_mm256_slli_epi32(pair, 16), 16), _mm256_srai_epi32(pair, 16)];
                    for (hh, &sc) in scales.iter().enumerate() {
                        let g = 2 * q + hh;
                        let c = unsafe { q6k_group_codes(rec, layout.codes, layout.high_bits, g, h) };
                        let sc_pairs = unsafe { pair_scales(sc) };
                        for i in 0..T {
                            let group_dot = unsafe { scaled_dot::<4, 63>(&c, acts[i].wrapping_add(16 * g), sc, sc_pairs) };
                            sum_a[i] = _mm256_add_epi32(sum_a[i], group_dot);
                        }
                    }
                }
                // M after A, so fewer registers are live inside the code loop
                let pairs = unsafe { byte_pairs::<8, true>(rec.add(layout.group_scales), h) };
                let mut sum_m = [_mm256_setzero_ps(); T];
                for (m, &token_sums) in sum_m.iter_mut().zip(&sums) {
                    *m = _mm256_cvtepi32_ps(_mm256_slli_epi32(unsafe { pair_dot::<8>(&pairs, token_sums) }, 5));
                }
                (sum_a, sum_m, negate(unsafe { halves(rec.add(16 * h)) }))
            }

            /// Q4_K, rows of half `h`: per 32-element group the exact dot times the group's integer
            /// scale, the mins times the activation group sums. Pointers as for `q6k_sums` (8 group
            /// sums per token).
            #[target_feature(enable = $features)]
            #[inline]
            unsafe fn q4k_sums<const T: usize>(rec: *const u8, h: usize, acts: [*const i8; T], sums: [*const i16; T]) -> SuperblockSums<T> {
                let layout = record(QuantType::Q4K);
                let mut sum_a = [_mm256_setzero_si256(); T];
                for g in 0..8 {
                    // SAFETY (all reads): as in `q6k_sums`.
                    let codes = unsafe { nibble_codes(rec.add(layout.codes + 256 * g), h) };
                    let scale_bytes = unsafe { _mm_loadl_epi64(rec.add(layout.group_scales + 16 * g + HALF * h) as *const __m128i) };
                    let sc = _mm256_cvtepu8_epi32(scale_bytes);
                    let sc_pairs = unsafe { pair_scales(sc) };
                    for i in 0..T {
                        let group_dot = unsafe { scaled_dot::<8, 15>(&codes, acts[i].wrapping_add(32 * g), sc, sc_pairs) };
                        sum_a[i] = _mm256_add_epi32(sum_a[i], group_dot);
                    }
                }
                // M after A, so fewer registers are live inside the code loop
                let pairs = unsafe { byte_pairs::<4, false>(rec.add(layout.group_scales + 128), h) };
                let mut sum_m = [_mm256_setzero_ps(); T];
                for (m, &token_sums) in sum_m.iter_mut().zip(&sums) {
                    *m = _mm256_cvtepi32_ps(unsafe { pair_dot::<4>(&pairs, token_sums) });
                }
                (sum_a, sum_m, negate(unsafe { halves(rec.add(layout.mins + 16 * h)) }))
            }

            /// Tokens t0..t0+T against a group's 16 rows of K-quant superblocks (`Q6K` or `Q4K`): each
            /// half's integer sums, then one `add_block` per superblock and row.
            #[target_feature(enable = $features)]
            #[inline]
            unsafe fn superblock_tokens<const KIND: u8, const T: usize>(bytes: &[u8], acts: &QuantActs, t0: usize, out: &mut [f32]) {
                let (layout, group) = if KIND == Q6K { (record(QuantType::Q6K), 16) } else { (record(QuantType::Q4K), 32) };
                let (k, n_blocks, n_groups) = (acts.k, acts.k / 256, acts.k / group);
                assert!(bytes.len() >= n_blocks * layout.size && acts.q.len() >= (t0 + T) * k && out.len() >= (t0 + T) * GROUP_ROWS);
                assert!(acts.scale.len() >= (t0 + T) * n_blocks && acts.group_sum16.len() >= (t0 + T) * n_groups);
                let mut total = [[_mm256_setzero_ps(); T]; 2];
                // whether this CPU gains from the hints (`prefetch`); later token passes find the record cached
                let prefetch = t0 == 0 && crate::prefetch::enabled();
                for b in 0..n_blocks {
                    // SAFETY (all reads below): record b lies inside `bytes`; activation row t0 + i
                    // holds k = 256 * n_blocks values; scales hold (t0 + T) * n_blocks entries and
                    // group sums (t0 + T) * n_groups.
                    let rec = unsafe { bytes.as_ptr().add(b * layout.size) };
                    if prefetch {
                        unsafe { prefetch_ahead(rec, layout.size) };
                    }
                    let token_acts = std::array::from_fn(|i| acts.q.as_ptr().wrapping_add((t0 + i) * k + 256 * b));
                    let token_sums = std::array::from_fn(|i| acts.group_sum16.as_ptr().wrapping_add((t0 + i) * n_groups + 256 / group * b));
                    for (h, half_total) in total.iter_mut().enumerate() {
                        let (sum_a, sum_m, neg_dmin) = if KIND == Q6K {
                            unsafe { q6k_sums::<T>(rec, h, token_acts, token_sums) }
                        } else {
                            unsafe { q4k_sums::<T>(rec, h, token_acts, token_sums) }
                        };
                        let d = unsafe { halves(rec.add(16 * h)) };
                        for (i, row_total) in half_total.iter_mut().enumerate() {
                            let dx = unsafe { *acts.scale.get_unchecked((t0 + i) * n_blocks + b) };
                            *row_total = unsafe { add_block(*row_total, sum_a[i], sum_m[i], d, neg_dmin, dx) };
                        }
                    }
                }
                store_totals(&total, t0, out);
            }
        }
    };
}

avx2_kernels!(plain, "avx2,fma,f16c", false);
avx2_kernels!(vnni, "avx2,fma,f16c,avxvnni", true);
