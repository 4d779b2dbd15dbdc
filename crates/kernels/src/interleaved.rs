//! Weights repacked once at load so that 16 rows sit side by side (Q4_0, Q4_1, Q8_0, Q4_K,
//! Q6_K):
//! one VNNI instruction adds four elements of all 16 rows, a block's float steps run for 16
//! rows in one vector, and nothing is unpacked per call (no `Tile::fill`). A row's result is
//! bit-identical to `blocks::row_dot` on the GGUF rows: the same exact integers, then the same
//! `blocks::add_block` steps in block order, one row per vector lane.
//!
//! Layout: groups of 16 rows (the last one padded with zero rows); per group, one record per
//! GGUF block (32 elements, or 256 for the K types), in block order. A record holds 16 f16
//! `d`, then per type: Q4_1 16 f16 mins; Q4_K 16 f16 `dmin`, the 8 groups' 6-bit scales as
//! bytes `[group][row]` and their mins as bytes `[group pair][row][2]`; Q6_K its 16 groups'
//! signed scales `[group pair][row][2]` (pairs make i16 pairs for VNNI's 16-bit dot); then the
//! codes. 4-bit codes (and Q6_K's low four bits) come in vectors of 64 bytes: in vector v,
//! row r owns bytes 4r..4r+4, whose low nibbles are elements 8v..8v+4 and high nibbles
//! elements 8v+4..8v+8. Q6_K's top two bits come in vectors too: in vector u, bits 2q..2q+2
//! of row r's byte 4r+i belong to element 16u+4q+i; each 16-element group g keeps its bytes
//! together (nibble vectors 2g and 2g+1, then top-bit vector g: 192 bytes), so that a group's
//! codes stream from one place instead of two (measured: decode's Q6_K product had stalled on
//! the loads of a separate top-bit region). Q8_0 codes come in 8 vectors: in vector v, row r's
//! bytes 4r..4r+4 are elements 4v..4v+4 plus 128 (unsigned, as VNNI wants them). Records are
//! the size of 16 GGUF blocks, except Q4_K's (2368 bytes for 2304: its scales are kept as
//! whole bytes).

use half::f16;
use rayon::prelude::*;

use crate::dispatch::Kernels;
use crate::blocks::{add_block, q4k_scale_bytes, unpack_codes, QuantActs};
use crate::QuantType;

/// Rows per group: one i32 (or f32) lane each in a 512-bit register.
pub const GROUP_ROWS: usize = 16;

/// Whether `dtype` has an interleaved form.
pub fn interleavable(dtype: QuantType) -> bool {
    matches!(dtype, QuantType::Q4_0 | QuantType::Q4_1 | QuantType::Q8_0 | QuantType::Q4K | QuantType::Q6K)
}

/// Where one block record keeps its parts (byte offsets; `d` is at 0).
#[derive(Clone, Copy)]
pub(crate) struct Record {
    pub size: usize,
    /// Q4_1's mins or Q4_K's dmin (16 f16).
    pub mins: usize,
    /// Q4_K's group scales (`[group][row]`, 128 bytes), then its group mins (`[group pair][row][2]`,
    /// 128 bytes); Q6_K's scales (`[group pair][row][2]`, 256 bytes).
    pub group_scales: usize,
    pub codes: usize,
    /// Q6_K's top two bits of every code (16 vectors).
    pub high_bits: usize,
}

pub(crate) fn record(dtype: QuantType) -> Record {
    match dtype {
        QuantType::Q4_0 => Record { size: 16 * 18, mins: 0, group_scales: 0, codes: 32, high_bits: 0 },
        QuantType::Q4_1 => Record { size: 16 * 20, mins: 32, group_scales: 0, codes: 64, high_bits: 0 },
        QuantType::Q8_0 => Record { size: 16 * 34, mins: 0, group_scales: 0, codes: 32, high_bits: 0 },
        QuantType::Q4K => Record { size: 64 + 256 + 16 * 128, mins: 32, group_scales: 64, codes: 320, high_bits: 0 },
        QuantType::Q6K => Record { size: 16 * 210, mins: 0, group_scales: 32, codes: 288, high_bits: 288 + 128 },
        other => unreachable!("{other} has no interleaved form"),
    }
}

