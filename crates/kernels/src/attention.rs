//! Causal grouped-query attention over one sequence's contiguous f16 KV cache.

use half::f16;
use rayon::prelude::*;

use crate::dispatch::{kernels, Kernels};
use crate::ops::portable::{axpy, softmax, LANES};

/// Head layout of an attention layer.
#[derive(Debug, Clone, Copy)]
pub struct HeadShape {
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
}

impl HeadShape {
    pub fn q_width(&self) -> usize {
        self.n_heads * self.head_dim
    }
    pub fn kv_width(&self) -> usize {
        self.n_kv_heads * self.head_dim
    }
}

/// Queries handled by one task; the task converts its keys and values to f32 once.
const QUERY_BLOCK: usize = 16;

/// A sequence's cached keys and values, one row (`n_kv_heads * head_dim` values) per position.
pub trait KvRows: Sync {
    fn key_row(&self, pos: usize) -> &[f16];
    fn value_row(&self, pos: usize) -> &[f16];
}

/// Rows stored back to back.
pub struct ContiguousRows<'a> {
    pub keys: &'a [f16],
    pub values: &'a [f16],
    pub width: usize,
}

impl KvRows for ContiguousRows<'_> {
    fn key_row(&self, pos: usize) -> &[f16] {
        &self.keys[pos * self.width..(pos + 1) * self.width]
    }
    fn value_row(&self, pos: usize) -> &[f16] {
        &self.values[pos * self.width..(pos + 1) * self.width]
    }
}

/// One sequence's queries in a batched attention call.
pub struct AttentionItem<'a> {
    /// `[n_tokens, n_heads * head_dim]` queries for positions `start .. start + n_tokens`.
    pub q: &'a [f32],
    pub kv: &'a dyn KvRows,
    pub start: usize,
    /// Same shape as `q`.
    pub out: &'a mut [f32],
}

/// Attention for `n_tokens` queries at positions `start .. start + n_tokens`.
///
/// `kv` holds at least `start + n_tokens` positions; query token i sees positions
/// `0 ..= start + i`. Scores, softmax and sums are computed in f32.
pub fn causal_attention(shape: HeadShape, q: &[f32], kv: &dyn KvRows, start: usize, out: &mut [f32]) {
    attention_batch(shape, &mut [AttentionItem { q, kv, start, out }]);
}

