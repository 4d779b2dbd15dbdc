//! AWQ's activation-aware scale search: per group of linear layers that read the same input,
//! find per-feature scales `s` (from the input's mean magnitude, balanced against the weights')
//! such that quantizing `W * diag(s)` and feeding `x / s` loses the least output accuracy on
//! calibration rows. The search always includes `s = 1` (plain round-to-nearest), so on the
//! calibration sample the chosen scales are never worse than RTN.

use hearth_kernels::{QMatrix, QuantType};
use rayon::prelude::*;

use super::calibrate::SiteStats;
use super::rtn;

/// One weight matrix of a group: `rows x cols`, row-major.
pub struct Matrix<'a> {
    pub data: &'a [f32],
    pub rows: usize,
}

/// What the search chose for a group.
#[derive(Debug, Clone)]
pub struct Searched {
    pub scales: Vec<f32>,
    /// The exponent of the chosen scales; `None` when plain RTN was best.
    pub ratio: Option<f32>,
    /// Mean squared output error of plain RTN and of the chosen scales.
    pub rtn_loss: f64,
    pub loss: f64,
}

/// Searches `grid` exponents in [0, 1) plus `s = 1` for the matrices of one group.
pub fn search_scales(mats: &[Matrix<'_>], cols: usize, stats: &SiteStats, group: usize, grid: usize) -> Searched {
    let n = stats.sample_rows();
    let x = &stats.sample;
    let reference: Vec<Vec<f32>> = mats.iter().map(|m| float_outputs(m, cols, x, n)).collect();
    let loss_of = |scales: &[f32]| quantized_loss(mats, cols, x, n, &reference, group, scales);
    let identity = vec![1.0f32; cols];
    let rtn_loss = loss_of(&identity);
    let mut best = Searched { scales: identity, ratio: None, rtn_loss, loss: rtn_loss };
    let x_mean = stats.mean_abs();
    let w_mean = weight_mean(mats, cols, group);
    for k in 0..grid {
        let ratio = k as f32 / grid as f32;
        let scales = candidate_scales(&x_mean, &w_mean, ratio);
        let loss = loss_of(&scales);
        if loss < best.loss {
            best = Searched { scales, ratio: Some(ratio), rtn_loss, loss };
        }
    }
    best
}

/// AutoAWQ's scales with weight balancing: `x^r / w^(1-r)`, normalized so that the largest
/// and smallest are reciprocal.
fn candidate_scales(x_mean: &[f32], w_mean: &[f32], ratio: f32) -> Vec<f32> {
    let mut s: Vec<f32> = x_mean.iter().zip(w_mean).map(|(&x, &w)| (x.powf(ratio) / (w.powf(1.0 - ratio) + 1e-4)).max(1e-4)).collect();
    let (lo, hi) = s.iter().fold((f32::MAX, 0f32), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let norm = (lo * hi).sqrt();
    s.iter_mut().for_each(|v| *v /= norm);
    s
}

/// Mean over all rows of |w| relative to its group's largest magnitude, per input feature.
fn weight_mean(mats: &[Matrix<'_>], cols: usize, group: usize) -> Vec<f32> {
    let mut sum = vec![0f64; cols];
    let mut rows = 0;
    for m in mats {
        for row in m.data.chunks_exact(cols) {
            for (chunk, sums) in row.chunks(group).zip(sum.chunks_mut(group)) {
                let max = chunk.iter().fold(0f32, |a, v| a.max(v.abs())).max(1e-12);
                for (s, v) in sums.iter_mut().zip(chunk) {
                    *s += (v.abs() / max) as f64;
                }
            }
        }
        rows += m.rows;
    }
    sum.into_iter().map(|s| (s / rows.max(1) as f64) as f32).collect()
}

/// `x W^T` in f32, laid out `[token][row]` (the float kernels sum each product as `dot` does).
fn float_outputs(m: &Matrix<'_>, cols: usize, x: &[f32], n: usize) -> Vec<f32> {
    let bytes: Vec<u8> = m.data.iter().flat_map(|v| v.to_le_bytes()).collect();
    let matrix = QMatrix::new(QuantType::F32, m.rows, cols, &bytes).expect("f32 rows of any length");
    let mut out = vec![0f32; n * m.rows];
    matrix.matmul(x, n, &mut out);
    out
}

/// Mean squared error of the group's outputs when `W * s` is quantized and `x / s` read
/// through the int4 kernels the engine serves with.
fn quantized_loss(mats: &[Matrix<'_>], cols: usize, x: &[f32], n: usize, reference: &[Vec<f32>], group: usize, s: &[f32]) -> f64 {
    let scaled_x: Vec<f32> = x.chunks_exact(cols).flat_map(|row| row.iter().zip(s).map(|(v, s)| v / s)).collect();
    let (mut total, mut count) = (0f64, 0usize);
    for (m, reference) in mats.iter().zip(reference) {
        let q4 = rtn::scaled_q4_1_interleaved(m.data, cols, group, s);
        let matrix = QMatrix::interleaved(QuantType::Q4_1, m.rows, cols, &q4).expect("Q4_1 rows of a multiple of 32");
        let mut out = vec![0f32; n * m.rows];
        matrix.matmul(&scaled_x, n, &mut out);
        total += squared_error(&out, reference, m.rows);
        count += m.rows * n;
    }
    total / count.max(1) as f64
}

/// Sum of squared differences of two `[token][row]` outputs: per token in parallel, then the
/// tokens in order (the same sum on any number of threads).
fn squared_error(out: &[f32], reference: &[f32], rows: usize) -> f64 {
    let per_token: Vec<f64> = out
        .par_chunks(rows)
        .zip(reference.par_chunks(rows))
        .map(|(o, r)| o.iter().zip(r).map(|(&a, &b)| ((a - b) as f64).powi(2)).sum())
        .collect();
    per_token.iter().sum()
}