/// Bytes of one Q6_K code group (two nibble vectors and one top-bit vector); group g's
/// nibble vectors start at `codes + Q6K_GROUP_BYTES * g`, its top bits at
/// `high_bits + Q6K_GROUP_BYTES * g`.
pub(crate) const Q6K_GROUP_BYTES: usize = 192;

/// Offset of nibble vector `v` from a record's codes.
fn nibble_vector_at(dtype: QuantType, v: usize) -> usize {
    match dtype {
        QuantType::Q6K => (v / 2) * Q6K_GROUP_BYTES + (v % 2) * 64,
        _ => v * 64,
    }
}

/// Where group g's byte of row `lane` sits in a `[group pair][row][2]` table.
fn pair_index(g: usize, lane: usize) -> usize {
    32 * (g / 2) + 2 * lane + g % 2
}

/// Bytes of the interleaved form of a `rows x cols` matrix (rows padded to 16).
pub fn interleaved_len(dtype: QuantType, rows: usize, cols: usize) -> usize {
    rows.div_ceil(GROUP_ROWS) * (cols / dtype.block_len()) * record(dtype).size
}

/// Repacks `rows` GGUF rows of `cols` elements (row-major blocks) into the interleaved form.
pub fn interleave(dtype: QuantType, rows: usize, cols: usize, data: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; interleaved_len(dtype, rows, cols)];
    interleave_groups(dtype, rows, cols, data, 0, &mut out);
    out
}

/// Bytes of one 16-row group of the interleaved form.
pub fn group_len(dtype: QuantType, cols: usize) -> usize {
    (cols / dtype.block_len()) * record(dtype).size
}

/// Writes row groups `first_group..` of the interleaved form into `out` (zeroed, a whole
/// number of groups), from the matrix's GGUF rows in `data`; lets a loader repack a large
/// matrix piece by piece.
pub fn interleave_groups(dtype: QuantType, rows: usize, cols: usize, data: &[u8], first_group: usize, out: &mut [u8]) {
    let len = dtype.block_len();
    assert!(interleavable(dtype) && cols.is_multiple_of(len) && data.len() == rows * dtype.bytes_for(cols));
    let (size, rec, group_bytes) = (dtype.block_bytes(), record(dtype), group_len(dtype, cols));
    assert!(out.len().is_multiple_of(group_bytes) && (first_group + out.len() / group_bytes) * GROUP_ROWS < rows + GROUP_ROWS);
    let row_bytes = dtype.bytes_for(cols);
    out.par_chunks_mut(group_bytes).enumerate().for_each(|(i, records)| {
        let group = first_group + i;
        let mut codes = [0u8; 256];
        for lane in 0..GROUP_ROWS.min(rows - group * GROUP_ROWS) {
            let row = &data[(group * GROUP_ROWS + lane) * row_bytes..][..row_bytes];
            for (block, dst) in row.chunks_exact(size).zip(records.chunks_exact_mut(rec.size)) {
                let d_at = if dtype == QuantType::Q6K { 208 } else { 0 };
                dst[2 * lane..2 * lane + 2].copy_from_slice(&block[d_at..d_at + 2]);
                if matches!(dtype, QuantType::Q4_1 | QuantType::Q4K) {
                    dst[rec.mins + 2 * lane..rec.mins + 2 * lane + 2].copy_from_slice(&block[2..4]);
                }
                if dtype == QuantType::Q4K {
                    let (sc, mn) = q4k_scale_bytes(block);
                    for g in 0..8 {
                        dst[rec.group_scales + 16 * g + lane] = sc[g];
                        dst[rec.group_scales + 128 + pair_index(g, lane)] = mn[g];
                    }
                }
                if dtype == QuantType::Q6K {
                    for g in 0..16 {
                        dst[rec.group_scales + pair_index(g, lane)] = block[192 + g];
                    }
                }
                unpack_codes(dtype, block, &mut codes[..len]);
                place_codes(dtype, &codes[..len], lane, &mut dst[rec.codes..]);
                if dtype == QuantType::Q6K {
                    place_high_bits(&codes, lane, &mut dst[rec.high_bits..]);
                }
            }
        }
    });
}