/// Causal attention for several sequences in one parallel region (tasks: sequence x kv head
/// x block of queries).
pub fn attention_batch(shape: HeadShape, items: &mut [AttentionItem<'_>]) {
    attention_batch_on(kernels(), shape, items)
}

/// `attention_batch` on the given table's kernels.
pub(crate) fn attention_batch_on(kernels: &Kernels, shape: HeadShape, items: &mut [AttentionItem<'_>]) {
    let mut tasks = Vec::new();
    let mut work = 0;
    for (i, item) in items.iter().enumerate() {
        assert_eq!(item.out.len(), item.q.len());
        let n_tokens = item.q.len() / shape.q_width();
        work += n_tokens * shape.n_heads * (item.start + n_tokens) * shape.head_dim;
        for kv_head in 0..shape.n_kv_heads {
            for block in 0..n_tokens.div_ceil(QUERY_BLOCK) {
                tasks.push((i, kv_head, block * QUERY_BLOCK..((block + 1) * QUERY_BLOCK).min(n_tokens)));
            }
        }
    }
    let outs: Vec<SharedOut> = items.iter_mut().map(|it| SharedOut(it.out.as_mut_ptr())).collect();
    let items = &*items;
    let job_kernel = kernels.portable.attention_job;
    let run = |scratch: &mut Scratch, (i, kv_head, tokens): &(usize, usize, std::ops::Range<usize>)| {
        let item = &items[*i];
        let job = Job { shape, q: item.q, start: item.start, kv_head: *kv_head, tokens: tokens.clone(), out: outs[*i], f16_row: kernels.f16_row };
        // SAFETY: each task writes only the output heads of its kv-head group for its tokens
        // of its own sequence's output buffer; the active table's code runs on this CPU.
        unsafe { job_kernel(&job, item.kv, scratch) };
    };
    if work < 1 << 16 || tasks.len() == 1 {
        let mut scratch = Scratch::default();
        tasks.iter().for_each(|t| run(&mut scratch, t));
    } else {
        tasks.par_iter().for_each_init(Scratch::default, run);
    }
}

/// Per-worker buffers of the attention tasks.
#[derive(Default)]
pub(crate) struct Scratch {
    /// Keys in transposed tiles (`gather_keys_transposed`).
    keys: Vec<f32>,
    /// One key row as f32 on its way into `keys`.
    key_row: Vec<f32>,
    values: Vec<f32>,
    scores: Vec<f32>,
    rows: Vec<QueryRow>,
}

#[derive(Clone, Copy)]
pub(crate) struct SharedOut(*mut f32);
// SAFETY: tasks write disjoint (token, head) slices of the output and never read it; the
// buffer outlives the parallel region.
unsafe impl Send for SharedOut {}
unsafe impl Sync for SharedOut {}

/// The queries of one kv-head group for a block of tokens.
pub(crate) struct Job<'a> {
    shape: HeadShape,
    q: &'a [f32],
    start: usize,
    kv_head: usize,
    tokens: std::ops::Range<usize>,
    out: SharedOut,
    /// The path's f16 conversion (F16C where the path has it).
    f16_row: crate::dispatch::F16Row,
}

/// Keys (then values) taken together: a tile stays in the L1 cache while every query row of
/// the job reads it, where a row at a time streamed the whole cache once per query head.
const KEY_TILE: usize = 32;

/// Keys side by side in one transposed tile: each vector lane computes one key's score, so a
/// score needs no horizontal sum and every lane's sums run in parallel.
const TILE_KEYS: usize = 8;
const _: () = assert!(KEY_TILE % TILE_KEYS == 0);

/// Runs one job: its kv head's rows gathered to f32 once; the scores of every (token, head)
/// row of the job, key tile by key tile; each row's softmax; then the weighted sum of values,
/// value tile by value tile (the body `dispatch` compiles per instruction set). Each score has
/// `dot`'s arithmetic (eight keys at a time, `tile_dots`) and each output sums its values in
/// position order, so the result does not depend on the tiling.
///
/// # Safety
/// `job.out` must point to a buffer of `job.q.len()` floats that no other task writes in this
/// job's (token, head) slices.
#[inline(always)]
pub(crate) unsafe fn run_job(job: &Job<'_>, kv: &dyn KvRows, s: &mut Scratch) {
    let (shape, hd) = (job.shape, job.shape.head_dim);
    let visible_max = job.start + job.tokens.end;
    let head = job.kv_head * hd..(job.kv_head + 1) * hd;
    // SAFETY (both): the job's conversion belongs to the table of a path this CPU runs.
    unsafe { gather_keys_transposed(|j| &kv.key_row(j)[head.clone()], job.f16_row, visible_max, hd, &mut s.key_row, &mut s.keys) };
    unsafe { gather_head(|j| &kv.value_row(j)[head.clone()], job.f16_row, visible_max, hd, &mut s.values) };
    let group = shape.n_heads / shape.n_kv_heads;
    let scale = 1.0 / (hd as f32).sqrt();
    let Scratch { keys, values, scores, rows, .. } = s;
    rows.clear();
    for token in job.tokens.clone() {
        for head in job.kv_head * group..(job.kv_head + 1) * group {
            rows.push(QueryRow { at: token * shape.q_width() + head * hd, visible: job.start + token + 1 });
        }
    }
    scores.resize(rows.len() * visible_max, 0.0);
    for tile in (0..visible_max).step_by(KEY_TILE) {
        for (r, row) in rows.iter().enumerate() {
            let q_head = &job.q[row.at..row.at + hd];
            let scores = &mut scores[r * visible_max..(r + 1) * visible_max];
            for first in (tile..(tile + KEY_TILE).min(row.visible)).step_by(TILE_KEYS) {
                let dots = tile_dots(q_head, &keys[first * hd..(first + TILE_KEYS) * hd]);
                for (score, dot) in scores[first..row.visible.min(first + TILE_KEYS)].iter_mut().zip(dots) {
                    *score = dot * scale;
                }
            }
        }
    }
    for (r, row) in rows.iter().enumerate() {
        softmax(&mut scores[r * visible_max..r * visible_max + row.visible]);
        // SAFETY: at..at + hd is inside the output and owned by this job (see above).
        unsafe { std::slice::from_raw_parts_mut(job.out.0.add(row.at), hd) }.fill(0.0);
    }
    for tile in (0..visible_max).step_by(KEY_TILE) {
        for (r, row) in rows.iter().enumerate() {
            let positions = tile..(tile + KEY_TILE).min(row.visible);
            if positions.is_empty() {
                continue; // this row sees no key of the tile (an earlier token of the job)
            }
            let weights = &scores[r * visible_max..(r + 1) * visible_max];
            // SAFETY: as above; no other reference to this slice is live.
            let out_head = unsafe { std::slice::from_raw_parts_mut(job.out.0.add(row.at), hd) };
            add_weighted_values(out_head, &weights[positions.clone()], &values[positions.start * hd..positions.end * hd]);
        }
    }
}

/// `out += Σ_j weights[j] * values[j]` (rows of `out.len()` values), each output element
/// summed in row order as `axpy` would, a few registers' worth of elements at a time so that
/// they stay in registers across the rows (independent chains, so the adds overlap).
#[inline(always)]
fn add_weighted_values(out: &mut [f32], weights: &[f32], values: &[f32]) {
    const WIDTH: usize = 64;
    let hd = out.len();
    let mut chunks = out.chunks_exact_mut(WIDTH);
    for (c, chunk) in chunks.by_ref().enumerate() {
        let mut acc = [0f32; WIDTH];
        acc.copy_from_slice(chunk);
        for (row, &w) in values.chunks_exact(hd).zip(weights) {
            let v: &[f32; WIDTH] = row[c * WIDTH..(c + 1) * WIDTH].try_into().expect("a chunk of the row");
            for i in 0..WIDTH {
                acc[i] += w * v[i];
            }
        }
        chunk.copy_from_slice(&acc);
    }
    let done = hd - chunks.into_remainder().len();
    for (j, &w) in weights.iter().enumerate() {
        axpy(&mut out[done..], w, &values[j * hd + done..(j + 1) * hd]);
    }
}

/// One (token, head) query of a job: where its query and output start, and how many
/// positions it sees.
struct QueryRow {
    at: usize,
    visible: usize,
}

/// `ops::portable::dot(q, key j)` for the `TILE_KEYS` keys of a transposed tile (`tile[e *
/// TILE_KEYS + j]` is element e of key j), with its arithmetic in each lane: `LANES` partial
/// sums of the products of elements i, i + LANES, ... in element order, those summed in order
/// as `Iterator::sum` does, then the elements past the last whole `LANES`.
#[inline(always)]
fn tile_dots(q: &[f32], tile: &[f32]) -> [f32; TILE_KEYS] {
    const HALF: usize = LANES / 2;
    let whole = q.len() / LANES * LANES;
    let mut partial = [[0f32; TILE_KEYS]; LANES];
    // half the partial sums at a time, so that they stay in registers
    for (half, sums) in partial.chunks_exact_mut(HALF).enumerate() {
        let mut acc = [[0f32; TILE_KEYS]; HALF];
        for (q, keys) in q[..whole].chunks_exact(LANES).zip(tile.chunks_exact(LANES * TILE_KEYS)) {
            // fixed-size views: no bounds checks inside, the sums stay in registers
            let q: &[f32; HALF] = q[half * HALF..][..HALF].try_into().expect("half a chunk");
            let keys: &[f32; HALF * TILE_KEYS] = keys[half * HALF * TILE_KEYS..][..HALF * TILE_KEYS].try_into().expect("half a chunk");
            for (acc, (&q, keys)) in acc.iter_mut().zip(q.iter().zip(keys.chunks_exact(TILE_KEYS))) {
                let keys: &[f32; TILE_KEYS] = keys.try_into().expect("one element of every key");
                for j in 0..TILE_KEYS {
                    acc[j] += q * keys[j];
                }
            }
        }
        sums.copy_from_slice(&acc);
    }
    let mut total = [std::iter::empty::<f32>().sum::<f32>(); TILE_KEYS];
    for sums in &partial {
        for j in 0..TILE_KEYS {
            total[j] += sums[j];
        }
    }
    for e in whole..q.len() {
        for j in 0..TILE_KEYS {
            total[j] += q[e] * tile[e * TILE_KEYS + j];
        }
    }
    total
}

/// Copies one kv head's key rows `0..rows` (of `hd` values) from the f16 cache into f32 tiles
/// of `TILE_KEYS` keys stored transposed (see `tile_dots`), zero past the last key; `row` is
/// scratch.
///
/// # Safety
/// `convert` must run on this CPU (a table's entry for a supported path).
#[inline(always)]
unsafe fn gather_keys_transposed<'a>(key: impl Fn(usize) -> &'a [f16], convert: crate::dispatch::F16Row, rows: usize, hd: usize, row: &mut Vec<f32>, out: &mut Vec<f32>) {
    row.resize(hd, 0.0);
    // every lane of a key below `rows` is written below, so only the padding is zeroed
    out.resize(rows.div_ceil(TILE_KEYS) * TILE_KEYS * hd, 0.0);
    for j in 0..rows {
        // SAFETY: the caller's contract.
        unsafe { convert(key(j), row) };
        let tile = &mut out[j / TILE_KEYS * TILE_KEYS * hd..][..TILE_KEYS * hd];
        for (e, &x) in row.iter().enumerate() {
            tile[e * TILE_KEYS + j % TILE_KEYS] = x;
        }
    }
    for j in rows..rows.div_ceil(TILE_KEYS) * TILE_KEYS {
        let tile = &mut out[j / TILE_KEYS * TILE_KEYS * hd..][..TILE_KEYS * hd];
        for e in 0..hd {
            tile[e * TILE_KEYS + j % TILE_KEYS] = 0.0;
        }
    }
}

