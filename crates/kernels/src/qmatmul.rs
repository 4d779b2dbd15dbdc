//! Matrix products of quantized weights (read in place, no repacking) with f32 activations.

use candle_core::quantized::k_quants::{
    BlockQ2K, BlockQ3K, BlockQ4K, BlockQ4_0, BlockQ5K, BlockQ5_0, BlockQ5_1, BlockQ6K, BlockQ8_0,
};
use candle_core::quantized::GgmlType;
use half::{bf16, f16};
use rayon::prelude::*;

use crate::q4_1::{self, BlockQ4_1, BlockQ8_1};
use crate::q8;
use crate::tile::{self, TILE_ROWS};
use crate::QuantType;

/// A row-major weight matrix `rows x cols` whose rows are stored in `dtype` blocks.
#[derive(Clone, Copy, Debug)]
pub struct QMatrix<'a> {
    dtype: QuantType,
    rows: usize,
    cols: usize,
    data: &'a [u8],
}

/// Why bytes cannot be viewed as a matrix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayoutError(pub String);

impl std::fmt::Display for LayoutError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'a> QMatrix<'a> {
    /// Views `data` as a matrix; checks size, row divisibility and alignment.
    pub fn new(dtype: QuantType, rows: usize, cols: usize, data: &'a [u8]) -> Result<Self, LayoutError> {
        if cols % dtype.block_len() != 0 {
            return Err(LayoutError(format!("row length {cols} is not a multiple of the {dtype} block {}", dtype.block_len())));
        }
        let expected = rows * dtype.bytes_for(cols);
        if data.len() != expected {
            return Err(LayoutError(format!("{dtype} matrix {rows}x{cols} needs {expected} bytes, got {}", data.len())));
        }
        let is_float = matches!(dtype, QuantType::F32 | QuantType::F16 | QuantType::BF16);
        if !is_float && data.as_ptr() as usize % 2 != 0 {
            return Err(LayoutError(format!("{dtype} data is not aligned")));
        }
        if !is_supported(dtype) {
            return Err(LayoutError(format!("matrix products over {dtype} weights are not supported")));
        }
        Ok(QMatrix { dtype, rows, cols, data })
    }

    pub fn dtype(&self) -> QuantType {
        self.dtype
    }
    pub fn rows(&self) -> usize {
        self.rows
    }
    pub fn cols(&self) -> usize {
        self.cols
    }

    fn row_bytes(&self) -> usize {
        self.dtype.bytes_for(self.cols)
    }