/// One Q4_1 block of a row before packing: `d` and `min` as f16 bits, and its 32 codes (each
/// 0..=15) in element order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Q4_1Block {
    pub d: u16,
    pub min: u16,
    pub codes: [u8; 32],
}

/// The interleaved Q4_1 form of a `rows x cols` matrix built straight from its blocks:
/// `fill(row, blocks)` writes row `row`'s `cols / 32` blocks, and the result is byte for byte
/// what `interleave` makes of the same blocks in GGUF rows, without packing the codes into
/// GGUF bytes first (a quantizer that tries many candidates, as AWQ's search does, skips a
/// copy and a repack per candidate). The 16-row groups are built in parallel.
pub fn interleave_q4_1_from(rows: usize, cols: usize, fill: impl Fn(usize, &mut [Q4_1Block]) + Sync) -> Vec<u8> {
    assert!(cols.is_multiple_of(32), "Q4_1 rows are whole 32-element blocks");
    let rec = record(QuantType::Q4_1);
    let group_bytes = group_len(QuantType::Q4_1, cols);
    let mut out = vec![0u8; interleaved_len(QuantType::Q4_1, rows, cols)];
    out.par_chunks_mut(group_bytes.max(1)).enumerate().for_each(|(group, records)| {
        let mut blocks = vec![Q4_1Block::default(); cols / 32];
        for lane in 0..GROUP_ROWS.min(rows - group * GROUP_ROWS) {
            fill(group * GROUP_ROWS + lane, &mut blocks);
            for (block, dst) in blocks.iter().zip(records.chunks_exact_mut(rec.size)) {
                dst[2 * lane..2 * lane + 2].copy_from_slice(&block.d.to_le_bytes());
                dst[rec.mins + 2 * lane..rec.mins + 2 * lane + 2].copy_from_slice(&block.min.to_le_bytes());
                place_codes(QuantType::Q4_1, &block.codes, lane, &mut dst[rec.codes..]);
            }
        }
    });
    out
}

/// Writes one row's unsigned codes of a block into lane `lane` of a record's codes.
fn place_codes(dtype: QuantType, codes: &[u8], lane: usize, dst: &mut [u8]) {
    if dtype == QuantType::Q8_0 {
        for (j, four) in codes.chunks_exact(4).enumerate() {
            dst[j * 64 + 4 * lane..][..4].copy_from_slice(four);
        }
        return;
    }
    for (v, eight) in codes.chunks_exact(8).enumerate() {
        let out = &mut dst[nibble_vector_at(dtype, v) + 4 * lane..][..4];
        for i in 0..4 {
            out[i] = (eight[i] & 0x0F) | ((eight[4 + i] & 0x0F) << 4);
        }
    }
}

/// Writes the top two bits of one row's 256 Q6_K codes into lane `lane` of the high vectors.
fn place_high_bits(codes: &[u8; 256], lane: usize, dst: &mut [u8]) {
    for (u, sixteen) in codes.chunks_exact(16).enumerate() {
        let out = &mut dst[u * Q6K_GROUP_BYTES + 4 * lane..][..4];
        for i in 0..4 {
            out[i] = (0..4).fold(0, |bits, q| bits | ((sixteen[4 * q + i] >> 4) << (2 * q)));
        }
    }
}

/// One row's share of a block record, decoded: codes, d, -dmin and integer group scales.
struct RowBlock {
    d: f32,
    neg_dmin: f32,
    sc: [i32; 16],
    mn: [i32; 16],
}

