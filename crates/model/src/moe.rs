//! The feed-forward blocks: dense SwiGLU, and a mixture of experts (qwen3moe) whose router picks
//! `used` of `experts` SwiGLU experts per token. A batch's rows are grouped by expert, so each
//! chosen expert runs one matrix product over exactly its rows and an expert no row chose is
//! never read (decoding reads only the chosen experts' weights).

use hearth_kernels::ops::{axpy, silu_mul, softmax};

use crate::weights::Linear;

/// One layer's feed-forward network over `total` rows of normed input; adds nothing itself
/// (the caller adds `out` to the residual).
pub trait FeedForward: Send + Sync {
    /// `out` = FFN(`x`) for `total` rows; `routes` receives each row's chosen experts (MoE only).
    fn forward(&self, x: &[f32], total: usize, out: &mut Vec<f32>, scratch: &mut FfnScratch, routes: Option<&mut Vec<Vec<u32>>>);
    /// The layers it reads, for byte counts.
    fn linears(&self) -> Vec<&Linear>;
    /// The dense block, where it is one (calibration observes its inputs).
    fn dense(&self) -> Option<&DenseFfn> {
        None
    }
}

/// Buffers reused between layers: a dense block's, and what a mixture of experts adds around
/// the dense blocks of its experts (kept apart so both can be borrowed at once).
#[derive(Default)]
pub struct FfnScratch {
    dense: DenseScratch,
    rows: Vec<f32>,
    expert_out: Vec<f32>,
    router: Vec<f32>,
}

/// `gate x` (then the SwiGLU product, in place) and `up x`.
#[derive(Default)]
struct DenseScratch {
    gate: Vec<f32>,
    up: Vec<f32>,
}

/// `down(silu(gate x) * up x)`.
pub struct DenseFfn {
    pub gate: Linear,
    pub up: Linear,
    pub down: Linear,
}

impl DenseFfn {
    /// The SwiGLU product `silu(gate x) * up x` (what `down` reads).
    pub fn hidden_activations<'s>(&self, x: &[f32], total: usize, scratch: &'s mut FfnScratch) -> &'s [f32] {
        self.swiglu(x, total, &mut scratch.dense)
    }

    fn swiglu<'s>(&self, x: &[f32], total: usize, scratch: &'s mut DenseScratch) -> &'s [f32] {
        Linear::forward_many(&[&self.gate, &self.up], x, total, &mut [&mut scratch.gate, &mut scratch.up]);
        silu_mul(&mut scratch.gate, &scratch.up);
        &scratch.gate
    }

    /// `down(silu(gate x) * up x)` for `total` rows.
    fn apply(&self, x: &[f32], total: usize, out: &mut Vec<f32>, scratch: &mut DenseScratch) {
        let hidden = self.swiglu(x, total, scratch);
        self.down.forward(hidden, total, out);
    }
}

impl FeedForward for DenseFfn {
    fn forward(&self, x: &[f32], total: usize, out: &mut Vec<f32>, scratch: &mut FfnScratch, _: Option<&mut Vec<Vec<u32>>>) {
        self.apply(x, total, out, &mut scratch.dense);
    }

    fn linears(&self) -> Vec<&Linear> {
        vec![&self.gate, &self.up, &self.down]
    }

    fn dense(&self) -> Option<&DenseFfn> {
        Some(self)
    }
}

/// A mixture of SwiGLU experts behind a softmax router.
pub struct MoeFfn {
    /// `experts` rows over the hidden size.
    pub router: Linear,
    pub experts: Vec<DenseFfn>,
    /// Experts per token.
    pub used: usize,
    /// Whether the chosen experts' weights are renormalised to sum to 1 (Qwen3-MoE).
    pub normalize: bool,
}

/// A token's chosen experts, best first, with their weights.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    pub experts: Vec<u32>,
    pub weights: Vec<f32>,
}

impl MoeFfn {
    /// Softmax over all experts' logits, the `used` most probable (ties: the lower id), their
    /// probabilities renormalised where the model says so.
    pub fn route(&self, logits: &mut [f32]) -> Route {
        softmax(logits);
        let mut order: Vec<u32> = (0..logits.len() as u32).collect();
        order.sort_by(|&a, &b| logits[b as usize].total_cmp(&logits[a as usize]).then(a.cmp(&b)));
        order.truncate(self.used);
        let mut weights: Vec<f32> = order.iter().map(|&e| logits[e as usize]).collect();
        if self.normalize {
            let sum: f32 = weights.iter().sum();
            weights.iter_mut().for_each(|w| *w /= sum);
        }
        Route { experts: order, weights }
    }
}

impl FeedForward for MoeFfn {
    fn forward(&self, x: &[f32], total: usize, out: &mut Vec<f32>, s: &mut FfnScratch, routes: Option<&mut Vec<Vec<u32>>>) {
        let hidden = x.len() / total.max(1);
        let n_experts = self.experts.len();
        self.router.forward(x, total, &mut s.router);
        let chosen: Vec<Route> = s.router.chunks_exact_mut(n_experts).map(|logits| self.route(logits)).collect();
        if let Some(routes) = routes {
            routes.extend(chosen.iter().map(|r| r.experts.clone()));
        }
        // each expert's rows, in token order, with the weight each row gives it
        let mut members: Vec<Vec<(usize, f32)>> = vec![Vec::new(); n_experts];
        for (token, route) in chosen.iter().enumerate() {
            for (&e, &w) in route.experts.iter().zip(&route.weights) {
                members[e as usize].push((token, w));
            }
        }
        out.clear();
        out.resize(total * hidden, 0.0);
        // a row's sum runs over its experts by increasing id, whatever else shares the batch
        for (expert, rows) in self.experts.iter().zip(&members).filter(|(_, rows)| !rows.is_empty()) {
            s.rows.clear();
            for &(token, _) in rows {
                s.rows.extend_from_slice(&x[token * hidden..(token + 1) * hidden]);
            }
            expert.apply(&s.rows, rows.len(), &mut s.expert_out, &mut s.dense);
            for (&(token, weight), y) in rows.iter().zip(s.expert_out.chunks_exact(hidden)) {
                axpy(&mut out[token * hidden..(token + 1) * hidden], weight, y);
            }
        }
    }

    fn linears(&self) -> Vec<&Linear> {
        std::iter::once(&self.router).chain(self.experts.iter().flat_map(|e| [&e.gate, &e.up, &e.down])).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moe(used: usize, normalize: bool) -> MoeFfn {
        let linear = || crate::weights::Linear::f32_for_tests(1, 1, vec![1.0]);
        MoeFfn { router: linear(), experts: Vec::new(), used, normalize }
    }

    #[test]
    fn routes_pick_the_most_probable_experts_and_renormalise() {
        let mut logits = vec![0.0, 2.0, 1.0, 2.0];
        let route = moe(2, true).route(&mut logits);
        assert_eq!(route.experts, [1, 3], "a tie goes to the lower id");
        assert!((route.weights.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        let mut logits = vec![0.0, 2.0, 1.0, 3.0];
        let route = moe(2, false).route(&mut logits);
        assert_eq!(route.experts, [3, 1]);
        let total: f32 = [0.0f32, 2.0, 1.0, 3.0].iter().map(|v| v.exp()).sum();
        assert!((route.weights[0] - 3f32.exp() / total).abs() < 1e-6, "softmax over all experts");
    }
}