    /// Writes row `r` as floats into `out` (length `cols`).
    pub fn dequantize_row(&self, r: usize, out: &mut [f32]) {
        assert!(r < self.rows && out.len() == self.cols);
        let bytes = &self.data[r * self.row_bytes()..(r + 1) * self.row_bytes()];
        match self.dtype {
            QuantType::F32 => {
                for (o, c) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                    *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                }
            }
            QuantType::F16 => {
                for (o, c) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                    *o = f16::from_le_bytes([c[0], c[1]]).to_f32();
                }
            }
            QuantType::BF16 => {
                for (o, c) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                    *o = bf16::from_le_bytes([c[0], c[1]]).to_f32();
                }
            }
            QuantType::Q4_1 => q4_1::dequantize_q4_1(cast_blocks(bytes), out),
            QuantType::Q4_0 => BlockQ4_0::to_float(cast_blocks(bytes), out),
            QuantType::Q5_0 => BlockQ5_0::to_float(cast_blocks(bytes), out),
            QuantType::Q5_1 => BlockQ5_1::to_float(cast_blocks(bytes), out),
            QuantType::Q8_0 => BlockQ8_0::to_float(cast_blocks(bytes), out),
            QuantType::Q2K => BlockQ2K::to_float(cast_blocks(bytes), out),
            QuantType::Q3K => BlockQ3K::to_float(cast_blocks(bytes), out),
            QuantType::Q4K => BlockQ4K::to_float(cast_blocks(bytes), out),
            QuantType::Q5K => BlockQ5K::to_float(cast_blocks(bytes), out),
            QuantType::Q6K => BlockQ6K::to_float(cast_blocks(bytes), out),
            QuantType::Q8_1 | QuantType::Q8K => unreachable!("rejected in QMatrix::new"),
        }
    }

    /// `out[t * rows + r] = sum_c x[t * cols + c] * W[r, c]` for `m` activation rows.
    pub fn matmul(&self, x: &[f32], m: usize, out: &mut [f32]) {
        assert_eq!(x.len(), m * self.cols, "activation size");
        assert_eq!(out.len(), m * self.rows, "output size");
        if m >= TILE_MIN_TOKENS {
            if let Some(layout) = tile::tile_layout(self.dtype) {
                return self.matmul_tiled(x, m, out, layout);
            }
        }
        match self.dtype {
            QuantType::F32 | QuantType::F16 | QuantType::BF16 => self.matmul_float(x, m, out),
            QuantType::Q4_1 => {
                let bpr = self.cols / q4_1::QK;
                let xq = quantize_rows(x, (m, self.cols, bpr), BlockQ8_1::ZERO, q4_1::quantize_row_q8_1);
                let w: &[BlockQ4_1] = cast_blocks(self.data);
                for_each_output(self.rows, m, out, |r, t| {
                    q4_1::dot_q4_1_q8_1(&w[r * bpr..(r + 1) * bpr], &xq[t * bpr..(t + 1) * bpr])
                });
            }
            QuantType::Q4_0 => self.matmul_ggml_q8_0::<BlockQ4_0>(x, m, out),
            QuantType::Q5_0 => self.matmul_ggml::<BlockQ5_0>(x, m, out),
            QuantType::Q5_1 => self.matmul_ggml::<BlockQ5_1>(x, m, out),
            QuantType::Q8_0 => self.matmul_ggml_q8_0::<BlockQ8_0>(x, m, out),
            QuantType::Q2K => self.matmul_ggml::<BlockQ2K>(x, m, out),
            QuantType::Q3K => self.matmul_ggml::<BlockQ3K>(x, m, out),
            QuantType::Q4K => self.matmul_ggml::<BlockQ4K>(x, m, out),
            QuantType::Q5K => self.matmul_ggml::<BlockQ5K>(x, m, out),
            QuantType::Q6K => self.matmul_ggml::<BlockQ6K>(x, m, out),
            QuantType::Q8_1 | QuantType::Q8K => unreachable!("rejected in QMatrix::new"),
        }
    }

    /// Many activation rows: unpack 16 weight rows at a time and run the int8 tile kernel.
    fn matmul_tiled(&self, x: &[f32], m: usize, out: &mut [f32], (group, block): (usize, usize)) {
        let (rows, cols, row_bytes) = (self.rows, self.cols, self.row_bytes());
        let acts = tile::QuantActs::quantize(x, m, cols, block, group);
        let shared = SharedOut(out.as_mut_ptr());
        let scratch = || (tile::Tile::new(cols, group), vec![0f32; m * TILE_ROWS]);
        (0..rows.div_ceil(TILE_ROWS)).into_par_iter().for_each_init(scratch, |(tile, buf), ti| {
            let shared = shared;
            let (r0, r1) = (ti * TILE_ROWS, ((ti + 1) * TILE_ROWS).min(rows));
            let row_slices: Vec<&[u8]> = (r0..r1).map(|r| &self.data[r * row_bytes..(r + 1) * row_bytes]).collect();
            tile.fill(self.dtype, &row_slices);
            tile::tile_matmul(tile, &acts, m, buf);
            for t in 0..m {
                for r in r0..r1 {
                    // SAFETY: t * rows + r < m * rows == out.len(); rows r0..r1 belong to this task.
                    unsafe { *shared.0.add(t * rows + r) = buf[t * TILE_ROWS + r - r0] };
                }
            }
        });
    }

    /// Block types whose dot product candle-core provides (AVX2 on x86 for Q4_0, Q8_0, K-quants).
    fn matmul_ggml<T: GgmlType>(&self, x: &[f32], m: usize, out: &mut [f32]) {
        self.matmul_ggml_with::<T>(x, m, out, T::VecDotType::from_float);
    }

    /// Types whose activations are Q8_0: quantized with llama.cpp's rounding.
    fn matmul_ggml_q8_0<T: GgmlType<VecDotType = BlockQ8_0>>(&self, x: &[f32], m: usize, out: &mut [f32]) {
        self.matmul_ggml_with::<T>(x, m, out, |row, blocks| q8::quantize_row_q8_0(row, as_local_q8_0(blocks)));
    }

    fn matmul_ggml_with<T: GgmlType>(
        &self,
        x: &[f32],
        m: usize,
        out: &mut [f32],
        quantize: impl Fn(&[f32], &mut [T::VecDotType]) + Sync,
    ) {
        let bpr = self.cols / T::BLCK_SIZE;
        let apr = self.cols / T::VecDotType::BLCK_SIZE;
        let xq = quantize_rows(x, (m, self.cols, apr), T::VecDotType::zeros(), quantize);
        let w: &[T] = cast_blocks(self.data);
        let cols = self.cols;
        for_each_output(self.rows, m, out, |r, t| {
            T::vec_dot(cols, &w[r * bpr..(r + 1) * bpr], &xq[t * apr..(t + 1) * apr])
        });
    }

    fn matmul_float(&self, x: &[f32], m: usize, out: &mut [f32]) {
        let (rows, cols) = (self.rows, self.cols);
        let shared = SharedOut(out.as_mut_ptr());
        (0..rows).into_par_iter().for_each_init(Vec::new, |row, r| {
            let shared = shared;
            row.resize(cols, 0.0);
            self.dequantize_row(r, row);
            for t in 0..m {
                let v = crate::ops::dot(row, &x[t * cols..(t + 1) * cols]);
                // SAFETY: t * rows + r < out.len(); each weight row r is handled by one task.
                unsafe { *shared.0.add(t * rows + r) = v };
            }
        });
    }
}