/// Decodes lane `lane` of one record (scalar); codes go to `codes[..block_len]`.
fn record_row(dtype: QuantType, rec: &[u8], lane: usize, codes: &mut [u8; 256]) -> RowBlock {
    let layout = record(dtype);
    let f16_at = |i: usize| f16::from_le_bytes([rec[i], rec[i + 1]]).to_f32();
    let src = &rec[layout.codes..];
    for (e, c) in codes.iter_mut().enumerate().take(dtype.block_len()) {
        *c = if dtype == QuantType::Q8_0 {
            src[(e / 4) * 64 + 4 * lane + e % 4]
        } else {
            let byte = src[nibble_vector_at(dtype, e / 8) + 4 * lane + e % 4];
            let low = if e % 8 < 4 { byte & 0x0F } else { byte >> 4 };
            if dtype == QuantType::Q6K {
                let high = rec[layout.high_bits + (e / 16) * Q6K_GROUP_BYTES + 4 * lane + e % 4] >> (2 * ((e / 4) % 4));
                low | ((high & 3) << 4)
            } else {
                low
            }
        };
    }
    let d = f16_at(2 * lane);
    let (mut sc, mut mn) = ([1i32; 16], [1i32; 16]);
    let neg_dmin = match dtype {
        QuantType::Q4_1 => f16_at(layout.mins + 2 * lane),
        QuantType::Q4_0 => -8.0 * d,
        QuantType::Q8_0 => -128.0 * d,
        QuantType::Q6K => {
            for g in 0..16 {
                sc[g] = rec[layout.group_scales + pair_index(g, lane)] as i8 as i32;
                mn[g] = 32 * sc[g];
            }
            -d
        }
        _ => {
            for g in 0..8 {
                sc[g] = rec[layout.group_scales + 16 * g + lane] as i32;
                mn[g] = rec[layout.group_scales + 128 + pair_index(g, lane)] as i32;
            }
            -f16_at(layout.mins + 2 * lane)
        }
    };
    RowBlock { d, neg_dmin, sc, mn }
}

/// Row `r` of an interleaved matrix as floats (`out.len()` is the row length), with the
/// arithmetic of the GGUF dequantizers.
pub fn dequantize_row(dtype: QuantType, data: &[u8], r: usize, out: &mut [f32]) {
    let (len, size) = (dtype.block_len(), record(dtype).size);
    let n_blocks = out.len() / len;
    let mut codes = [0u8; 256];
    for (b, values) in out.chunks_exact_mut(len).enumerate() {
        let rec = &data[((r / GROUP_ROWS) * n_blocks + b) * size..][..size];
        let row = record_row(dtype, rec, r % GROUP_ROWS, &mut codes);
        if dtype == QuantType::Q6K {
            for (g, group) in values.chunks_exact_mut(16).enumerate() {
                let scale = row.d * row.sc[g] as f32;
                for (v, &c) in group.iter_mut().zip(&codes[16 * g..]) {
                    *v = scale * (c as i32 - 32) as f32;
                }
            }
        } else if dtype == QuantType::Q4K {
            for (g, group) in values.chunks_exact_mut(32).enumerate() {
                let (scale, min) = (row.d * row.sc[g] as f32, -row.neg_dmin * row.mn[g] as f32);
                for (v, &c) in group.iter_mut().zip(&codes[32 * g..]) {
                    *v = scale * c as f32 - min;
                }
            }
        } else {
            // w = d * code + m, with Q4_0's m = -8d and Q8_0's m = -128d (codes are unsigned)
            for (v, &c) in values.iter_mut().zip(&codes) {
                *v = row.d * c as f32 + row.neg_dmin;
            }
        }
    }
}

/// `out[t * 16 + lane] = dot(row 16 * group + lane, activation row t)` for tokens `0..m`,
/// on the active kernel path. `acts` are quantized for `dtype` (`blocks::acts_layout`).
pub fn group_matmul(dtype: QuantType, data: &[u8], group: usize, acts: &QuantActs, m: usize, out: &mut [f32]) {
    group_matmul_on(crate::dispatch::kernels(), dtype, data, group, acts, m, out)
}

/// `group_matmul` on the given table's kernel.
pub(crate) fn group_matmul_on(kernels: &Kernels, dtype: QuantType, data: &[u8], group: usize, acts: &QuantActs, m: usize, out: &mut [f32]) {
    let len = group_len(dtype, acts.k);
    let bytes = &data[group * len..(group + 1) * len];
    assert!(interleavable(dtype) && Some((acts.group, acts.block)) == crate::blocks::acts_layout(dtype));
    assert!(acts.q.len() >= m * acts.k && out.len() >= m * GROUP_ROWS);
    // SAFETY: tables exist only for paths this CPU runs (`dispatch::table`); `bytes` holds the
    // group's records for k elements; the activations hold m rows of k values (asserted).
    unsafe { (kernels.group_matmul)(dtype, bytes, acts, m, out) }
}