/// Copies one kv head's rows `0..rows` from the f16 cache into contiguous f32.
///
/// # Safety
/// `convert` must run on this CPU (a table's entry for a supported path).
#[inline(always)]
unsafe fn gather_head<'a>(row: impl Fn(usize) -> &'a [f16], convert: crate::dispatch::F16Row, rows: usize, hd: usize, out: &mut Vec<f32>) {
    out.resize(rows * hd, 0.0);
    for (j, dst) in out.chunks_exact_mut(hd).enumerate() {
        // SAFETY: the caller's contract.
        unsafe { convert(row(j), dst) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Textbook attention in f64, one query at a time.
    fn reference(shape: HeadShape, q: &[f32], k: &[f16], v: &[f16], start: usize) -> Vec<f32> {
        let hd = shape.head_dim;
        let n_tokens = q.len() / shape.q_width();
        let mut out = vec![0f32; q.len()];
        for t in 0..n_tokens {
            for h in 0..shape.n_heads {
                let g = h / (shape.n_heads / shape.n_kv_heads);
                let qh = &q[(t * shape.n_heads + h) * hd..][..hd];
                let logits: Vec<f64> = (0..=start + t)
                    .map(|j| {
                        let kh = &k[j * shape.kv_width() + g * hd..][..hd];
                        qh.iter().zip(kh).map(|(a, b)| *a as f64 * b.to_f64()).sum::<f64>() / (hd as f64).sqrt()
                    })
                    .collect();
                let max = logits.iter().cloned().fold(f64::MIN, f64::max);
                let weights: Vec<f64> = logits.iter().map(|l| (l - max).exp()).collect();
                let total: f64 = weights.iter().sum();
                for d in 0..hd {
                    let acc: f64 = weights
                        .iter()
                        .enumerate()
                        .map(|(j, w)| w / total * v[j * shape.kv_width() + g * hd + d].to_f64())
                        .sum();
                    out[(t * shape.n_heads + h) * hd + d] = acc as f32;
                }
            }
        }
        out
    }

    /// Queries for `n_tokens` and f16 keys and values for `rows` positions, uniform in
    /// [-scale, scale).
    fn random_qkv(rng: &mut impl Rng, shape: HeadShape, rows: usize, n_tokens: usize, scale: f32) -> (Vec<f32>, Vec<f16>, Vec<f16>) {
        let mut gen = |n: usize| (0..n).map(|_| rng.random_range(-scale..scale)).collect::<Vec<f32>>();
        let q = gen(n_tokens * shape.q_width());
        let k = gen(rows * shape.kv_width()).into_iter().map(f16::from_f32).collect();
        let v = gen(rows * shape.kv_width()).into_iter().map(f16::from_f32).collect();
        (q, k, v)
    }

    #[test]
    fn matches_reference_on_odd_shapes() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        for (n_heads, n_kv, hd, start, n_tokens) in [(3, 1, 5, 0, 1), (4, 2, 8, 3, 7), (6, 3, 17, 40, 9), (9, 3, 64, 0, 33), (4, 2, 8, 30, 5)] {
            let shape = HeadShape { n_heads, n_kv_heads: n_kv, head_dim: hd };
            let (q, k, v) = random_qkv(&mut rng, shape, start + n_tokens, n_tokens, 1.0);
            let mut out = vec![0f32; q.len()];
            causal_attention(shape, &q, &ContiguousRows { keys: &k, values: &v, width: shape.kv_width() }, start, &mut out);
            let want = reference(shape, &q, &k, &v, start);
            for (a, b) in out.iter().zip(&want) {
                assert!((a - b).abs() < 1e-4, "{a} vs {b}");
            }
        }
    }

    /// A transposed tile's scores are `dot`'s bits, for head sizes with and without a tail
    /// past the last 16 elements, signed zeros among the inputs.
    #[test]
    fn tile_dots_equal_dot_bit_for_bit() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        for hd in [1, 5, 16, 17, 40, 64, 80, 128] {
            let mut value = || match rng.random_range(0..8) {
                0 => 0.0,
                1 => -0.0,
                _ => rng.random_range(-4.0f32..4.0),
            };
            let q: Vec<f32> = (0..hd).map(|_| value()).collect();
            let keys: Vec<Vec<f32>> = (0..TILE_KEYS).map(|_| (0..hd).map(|_| value()).collect()).collect();
            let mut tile = vec![0f32; TILE_KEYS * hd];
            for (j, key) in keys.iter().enumerate() {
                for (e, &x) in key.iter().enumerate() {
                    tile[e * TILE_KEYS + j] = x;
                }
            }
            let got = tile_dots(&q, &tile);
            for (j, key) in keys.iter().enumerate() {
                let want = crate::ops::portable::dot(&q, key);
                assert_eq!(got[j].to_bits(), want.to_bits(), "hd {hd} key {j}: {} vs {want}", got[j]);
            }
        }
    }

    /// Every path gives the scalar path's bits, prefill and decode shapes.
    #[test]
    fn every_path_gives_the_scalar_bits() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(4);
        let tables = crate::dispatch::runnable_tables();
        for (n_heads, n_kv, hd, start, n_tokens) in [(6, 3, 17, 40, 9), (12, 2, 64, 0, 37), (12, 2, 128, 300, 1), (5, 1, 80, 70, 3), (4, 2, 64, 90, 9)] {
            let shape = HeadShape { n_heads, n_kv_heads: n_kv, head_dim: hd };
            let (q, k, v) = random_qkv(&mut rng, shape, start + n_tokens, n_tokens, 2.0);
            let kv = ContiguousRows { keys: &k, values: &v, width: shape.kv_width() };
            let run = |kernels: &Kernels| {
                let mut out = vec![0f32; q.len()];
                attention_batch_on(kernels, shape, &mut [AttentionItem { q: &q, kv: &kv, start, out: &mut out }]);
                out.iter().map(|x| x.to_bits()).collect::<Vec<u32>>()
            };
            let want = run(tables[0]);
            for kernels in &tables[1..] {
                assert!(run(kernels) == want, "{} heads {n_heads}/{n_kv} hd {hd} start {start} tokens {n_tokens}", kernels.isa.name());
            }
        }
    }
}