fn is_supported(dtype: QuantType) -> bool {
    !matches!(dtype, QuantType::Q8_1 | QuantType::Q8K)
}

/// Reinterprets weight bytes as GGML blocks.
fn cast_blocks<T>(bytes: &[u8]) -> &[T] {
    let size = std::mem::size_of::<T>();
    assert_eq!(bytes.len() % size, 0, "byte length is not a whole number of blocks");
    assert_eq!(bytes.as_ptr() as usize % std::mem::align_of::<T>(), 0, "misaligned block data");
    // SAFETY: T is a repr(C) GGML block made only of integers and f16/f32 (every bit pattern
    // is valid); length and alignment were checked above; the borrow keeps the bytes alive.
    unsafe { std::slice::from_raw_parts(bytes.as_ptr() as *const T, bytes.len() / size) }
}

/// Views candle's Q8_0 blocks (private fields) as ours, which have the same layout.
fn as_local_q8_0(blocks: &mut [BlockQ8_0]) -> &mut [q8::BlockQ8_0] {
    const _: () = assert!(std::mem::size_of::<BlockQ8_0>() == std::mem::size_of::<q8::BlockQ8_0>());
    // SAFETY: both are repr(C) { f16, [i8; 32] } of 34 bytes with alignment 2; every bit
    // pattern is valid for both; the borrow is carried over unchanged.
    unsafe { std::slice::from_raw_parts_mut(blocks.as_mut_ptr() as *mut q8::BlockQ8_0, blocks.len()) }
}

/// Quantizes `m` activation rows of length `cols` into `per_row` dot-product blocks each.
fn quantize_rows<B: Clone + Send>(
    x: &[f32],
    (m, cols, per_row): (usize, usize, usize),
    zero: B,
    quantize: impl Fn(&[f32], &mut [B]) + Sync,
) -> Vec<B> {
    let mut out = vec![zero; m * per_row];
    if m >= 8 {
        out.par_chunks_mut(per_row).zip(x.par_chunks(cols)).for_each(|(o, row)| quantize(row, o));
    } else {
        out.chunks_mut(per_row).zip(x.chunks(cols)).for_each(|(o, row)| quantize(row, o));
    }
    out
}

/// Output pointer shared by workers that write disjoint elements.
#[derive(Clone, Copy)]
struct SharedOut(*mut f32);
// SAFETY: workers write disjoint indices (distinct output rows `r`), never read; the
// buffer outlives the parallel region, which joins before `for_each_output` returns.
unsafe impl Send for SharedOut {}
unsafe impl Sync for SharedOut {}

const ROWS_PER_TASK: usize = 16;
/// From this many activation rows on, the tile kernel beats one dot product per row pair.
const TILE_MIN_TOKENS: usize = 4;
const TOKENS_PER_TILE: usize = 32;