/// The scalar reference: every lane decoded on its own, summed in block order.
pub(crate) fn group_matmul_scalar(dtype: QuantType, bytes: &[u8], acts: &QuantActs, m: usize, out: &mut [f32]) {
    let (k, len) = (acts.k, dtype.block_len());
    let (n_blocks, n_groups) = (k / len, k / acts.group);
    let mut codes = [0u8; 256];
    for t in 0..m {
        for lane in 0..GROUP_ROWS {
            let mut total = 0f32;
            for (b, rec) in bytes.chunks_exact(record(dtype).size).enumerate() {
                let row = record_row(dtype, rec, lane, &mut codes);
                let (mut sum_a, mut sum_m) = (0i32, 0i32);
                for (g, group) in codes[..len].chunks_exact(acts.group).enumerate() {
                    let a = &acts.q[t * k + b * len + g * acts.group..][..acts.group];
                    sum_a += row.sc[g] * group.iter().zip(a).map(|(&c, &x)| c as i32 * x as i32).sum::<i32>();
                    sum_m += row.mn[g] * acts.group_sum[t * n_groups + b * len / acts.group + g];
                }
                total = add_block(total, sum_a, sum_m, row.d, row.neg_dmin, acts.scale[t * n_blocks + b]);
            }
            out[t * GROUP_ROWS + lane] = total;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    const TYPES: [QuantType; 5] = [QuantType::Q4_0, QuantType::Q4_1, QuantType::Q8_0, QuantType::Q4K, QuantType::Q6K];

    /// Random blocks with sane f16 scales (and mins).
    fn random_rows(rng: &mut impl Rng, dtype: QuantType, rows: usize, cols: usize) -> Vec<u8> {
        let mut bytes: Vec<u8> = (0..rows * dtype.bytes_for(cols)).map(|_| rng.random()).collect();
        for block in bytes.chunks_exact_mut(dtype.block_bytes()) {
            let d_at = if dtype == QuantType::Q6K { 208 } else { 0 };
            block[d_at..d_at + 2].copy_from_slice(&f16::from_f32(rng.random_range(-0.05..0.05)).to_le_bytes());
            if matches!(dtype, QuantType::Q4_1 | QuantType::Q4K) {
                block[2..4].copy_from_slice(&f16::from_f32(rng.random_range(-0.5..0.5)).to_le_bytes());
            }
        }
        bytes
    }

    #[test]
    fn interleaved_rows_dequantize_like_the_originals() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(31);
        for dtype in TYPES {
            let len = dtype.block_len();
            for (rows, cols) in [(1, len), (17, 3 * len), (33, 2 * len)] {
                let data = random_rows(&mut rng, dtype, rows, cols);
                let packed = interleave(dtype, rows, cols, &data);
                assert_eq!(packed.len(), interleaved_len(dtype, rows, cols));
                let matrix = crate::QMatrix::new(dtype, rows, cols, &data).unwrap();
                let (mut want, mut got) = (vec![0f32; cols], vec![0f32; cols]);
                for r in 0..rows {
                    matrix.dequantize_row(r, &mut want);
                    dequantize_row(dtype, &packed, r, &mut got);
                    assert_eq!(got, want, "{dtype} {rows}x{cols} row {r}");
                }
            }
        }
    }

    #[test]
    fn q4_1_blocks_interleave_like_their_gguf_rows() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(33);
        for (rows, cols) in [(1, 32), (17, 96), (32, 64)] {
            let blocks: Vec<Q4_1Block> = (0..rows * cols / 32)
                .map(|_| Q4_1Block { d: rng.random(), min: rng.random(), codes: std::array::from_fn(|_| rng.random_range(0..16)) })
                .collect();
            let gguf: Vec<u8> = blocks
                .iter()
                .flat_map(|b| {
                    let packed = (0..16).map(|j| b.codes[j] | (b.codes[j + 16] << 4));
                    b.d.to_le_bytes().into_iter().chain(b.min.to_le_bytes()).chain(packed)
                })
                .collect();
            let per_row = cols / 32;
            let got = interleave_q4_1_from(rows, cols, |r, out| out.copy_from_slice(&blocks[r * per_row..(r + 1) * per_row]));
            assert!(got == interleave(QuantType::Q4_1, rows, cols, &gguf), "{rows}x{cols}");
        }
    }

    /// Every path's kernel agrees with the scalar reference bit for bit, and both equal
    /// `row_dot` on the original rows (so a model whose weights are interleaved decodes exactly
    /// as the block formulas say, on any path), for 1 to 13 tokens (every token step) and a
    /// padded last group.
    #[test]
    fn group_products_equal_the_row_kernel_bit_for_bit() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(32);
        for dtype in TYPES {
            let (rows, cols) = (21, 3 * dtype.block_len() + if dtype.block_len() == 32 { 4 * 32 } else { 0 });
            let data = random_rows(&mut rng, dtype, rows, cols);
            for m in 1..=13 {
                let x: Vec<f32> = (0..m * cols).map(|_| rng.random_range(-3.0..3.0)).collect();
                check_every_path(dtype, rows, cols, &data, &x, m);
            }
        }
    }

    /// The largest integers the kernels can meet (every code at its maximum, or Q8_0's -128,
    /// against activations of +-127) are summed without overflow on every path.
    #[test]
    fn extreme_codes_and_activations_do_not_overflow() {
        for dtype in TYPES {
            let (rows, cols) = (16, 2 * dtype.block_len());
            for fill in [0xFFu8, 0x80, 0x7F] {
                let mut data = vec![fill; rows * dtype.bytes_for(cols)];
                for block in data.chunks_exact_mut(dtype.block_bytes()) {
                    let d_at = if dtype == QuantType::Q6K { 208 } else { 0 };
                    block[d_at..d_at + 2].copy_from_slice(&f16::from_f32(0.01).to_le_bytes());
                    if matches!(dtype, QuantType::Q4_1 | QuantType::Q4K) {
                        block[2..4].copy_from_slice(&f16::from_f32(0.02).to_le_bytes());
                    }
                }
                for sign in [1.0f32, -1.0] {
                    let x = vec![sign; 5 * cols];
                    check_every_path(dtype, rows, cols, &data, &x, 5);
                }
            }
        }
    }

    /// Interleaves `data`, runs every path on every group, compares with the scalar kernel
    /// and with `row_dot`.
    fn check_every_path(dtype: QuantType, rows: usize, cols: usize, data: &[u8], x: &[f32], m: usize) {
        let (act_group, block) = crate::blocks::acts_layout(dtype).unwrap();
        let packed = interleave(dtype, rows, cols, data);
        let row_bytes = dtype.bytes_for(cols);
        let acts = QuantActs::quantize(x, m, cols, block, act_group);
        let len = group_len(dtype, cols);
        for group in 0..rows.div_ceil(GROUP_ROWS) {
            let mut slow = vec![1f32; m * GROUP_ROWS];
            group_matmul_scalar(dtype, &packed[group * len..(group + 1) * len], &acts, m, &mut slow);
            for t in 0..m {
                for lane in 0..GROUP_ROWS {
                    let r = group * GROUP_ROWS + lane;
                    let want = if r < rows { crate::blocks::row_dot(dtype, &data[r * row_bytes..][..row_bytes], &acts, t) } else { 0.0 };
                    assert_eq!(slow[t * GROUP_ROWS + lane].to_bits(), want.to_bits(), "{dtype} scalar m {m} row {r} token {t}");
                }
            }
            for kernels in crate::dispatch::runnable_tables() {
                let mut fast = vec![2f32; m * GROUP_ROWS];
                group_matmul_on(kernels, dtype, &packed, group, &acts, m, &mut fast);
                let same = fast.iter().zip(&slow).all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "{dtype} {} m {m} group {group}:\n{fast:?}\n{slow:?}", kernels.isa.name());
            }
        }
    }
}
