//! Matrix products of quantized weights (interleaved at load, or read in place) with f32 activations.

use candle_core::quantized::k_quants::{
    BlockQ2K, BlockQ3K, BlockQ4K, BlockQ4_0, BlockQ5K, BlockQ5_0, BlockQ5_1, BlockQ6K, BlockQ8K, BlockQ8_0,
};
use candle_core::quantized::GgmlType;
use rayon::prelude::*;

use crate::interleaved::{self, GROUP_ROWS};
use crate::q4_1::{self, BlockQ8_1};
use crate::q8;
use crate::blocks;
use crate::dispatch::Kernels;
use crate::QuantType;

/// A row-major weight matrix `rows x cols` whose rows are stored in `dtype` blocks.
#[derive(Clone, Copy, Debug)]
pub struct QMatrix<'a> {
    dtype: QuantType,
    rows: usize,
    cols: usize,
    data: &'a [u8],
    /// Rows stored 16 side by side (`interleaved`), not one after another.
    interleaved: bool,
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
        if !cols.is_multiple_of(dtype.block_len()) {
            return Err(LayoutError(format!("row length {cols} is not a multiple of the {dtype} block {}", dtype.block_len())));
        }
        let expected = rows * dtype.bytes_for(cols);
        if data.len() != expected {
            return Err(LayoutError(format!("{dtype} matrix {rows}x{cols} needs {expected} bytes, got {}", data.len())));
        }
        let is_float = matches!(dtype, QuantType::F32 | QuantType::F16 | QuantType::BF16);
        if !is_float && !(data.as_ptr() as usize).is_multiple_of(2) {
            return Err(LayoutError(format!("{dtype} data is not aligned")));
        }
        if !is_supported(dtype) {
            return Err(LayoutError(format!("matrix products over {dtype} weights are not supported")));
        }
        Ok(QMatrix { dtype, rows, cols, data, interleaved: false })
    }

    /// Views the interleaved form (`interleaved::interleave`) of a matrix.
    pub fn interleaved(dtype: QuantType, rows: usize, cols: usize, data: &'a [u8]) -> Result<Self, LayoutError> {
        if !interleaved::interleavable(dtype) || !cols.is_multiple_of(dtype.block_len()) {
            return Err(LayoutError(format!("{dtype} rows of {cols} elements have no interleaved form")));
        }
        let expected = interleaved::interleaved_len(dtype, rows, cols);
        if data.len() != expected {
            return Err(LayoutError(format!("interleaved {dtype} matrix {rows}x{cols} needs {expected} bytes, got {}", data.len())));
        }
        Ok(QMatrix { dtype, rows, cols, data, interleaved: true })
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
        if self.interleaved {
            return interleaved::dequantize_row(self.dtype, self.data, r, out);
        }
        let bytes = &self.data[r * self.row_bytes()..(r + 1) * self.row_bytes()];
        match self.dtype {
            QuantType::F32 | QuantType::F16 | QuantType::BF16 => float_row(self.dtype, bytes, out),
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
            QuantType::Q8_1 | QuantType::Q8K | QuantType::I32 => unreachable!("rejected in QMatrix::new"),
        }
    }

    /// `out[t * rows + r] = sum_c x[t * cols + c] * W[r, c]` for `m` activation rows.
    pub fn matmul(&self, x: &[f32], m: usize, out: &mut [f32]) {
        matmul_many(&[*self], x, m, &mut [out]);
    }
}

/// A row of little-endian f32, f16 or bf16 values as f32 (exact), in plain per-value steps:
/// inlined into the float path's body (`float_rows`), they vectorize with each path's
/// instructions.
#[inline(always)]
fn float_row(dtype: QuantType, bytes: &[u8], out: &mut [f32]) {
    use crate::ops::portable::{bf16_to_f32, f16_to_f32};
    match dtype {
        QuantType::F32 => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            }
        }
        QuantType::F16 => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = f16_to_f32(u16::from_le_bytes([c[0], c[1]]));
            }
        }
        QuantType::BF16 => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = bf16_to_f32(u16::from_le_bytes([c[0], c[1]]));
            }
        }
        other => unreachable!("{other} is not a float type"),
    }
}

/// Activations prepared once for the weight types that read them.
enum PreparedActs {
    Float,
    Q8_0(Vec<BlockQ8_0>),
    Q8_1(Vec<BlockQ8_1>),
    Q8K(Vec<BlockQ8K>),
    Tile(blocks::QuantActs),
}