/// Runs `dot(r, t)` for every weight row r and activation row t, in parallel over weight rows.
fn for_each_output(rows: usize, m: usize, out: &mut [f32], dot: impl Fn(usize, usize) -> f32 + Sync) {
    let shared = SharedOut(out.as_mut_ptr());
    let n_tasks = rows.div_ceil(ROWS_PER_TASK);
    let task = |task: usize| {
        let shared = shared;
        let r0 = task * ROWS_PER_TASK;
        let r1 = (r0 + ROWS_PER_TASK).min(rows);
        for t0 in (0..m).step_by(TOKENS_PER_TILE) {
            for r in r0..r1 {
                for t in t0..(t0 + TOKENS_PER_TILE).min(m) {
                    let v = dot(r, t);
                    // SAFETY: index t * rows + r < m * rows == out.len(); each r belongs to one task.
                    unsafe { *shared.0.add(t * rows + r) = v };
                }
            }
        }
    };
    if rows * m < 64 {
        (0..n_tasks).for_each(task);
    } else {
        (0..n_tasks).into_par_iter().for_each(task);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Reference: dequantize every row and multiply in f64.
    fn reference(w: &QMatrix, x: &[f32], m: usize) -> Vec<f32> {
        let mut out = vec![0f32; m * w.rows()];
        let mut row = vec![0f32; w.cols()];
        for r in 0..w.rows() {
            w.dequantize_row(r, &mut row);
            for t in 0..m {
                let xs = &x[t * w.cols()..(t + 1) * w.cols()];
                out[t * w.rows() + r] = row.iter().zip(xs).map(|(a, b)| *a as f64 * *b as f64).sum::<f64>() as f32;
            }
        }
        out
    }

    fn random_blocks(rng: &mut impl Rng, dtype: QuantType, rows: usize, cols: usize) -> Vec<u8> {
        // random weights quantized by candle's own quantizer, so block fields are well formed
        let vals: Vec<f32> = (0..rows * cols).map(|_| rng.random_range(-1.0..1.0)).collect();
        let mut bytes = vec![0u8; rows * dtype.bytes_for(cols)];
        match dtype {
            QuantType::Q4K => BlockQ4K::from_float(&vals, cast_blocks_mut(&mut bytes)),
            QuantType::Q6K => BlockQ6K::from_float(&vals, cast_blocks_mut(&mut bytes)),
            QuantType::Q8_0 => BlockQ8_0::from_float(&vals, cast_blocks_mut(&mut bytes)),
            QuantType::Q4_0 => BlockQ4_0::from_float(&vals, cast_blocks_mut(&mut bytes)),
            QuantType::Q4_1 => {
                let blocks: &mut [BlockQ4_1] = cast_blocks_mut(&mut bytes);
                for (b, chunk) in blocks.iter_mut().zip(vals.chunks_exact(32)) {
                    let (lo, hi) = chunk.iter().fold((f32::MAX, f32::MIN), |(l, h), &v| (l.min(v), h.max(v)));
                    let d = (hi - lo) / 15.0;
                    b.d = f16::from_f32(d);
                    b.m = f16::from_f32(lo);
                    for j in 0..16 {
                        let q = |v: f32| ((v - lo) / d).round().clamp(0.0, 15.0) as u8;
                        b.qs[j] = q(chunk[j]) | (q(chunk[j + 16]) << 4);
                    }
                }
            }
            QuantType::F32 => {
                for (c, v) in bytes.chunks_exact_mut(4).zip(&vals) {
                    c.copy_from_slice(&v.to_le_bytes());
                }
            }
            other => panic!("no generator for {other}"),
        }
        bytes
    }

    fn cast_blocks_mut<T>(bytes: &mut [u8]) -> &mut [T] {
        let size = std::mem::size_of::<T>();
        assert_eq!(bytes.as_ptr() as usize % std::mem::align_of::<T>(), 0);
        // SAFETY: test helper; T is a plain-old-data GGML block, length and alignment checked.
        unsafe { std::slice::from_raw_parts_mut(bytes.as_mut_ptr() as *mut T, bytes.len() / size) }
    }

    #[test]
    fn matmul_matches_dequantized_reference() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let cases = [
            (QuantType::Q4_1, 32 * 3),
            (QuantType::Q4_0, 32 * 5),
            (QuantType::Q8_0, 32 * 7),
            (QuantType::Q4K, 256 * 3),
            (QuantType::Q6K, 256),
            (QuantType::F32, 37),
        ];
        for (dtype, cols) in cases {
            for (rows, m) in [(1usize, 1usize), (17, 3), (33, 40)] {
                let bytes = random_blocks(&mut rng, dtype, rows, cols);
                let w = QMatrix::new(dtype, rows, cols, &bytes).unwrap();
                let x: Vec<f32> = (0..m * cols).map(|_| rng.random_range(-2.0..2.0)).collect();
                let mut got = vec![0f32; m * rows];
                w.matmul(&x, m, &mut got);
                let want = reference(&w, &x, m);
                // activations are quantized to 8 bits: allow that rounding
                let scale = (cols as f32).sqrt();
                for (g, e) in got.iter().zip(&want) {
                    assert!((g - e).abs() <= 0.02 * scale, "{dtype} {rows}x{cols} m={m}: {g} vs {e}");
                }
            }
        }
    }

    #[test]
    fn rejects_bad_layouts() {
        let bytes = vec![0u8; 20];
        assert!(QMatrix::new(QuantType::Q4_1, 1, 31, &bytes).is_err());
        assert!(QMatrix::new(QuantType::Q4_1, 2, 32, &bytes).is_err());
        assert!(QMatrix::new(QuantType::Q8K, 1, 256, &[0u8; 292]).is_err());
    }
}
