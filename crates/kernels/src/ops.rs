//! Small dense ops on f32 rows: dot, RMS norm, rotary embeddings, SwiGLU, softmax.

/// Dot product with several accumulators so the compiler vectorizes it.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    const LANES: usize = 16;
    let mut acc = [0f32; LANES];
    let chunks = a.len() / LANES;
    for (ca, cb) in a.chunks_exact(LANES).zip(b.chunks_exact(LANES)) {
        for i in 0..LANES {
            acc[i] += ca[i] * cb[i];
        }
    }
    let mut total: f32 = acc.iter().sum();
    for i in chunks * LANES..a.len() {
        total += a[i] * b[i];
    }
    total
}

/// `out += scale * x`.
pub fn axpy(out: &mut [f32], scale: f32, x: &[f32]) {
    for (o, v) in out.iter_mut().zip(x) {
        *o += scale * v;
    }
}

/// RMS norm of each row of `x` (row length = weight length), in place.
pub fn rms_norm_rows(x: &mut [f32], weight: &[f32], eps: f32) {
    for row in x.chunks_exact_mut(weight.len()) {
        let mean_sq = dot(row, row) / row.len() as f32;
        let inv = 1.0 / (mean_sq + eps).sqrt();
        for (v, w) in row.iter_mut().zip(weight) {
            *v *= inv * w;
        }
    }
}

/// How rotary embeddings pair up the dimensions of a head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RopeStyle {
    /// Pairs (2i, 2i+1): GGUF llama (weights permuted by the converter).
    Interleaved,
    /// Pairs (i, i + d/2): GPT-NeoX, Qwen2.
    Neox,
}

/// Precomputed inverse frequencies for rotary embeddings.
#[derive(Debug, Clone)]
pub struct Rope {
    inv_freq: Vec<f32>,
    style: RopeStyle,
}

impl Rope {
    pub fn new(head_dim: usize, base: f32, style: RopeStyle) -> Self {
        let inv_freq = (0..head_dim / 2).map(|i| base.powf(-2.0 * i as f32 / head_dim as f32)).collect();
        Rope { inv_freq, style }
    }

    /// Rotates every head in `heads` (n heads of head_dim contiguous values) for position `pos`.
    pub fn apply(&self, heads: &mut [f32], pos: usize, cos_sin: &mut Vec<(f32, f32)>) {
        cos_sin.clear();
        cos_sin.extend(self.inv_freq.iter().map(|f| {
            let (s, c) = (pos as f32 * f).sin_cos();
            (c, s)
        }));
        let half = self.inv_freq.len();
        for head in heads.chunks_exact_mut(half * 2) {
            for (i, &(c, s)) in cos_sin.iter().enumerate() {
                let (a, b) = match self.style {
                    RopeStyle::Interleaved => (2 * i, 2 * i + 1),
                    RopeStyle::Neox => (i, i + half),
                };
                let (x0, x1) = (head[a], head[b]);
                head[a] = x0 * c - x1 * s;
                head[b] = x0 * s + x1 * c;
            }
        }
    }
}

/// SwiGLU: `gate[i] = silu(gate[i]) * up[i]`, in place over `gate`.
pub fn silu_mul(gate: &mut [f32], up: &[f32]) {
    for (g, u) in gate.iter_mut().zip(up) {
        *g = *g / (1.0 + (-*g).exp()) * u;
    }
}

/// In-place softmax; returns nothing, leaves probabilities summing to 1.
pub fn softmax(x: &mut [f32]) {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0f32;
    for v in x.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    let inv = 1.0 / sum;
    for v in x.iter_mut() {
        *v *= inv;
    }
}

/// Adds `b` into `a` elementwise.
pub fn add_in_place(a: &mut [f32], b: &[f32]) {
    for (x, y) in a.iter_mut().zip(b) {
        *x += y;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_handles_odd_lengths() {
        for n in [0usize, 1, 15, 16, 17, 33, 100] {
            let a: Vec<f32> = (0..n).map(|i| i as f32 * 0.5 - 3.0).collect();
            let b: Vec<f32> = (0..n).map(|i| (i as f32).sin()).collect();
            let want: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!((dot(&a, &b) - want).abs() < 1e-3, "n={n}");
        }
    }

    #[test]
    fn rope_styles_rotate_the_right_pairs() {
        let rope = Rope::new(4, 10000.0, RopeStyle::Neox);
        let mut v = vec![1.0, 0.0, 0.0, 0.0];
        let mut scratch = Vec::new();
        rope.apply(&mut v, 1, &mut scratch);
        // dim 0 pairs with dim 2 at frequency 1
        assert!((v[0] - 1f32.cos()).abs() < 1e-6 && (v[2] - 1f32.sin()).abs() < 1e-6 && v[1] == 0.0);
        let rope = Rope::new(4, 10000.0, RopeStyle::Interleaved);
        let mut v = vec![1.0, 0.0, 0.0, 0.0];
        rope.apply(&mut v, 1, &mut scratch);
        assert!((v[0] - 1f32.cos()).abs() < 1e-6 && (v[1] - 1f32.sin()).abs() < 1e-6);
    }

    #[test]
    fn softmax_sums_to_one() {
        let mut x = vec![1.0, 2.0, 3.0, -1e9];
        softmax(&mut x);
        assert!((x.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(x[3] == 0.0 && x[2] > x[1]);
    }
}