/// Which preparation a weight type needs; equal keys share one.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ActsKind {
    Float,
    Q8_0,
    Q8_1,
    Q8K,
    Tile { group: usize, block: usize },
}

fn acts_kind(dtype: QuantType) -> ActsKind {
    if let Some((group, block)) = blocks::acts_layout(dtype) {
        return ActsKind::Tile { group, block };
    }
    match dtype {
        QuantType::F32 | QuantType::F16 | QuantType::BF16 => ActsKind::Float,
        QuantType::Q5_1 => ActsKind::Q8_1,
        QuantType::Q5_0 => ActsKind::Q8_0,
        _ => ActsKind::Q8K,
    }
}

fn prepare(kernels: &Kernels, kind: ActsKind, x: &[f32], m: usize, cols: usize) -> PreparedActs {
    match kind {
        ActsKind::Float => PreparedActs::Float,
        ActsKind::Q8_0 => PreparedActs::Q8_0(quantize_rows(x, (m, cols, cols / 32), BlockQ8_0::zeros(), |row, b| {
            q8::quantize_row_q8_0(row, as_local_q8_0(b))
        })),
        ActsKind::Q8_1 => PreparedActs::Q8_1(quantize_rows(x, (m, cols, cols / 32), BlockQ8_1::ZERO, q4_1::quantize_row_q8_1)),
        ActsKind::Q8K => PreparedActs::Q8K(quantize_rows(x, (m, cols, cols / 256), BlockQ8K::zeros(), BlockQ8K::from_float)),
        ActsKind::Tile { group, block } => PreparedActs::Tile(blocks::QuantActs::quantize_on(kernels, x, m, cols, block, group)),
    }
}

