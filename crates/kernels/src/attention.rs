//! Causal grouped-query attention over one sequence's contiguous f16 KV cache.

use half::f16;
use half::slice::HalfFloatSliceExt;
use rayon::prelude::*;

use crate::ops::{axpy, dot, softmax};

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

/// Attention for `n_tokens` queries at positions `start .. start + n_tokens`.
///
/// `q` is `[n_tokens, n_heads * head_dim]`; `keys`/`values` hold at least `start + n_tokens`
/// rows of `n_kv_heads * head_dim`; query token i sees cache rows `0 ..= start + i`.
/// `out` has the shape of `q`. Scores, softmax and sums are computed in f32.
pub fn causal_attention(shape: HeadShape, q: &[f32], keys: &[f16], values: &[f16], start: usize, out: &mut [f32]) {
    let hd = shape.head_dim;
    let n_tokens = q.len() / shape.q_width();
    assert!(keys.len() >= (start + n_tokens) * shape.kv_width() && values.len() == keys.len());
    assert_eq!(out.len(), q.len());
    let scale = 1.0 / (hd as f32).sqrt();
    let group = shape.n_heads / shape.n_kv_heads;
    let work = n_tokens * shape.n_heads * (start + n_tokens);
    let one_head = |(scores, row): &mut (Vec<f32>, Vec<f32>), (task, out_head): (usize, &mut [f32])| {
        let (token, head) = (task / shape.n_heads, task % shape.n_heads);
        let kv_head = head / group;
        let q_head = &q[task * hd..(task + 1) * hd];
        let visible = start + token + 1;
        scores.clear();
        row.resize(hd, 0.0);
        scores.extend((0..visible).map(|j| {
            keys[j * shape.kv_width() + kv_head * hd..][..hd].convert_to_f32_slice(row);
            dot(q_head, row) * scale
        }));
        softmax(scores);
        out_head.fill(0.0);
        for (j, &p) in scores.iter().enumerate() {
            values[j * shape.kv_width() + kv_head * hd..][..hd].convert_to_f32_slice(row);
            axpy(out_head, p, row);
        }
    };
    if work < 4096 {
        let mut scratch = (Vec::new(), Vec::new());
        out.chunks_exact_mut(hd).enumerate().for_each(|item| one_head(&mut scratch, item));
    } else {
        out.par_chunks_exact_mut(hd).enumerate().for_each_init(|| (Vec::new(), Vec::new()), one_head);
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

    #[test]
    fn matches_reference_on_odd_shapes() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        for (n_heads, n_kv, hd, start, n_tokens) in [(3, 1, 5, 0, 1), (4, 2, 8, 3, 7), (6, 3, 17, 40, 9), (9, 3, 64, 0, 33)] {
            let shape = HeadShape { n_heads, n_kv_heads: n_kv, head_dim: hd };
            let rows = start + n_tokens;
            let mut gen = |n: usize| (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect::<Vec<_>>();
            let q = gen(n_tokens * shape.q_width());
            let k: Vec<f16> = gen(rows * shape.kv_width()).into_iter().map(f16::from_f32).collect();
            let v: Vec<f16> = gen(rows * shape.kv_width()).into_iter().map(f16::from_f32).collect();
            let mut out = vec![0f32; q.len()];
            causal_attention(shape, &q, &k, &v, start, &mut out);
            let want = reference(shape, &q, &k, &v, start);
            for (a, b) in out.iter().zip(&want) {
                assert!((a - b).abs() < 1e-4, "{a} vs {b}");
            }
        }
    }
}
