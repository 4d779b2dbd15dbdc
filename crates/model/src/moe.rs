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
    /// Weight bytes one token reads: every matrix of a dense block, the router and `used` of
    /// the experts of a mixture.
    fn active_bytes(&self) -> usize;
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

    fn active_bytes(&self) -> usize {
        self.linears().iter().map(|l| l.weight.n_bytes()).sum()
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
        let active: Vec<(&DenseFfn, &[(usize, f32)])> =
            self.experts.iter().zip(&members).filter(|(_, rows)| !rows.is_empty()).map(|(e, rows)| (e, rows.as_slice())).collect();
        run_experts(&active, x, total, hidden, s);
        out.clear();
        out.resize(total * hidden, 0.0);
        // a row's sum runs over its experts by increasing id, whatever else shares the batch
        let mut at = 0;
        for (_, rows) in &active {
            for &(token, weight) in rows.iter() {
                axpy(&mut out[token * hidden..(token + 1) * hidden], weight, &s.expert_out[at * hidden..(at + 1) * hidden]);
                at += 1;
            }
        }
    }

    fn active_bytes(&self) -> usize {
        let experts: usize = self.experts.iter().map(DenseFfn::active_bytes).sum();
        self.router.weight.n_bytes() + experts / self.experts.len().max(1) * self.used
    }

    fn linears(&self) -> Vec<&Linear> {
        std::iter::once(&self.router).chain(self.experts.iter().flat_map(|e| [&e.gate, &e.up, &e.down])).collect()
    }
}

/// Every active expert over its rows, in two parallel regions (all gate and up products, then
/// all down products) instead of two per expert: `s.expert_out` receives each expert's output
/// rows in turn, experts in the order given, rows in token order. A single row (decode) is
/// read in place; a batch's rows are gathered per expert first.
fn run_experts(active: &[(&DenseFfn, &[(usize, f32)])], x: &[f32], total: usize, hidden: usize, s: &mut FfnScratch) {
    let counts: Vec<usize> = active.iter().map(|(_, rows)| rows.len()).collect();
    let starts: Vec<usize> = counts.iter().scan(0, |at, &n| Some(std::mem::replace(at, *at + n))).collect();
    let all_rows: usize = counts.iter().sum();
    if total > 1 {
        s.rows.clear();
        for (_, rows) in active {
            for &(token, _) in rows.iter() {
                s.rows.extend_from_slice(&x[token * hidden..(token + 1) * hidden]);
            }
        }
    }
    let ffn = active.first().map_or(0, |(e, _)| e.gate.out_features());
    // one input per expert; a single row is every expert's one input (quantized once)
    let (inputs, twice): (Vec<(&[f32], usize)>, Vec<usize>) = match total {
        1 => (vec![(x, 1)], vec![0; 2 * active.len()]),
        _ => (rows_per_expert(&s.rows, &starts, &counts, hidden), (0..active.len()).flat_map(|i| [i, i]).collect()),
    };
    let gate_up: Vec<&Linear> = active.iter().flat_map(|(e, _)| [&e.gate, &e.up]).collect();
    s.dense.gate.resize(all_rows * ffn, 0.0);
    s.dense.up.resize(all_rows * ffn, 0.0);
    let gates = split_rows(&mut s.dense.gate, &counts, ffn);
    let ups = split_rows(&mut s.dense.up, &counts, ffn);
    let mut outs: Vec<&mut [f32]> = gates.into_iter().zip(ups).flat_map(|(g, u)| [g, u]).collect();
    Linear::forward_inputs(&gate_up, &inputs, &twice, &mut outs);
    silu_mul(&mut s.dense.gate, &s.dense.up);
    let downs: Vec<&Linear> = active.iter().map(|(e, _)| &e.down).collect();
    let once: Vec<usize> = (0..active.len()).collect();
    s.expert_out.resize(all_rows * hidden, 0.0);
    let mut outs = split_rows(&mut s.expert_out, &counts, hidden);
    Linear::forward_inputs(&downs, &rows_per_expert(&s.dense.gate, &starts, &counts, ffn), &once, &mut outs);
}

/// Each expert's rows of `buffer` (rows of `width` values, expert i's `counts[i]` from row
/// `starts[i]`) as a product input.
fn rows_per_expert<'b>(buffer: &'b [f32], starts: &[usize], counts: &[usize], width: usize) -> Vec<(&'b [f32], usize)> {
    starts.iter().zip(counts).map(|(&start, &n)| (&buffer[start * width..(start + n) * width], n)).collect()
}

/// `buffer` cut into consecutive pieces of `counts[i]` rows of `width` values.
fn split_rows<'b>(buffer: &'b mut [f32], counts: &[usize], width: usize) -> Vec<&'b mut [f32]> {
    let mut pieces = Vec::with_capacity(counts.len());
    let mut rest = buffer;
    for &n in counts {
        let (piece, tail) = std::mem::take(&mut rest).split_at_mut(n * width);
        pieces.push(piece);
        rest = tail;
    }
    pieces
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