/// Several matrices over the same input in ONE parallel region (q/k/v, gate/up): activations
/// are quantized once per weight type, and the pool is woken once instead of per matrix.
pub fn matmul_many(mats: &[QMatrix<'_>], x: &[f32], m: usize, outs: &mut [&mut [f32]]) {
    matmul_many_on(crate::dispatch::kernels(), mats, x, m, outs)
}

/// `matmul_many` on the given table's kernels.
pub(crate) fn matmul_many_on(kernels: &Kernels, mats: &[QMatrix<'_>], x: &[f32], m: usize, outs: &mut [&mut [f32]]) {
    let inputs = vec![0; mats.len()];
    matmul_inputs_on(kernels, &[(x, m)], mats, &inputs, outs)
}

/// Matrices over different inputs in ONE parallel region (a mixture's experts, each over its
/// own rows): `outs[i] = inputs[input_of[i]] mats[i]^T`, an input being `(x, m)` (`m` rows).
/// Each input is quantized once per weight type that reads it.
pub fn matmul_inputs(inputs: &[(&[f32], usize)], mats: &[QMatrix<'_>], input_of: &[usize], outs: &mut [&mut [f32]]) {
    matmul_inputs_on(crate::dispatch::kernels(), inputs, mats, input_of, outs)
}

/// `matmul_inputs` on the given table's kernels.
pub(crate) fn matmul_inputs_on(kernels: &Kernels, inputs: &[(&[f32], usize)], mats: &[QMatrix<'_>], input_of: &[usize], outs: &mut [&mut [f32]]) {
    assert!(mats.len() == outs.len() && mats.len() == input_of.len());
    for ((w, out), &i) in mats.iter().zip(outs.iter()).zip(input_of) {
        let (x, m) = inputs[i];
        assert_eq!(x.len(), m * w.cols, "activation size");
        assert_eq!(out.len(), m * w.rows, "output size");
    }
    crate::bandwidth::count_weight_bytes(mats.iter().map(|w| w.data.len()).sum());
    // one preparation per (input, activation kind)
    let keys: Vec<(usize, ActsKind)> = mats.iter().zip(input_of).map(|(w, &i)| (i, acts_kind(w.dtype))).collect();
    let mut prepared: Vec<((usize, ActsKind), PreparedActs)> = Vec::new();
    for (&key, w) in keys.iter().zip(mats) {
        if !prepared.iter().any(|(k, _)| *k == key) {
            let (x, m) = inputs[key.0];
            prepared.push((key, prepare(kernels, key.1, x, m, w.cols)));
        }
    }
    let tasks: Vec<Task> = mats
        .iter()
        .enumerate()
        .flat_map(|(i, w)| (0..w.rows).step_by(GROUP_ROWS).map(move |r0| Task { mat: i, rows: r0..(r0 + GROUP_ROWS).min(w.rows) }))
        .collect();
    let outs: Vec<SharedOut> = outs.iter_mut().map(|o| SharedOut(o.as_mut_ptr())).collect();
    let run = |scratch: &mut TaskScratch, task: &Task| {
        let w = &mats[task.mat];
        let (x, m) = inputs[input_of[task.mat]];
        let acts = &prepared.iter().find(|(k, _)| *k == keys[task.mat]).expect("prepared above").1;
        // SAFETY: tasks cover disjoint row ranges of each output; outputs outlive the region.
        unsafe { run_task(kernels, w, acts, x, m, task.rows.clone(), outs[task.mat], scratch) };
    };
    let total_work: usize = mats.iter().zip(input_of).map(|(w, &i)| w.rows * w.cols * inputs[i].1).sum();
    if total_work < SERIAL_WORK || tasks.len() == 1 {
        let mut scratch = TaskScratch::default();
        tasks.iter().for_each(|t| run(&mut scratch, t));
    } else {
        tasks.par_iter().for_each_init(TaskScratch::default, run);
    }
}

struct Task {
    mat: usize,
    rows: std::ops::Range<usize>,
}

#[derive(Default)]
struct TaskScratch {
    /// A row-major group repacked for the interleaved kernel.
    packed: Vec<u8>,
    /// A task's results, `[token][16]`.
    group_out: Vec<f32>,
    float: FloatScratch,
}

/// Computes output rows `rows` (one 16-row group) of one matrix for all `m` tokens.
///
/// # Safety
/// `out` must point to `m * w.rows` floats, and no other task may write rows `rows`.
#[allow(clippy::too_many_arguments)]
unsafe fn run_task(
    kernels: &Kernels,
    w: &QMatrix<'_>,
    acts: &PreparedActs,
    x: &[f32],
    m: usize,
    rows: std::ops::Range<usize>,
    out: SharedOut,
    scratch: &mut TaskScratch,
) {
    let n = w.rows;
    let write = |t: usize, r: usize, v: f32| {
        // SAFETY: t < m and r < n, so the index is inside the m * n output (caller contract).
        unsafe { *out.0.add(t * n + r) = v }
    };
    // 32 activation rows visited per weight row before moving on (cache blocking)
    let per_row = |dot: &dyn Fn(usize, usize) -> f32| {
        for t0 in (0..m).step_by(32) {
            for r in rows.clone() {
                for t in t0..(t0 + 32).min(m) {
                    write(t, r, dot(r, t));
                }
            }
        }
    };
    let group = rows.start / GROUP_ROWS;
    match acts {
        PreparedActs::Tile(qa) => {
            scratch.group_out.resize(m * GROUP_ROWS, 0.0);
            if w.interleaved {
                interleaved::group_matmul_on(kernels, w.dtype, w.data, group, qa, m, &mut scratch.group_out);
            } else {
                // rows kept in GGUF order (a matrix built outside a model load): repack this
                // group, then the one kernel
                scratch.packed.clear();
                scratch.packed.resize(interleaved::group_len(w.dtype, w.cols), 0);
                interleaved::interleave_groups(w.dtype, w.rows, w.cols, w.data, group, &mut scratch.packed);
                interleaved::group_matmul_on(kernels, w.dtype, &scratch.packed, 0, qa, m, &mut scratch.group_out);
            }
            // SAFETY: the caller's contract.
            unsafe { copy_group_rows(&scratch.group_out, m, n, rows, out) };
        }
        PreparedActs::Float => {
            // SAFETY: tables exist only for paths this CPU runs (`dispatch::table`).
            unsafe { (kernels.portable.float_rows)(w, x, m, rows.clone(), &mut scratch.float) };
            // SAFETY: the caller's contract.
            unsafe { copy_group_rows(&scratch.float.out, m, n, rows, out) };
        }
        // Q4_0, Q4_1 and Q8_0 are interleaved; these are the other 32-block types.
        PreparedActs::Q8_1(xq) => per_row(&|r, t| ggml_dot::<BlockQ5_1>(w, r, xq_as(xq), t)),
        PreparedActs::Q8_0(xq) => per_row(&|r, t| ggml_dot::<BlockQ5_0>(w, r, xq, t)),
        PreparedActs::Q8K(xq) => match w.dtype {
            QuantType::Q2K => per_row(&|r, t| ggml_dot::<BlockQ2K>(w, r, xq, t)),
            QuantType::Q3K => per_row(&|r, t| ggml_dot::<BlockQ3K>(w, r, xq, t)),
            QuantType::Q4K => per_row(&|r, t| ggml_dot::<BlockQ4K>(w, r, xq, t)),
            QuantType::Q5K => per_row(&|r, t| ggml_dot::<BlockQ5K>(w, r, xq, t)),
            _ => per_row(&|r, t| ggml_dot::<BlockQ6K>(w, r, xq, t)),
        },
    }
}

/// Buffers of the float-weight path: the task's weight rows as f32 (`[row][col]`), its results
/// `[token][16]`.
#[derive(Default)]
pub(crate) struct FloatScratch {
    rows: Vec<f32>,
    out: Vec<f32>,
}

/// Activation floats a token block of the float path keeps in the L2 cache while every row
/// block of the task reads it (128 KiB: half of the smallest L2 in use, room for the rows).
const FLOAT_BLOCK_FLOATS: usize = 32 * 1024;

/// Float (f32, f16, bf16) weight rows `rows` (at most 16) times `m` activation rows into
/// `scratch.out` (the body `dispatch` compiles per instruction set). The rows are converted
/// once, then `R` rows meet `T` tokens at a time (`tile`, that path's register tile: each
/// activation and weight vector loaded serves several products), over token blocks small
/// enough to stay cached.
/// Every product is summed exactly as `portable::dot` sums it, so the bits are a plain dot's
/// whatever the block.
#[inline(always)]
pub(crate) fn float_rows<const R: usize, const T: usize>(
    w: &QMatrix<'_>,
    x: &[f32],
    m: usize,
    rows: std::ops::Range<usize>,
    scratch: &mut FloatScratch,
    tile: impl Fn([&[f32]; R], [&[f32]; T]) -> [[f32; T]; R],
) {
    use crate::ops::portable::dot;
    let (cols, n_rows) = (w.cols, rows.len());
    scratch.out.resize(m * GROUP_ROWS, 0.0);
    let row_bytes = w.row_bytes();
    if m < T {
        // too few tokens to share a vector load: one row at a time, converted into a buffer
        // that stays in L1 (decode reads each weight once either way)
        scratch.rows.resize(cols, 0.0);
        for (i, r) in rows.enumerate() {
            float_row(w.dtype, &w.data[r * row_bytes..(r + 1) * row_bytes], &mut scratch.rows);
            for t in 0..m {
                scratch.out[t * GROUP_ROWS + i] = dot(&scratch.rows, &x[t * cols..(t + 1) * cols]);
            }
        }
        return;
    }
    scratch.rows.resize(n_rows * cols, 0.0);
    for (row, r) in scratch.rows.chunks_exact_mut(cols.max(1)).zip(rows) {
        float_row(w.dtype, &w.data[r * row_bytes..(r + 1) * row_bytes], row);
    }
    let weight_row = |i: usize| &scratch.rows[i * cols..(i + 1) * cols];
    let token = |t: usize| &x[t * cols..(t + 1) * cols];
    let block = (FLOAT_BLOCK_FLOATS / cols.max(1)).max(T) / T * T;
    let out = &mut scratch.out;
    for t0 in (0..m).step_by(block) {
        let t_end = (t0 + block).min(m);
        let whole_tokens = t0 + (t_end - t0) / T * T;
        for i0 in (0..n_rows).step_by(R) {
            let whole_rows = i0 + R <= n_rows;
            if whole_rows {
                let a: [&[f32]; R] = std::array::from_fn(|k| weight_row(i0 + k));
                for t in (t0..whole_tokens).step_by(T) {
                    let products = tile(a, std::array::from_fn(|k| token(t + k)));
                    for (k, row) in products.iter().enumerate() {
                        for (j, &v) in row.iter().enumerate() {
                            out[(t + j) * GROUP_ROWS + i0 + k] = v;
                        }
                    }
                }
            }
            // the pairs outside whole tiles: plain dots (the same bits)
            let first_plain = if whole_rows { whole_tokens } else { t0 };
            for i in i0..(i0 + R).min(n_rows) {
                for t in first_plain..t_end {
                    out[t * GROUP_ROWS + i] = dot(weight_row(i), token(t));
                }
            }
        }
    }
}

/// Copies a 16-row task's results (`[token][16]`) into output rows `rows` of every token.
///
/// # Safety
/// `out` must point to `m * n` floats, and no other task may write rows `rows`.
unsafe fn copy_group_rows(group_out: &[f32], m: usize, n: usize, rows: std::ops::Range<usize>, out: SharedOut) {
    assert!(rows.len() <= GROUP_ROWS && group_out.len() >= m * GROUP_ROWS);
    for t in 0..m {
        let src = &group_out[t * GROUP_ROWS..t * GROUP_ROWS + rows.len()];
        // SAFETY: the destination is row t's columns rows.start..rows.end, inside the m * n
        // output and owned by this task (caller contract); src does not alias it.
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), out.0.add(t * n + rows.start), src.len()) };
    }
}

/// candle-core's dot product of weight row r with activation row t.
fn ggml_dot<T: GgmlType>(w: &QMatrix<'_>, r: usize, xq: &[T::VecDotType], t: usize) -> f32 {
    let blocks: &[T] = cast_blocks(w.data);
    let bpr = w.cols / T::BLCK_SIZE;
    let apr = w.cols / T::VecDotType::BLCK_SIZE;
    T::vec_dot(w.cols, &blocks[r * bpr..(r + 1) * bpr], &xq[t * apr..(t + 1) * apr])
}

/// candle's Q5_1 reads Q8_1 activations; ours have the same layout.
fn xq_as(xq: &[BlockQ8_1]) -> &[candle_core::quantized::k_quants::BlockQ8_1] {
    const _: () = assert!(std::mem::size_of::<BlockQ8_1>() == std::mem::size_of::<candle_core::quantized::k_quants::BlockQ8_1>());
    // SAFETY: both are repr(C) { f16, f16, [i8; 32] } of 36 bytes, alignment 2, any bits valid.
    unsafe { std::slice::from_raw_parts(xq.as_ptr() as *const _, xq.len()) }
}

fn is_supported(dtype: QuantType) -> bool {
    !matches!(dtype, QuantType::Q8_1 | QuantType::Q8K | QuantType::I32)
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
// buffer outlives the parallel region, which joins before `matmul_many` returns.
unsafe impl Send for SharedOut {}
unsafe impl Sync for SharedOut {}

/// Below this many multiply-adds a product runs on the calling thread: waking the pool
/// costs more than it saves.
const SERIAL_WORK: usize = 1 << 16;

#[cfg(test)]
mod tests {
    use super::*;
    use half::{bf16, f16};
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
                let blocks: &mut [crate::q4_1::BlockQ4_1] = cast_blocks_mut(&mut bytes);
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
            QuantType::F16 => {
                for (c, v) in bytes.chunks_exact_mut(2).zip(&vals) {
                    c.copy_from_slice(&f16::from_f32(*v).to_le_bytes());
                }
            }
            QuantType::BF16 => {
                for (c, v) in bytes.chunks_exact_mut(2).zip(&vals) {
                    c.copy_from_slice(&bf16::from_f32(*v).to_le_bytes());
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
            (QuantType::F16, 301),
            (QuantType::BF16, 77),
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
    fn grouped_products_equal_single_ones() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(13);
        let cols = 512;
        let specs = [(QuantType::Q4K, 48), (QuantType::Q6K, 17), (QuantType::Q8_0, 33)];
        let data: Vec<Vec<u8>> = specs.iter().map(|&(d, rows)| random_blocks(&mut rng, d, rows, cols)).collect();
        let mats: Vec<QMatrix> = specs.iter().zip(&data).map(|(&(d, rows), b)| QMatrix::new(d, rows, cols, b).unwrap()).collect();
        for m in [1usize, 2, 5, 19] {
            let x: Vec<f32> = (0..m * cols).map(|_| rng.random_range(-2.0..2.0)).collect();
            let mut grouped: Vec<Vec<f32>> = mats.iter().map(|w| vec![0f32; m * w.rows()]).collect();
            let mut refs: Vec<&mut [f32]> = grouped.iter_mut().map(|v| v.as_mut_slice()).collect();
            matmul_many(&mats, &x, m, &mut refs);
            for (w, got) in mats.iter().zip(&grouped) {
                let mut single = vec![0f32; m * w.rows()];
                w.matmul(&x, m, &mut single);
                assert_eq!(got, &single, "{} m={m}", w.dtype());
            }
        }
    }

    /// Interleaved weights give the very bits of the row-major ones, for decode-sized and
    /// batch-sized products and row counts that leave a padded last group.
    #[test]
    fn interleaved_products_equal_row_major_ones() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(17);
        for (dtype, cols) in [(QuantType::Q4_1, 96), (QuantType::Q8_0, 64), (QuantType::Q4_0, 160), (QuantType::Q4K, 512), (QuantType::Q6K, 256)] {
            for rows in [16usize, 37] {
                let bytes = random_blocks(&mut rng, dtype, rows, cols);
                let plain = QMatrix::new(dtype, rows, cols, &bytes).unwrap();
                let packed_bytes = interleaved::interleave(dtype, rows, cols, &bytes);
                let packed = QMatrix::interleaved(dtype, rows, cols, &packed_bytes).unwrap();
                for m in [1usize, 5, 70] {
                    let x: Vec<f32> = (0..m * cols).map(|_| rng.random_range(-2.0..2.0)).collect();
                    let (mut want, mut got) = (vec![0f32; m * rows], vec![0f32; m * rows]);
                    plain.matmul(&x, m, &mut want);
                    packed.matmul(&x, m, &mut got);
                    assert_eq!(got, want, "{dtype} {rows}x{cols} m={m}");
                }
            }
        }
        assert!(QMatrix::interleaved(QuantType::Q4_1, 17, 32, &[0u8; 17 * 20]).is_err(), "17 rows take two padded groups");
    }

    /// Every path gives the scalar path's bits for every weight type it has a kernel for,
    /// interleaved or in GGUF row order, float weights included.
    #[test]
    fn every_path_gives_the_scalar_bits() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(19);
        let tables = crate::dispatch::runnable_tables();
        let cases = [(QuantType::Q4_1, 96), (QuantType::Q4_0, 64), (QuantType::Q8_0, 160), (QuantType::Q4K, 512), (QuantType::Q6K, 256), (QuantType::F32, 37), (QuantType::F16, 301), (QuantType::BF16, 77)];
        for (dtype, cols) in cases {
            let rows = 37;
            let bytes = random_blocks(&mut rng, dtype, rows, cols);
            let packed_bytes = if interleaved::interleavable(dtype) { interleaved::interleave(dtype, rows, cols, &bytes) } else { Vec::new() };
            let mut mats = vec![QMatrix::new(dtype, rows, cols, &bytes).unwrap()];
            if interleaved::interleavable(dtype) {
                mats.push(QMatrix::interleaved(dtype, rows, cols, &packed_bytes).unwrap());
            }
            for m in [1usize, 6, 21] {
                let x: Vec<f32> = (0..m * cols).map(|_| rng.random_range(-2.0..2.0)).collect();
                for w in &mats {
                    let run = |kernels: &Kernels| {
                        let mut out = vec![0f32; m * rows];
                        matmul_many_on(kernels, &[*w], &x, m, &mut [&mut out]);
                        out.iter().map(|v| v.to_bits()).collect::<Vec<u32>>()
                    };
                    let want = run(tables[0]);
                    for kernels in &tables[1..] {
                        assert!(run(kernels) == want, "{dtype} {} interleaved {} m {m}", kernels.isa.name(), w.interleaved);
                    }
                }
            }
        }
    }

    /// Float weights: every path's product is, bit for bit, a plain `dot` of the row as f32
    /// with the token, for row counts, token counts and lengths that leave rows and tokens
    /// outside whole tiles, lane tails, and several token blocks (2100 columns take 12 or 14
    /// tokens a block, 8960 columns two or four).
    #[test]
    fn float_products_are_plain_dots() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(23);
        let tables = crate::dispatch::runnable_tables();
        let shapes = [(QuantType::F32, 37, 37), (QuantType::BF16, 18, 301), (QuantType::F16, 21, 2100), (QuantType::BF16, 5, 8960)];
        for (dtype, rows, cols) in shapes {
            let bytes = random_blocks(&mut rng, dtype, rows, cols);
            let w = QMatrix::new(dtype, rows, cols, &bytes).unwrap();
            for m in [1usize, 2, 7, 21] {
                let x: Vec<f32> = (0..m * cols).map(|_| rng.random_range(-2.0..2.0)).collect();
                let mut row = vec![0f32; cols];
                let mut want = vec![0u32; m * rows];
                for r in 0..rows {
                    w.dequantize_row(r, &mut row);
                    for t in 0..m {
                        want[t * rows + r] = crate::ops::portable::dot(&row, &x[t * cols..(t + 1) * cols]).to_bits();
                    }
                }
                for kernels in &tables {
                    let mut out = vec![0f32; m * rows];
                    matmul_many_on(kernels, &[w], &x, m, &mut [&mut out]);
                    assert!(out.iter().map(|v| v.to_bits()).eq(want.iter().copied()), "{dtype} {rows}x{cols} m {m} on {}", kernels.isa.name());
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
