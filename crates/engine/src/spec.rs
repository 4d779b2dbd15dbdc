//! Speculative decoding without a second model: n-gram drafts taken from a sequence's own
//! prompt and output, a per-sequence acceptance estimate, and the step-cost model that
//! decides how many drafted tokens a step can afford.

use crate::metrics::MAX_DRAFT_POSITIONS;

/// Settings of n-gram speculation (vLLM's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpecConfig {
    /// Most drafted tokens per sequence and step.
    pub num_speculative_tokens: usize,
    /// Shortest suffix that must recur for a draft.
    pub ngram_min: usize,
    /// Longest suffix looked up.
    pub ngram_max: usize,
    /// Verify every draft found, whether or not it pays on this machine (tests that must
    /// exercise verification whatever the timings, and measurements of the worst case).
    pub always_draft: bool,
}

impl Default for SpecConfig {
    fn default() -> Self {
        SpecConfig { num_speculative_tokens: 8, ngram_min: 2, ngram_max: 4, always_draft: false }
    }
}

impl SpecConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.num_speculative_tokens == 0 || self.num_speculative_tokens > MAX_DRAFT_POSITIONS {
            return Err(format!("--num-speculative-tokens must be in 1..={MAX_DRAFT_POSITIONS}"));
        }
        if self.ngram_min == 0 || self.ngram_min > self.ngram_max || self.ngram_max > 64 {
            return Err("n-gram sizes must satisfy 1 <= --ngram-min <= --ngram-max <= 64".into());
        }
        Ok(())
    }
}

/// The tokens that followed the most recent earlier occurrence of the longest suffix of
/// `tokens` (between `min` and `max` tokens long) that occurred before, at most `k` of them.
pub fn propose_ngram(tokens: &[u32], min: usize, max: usize, k: usize) -> &[u32] {
    let len = tokens.len();
    if len < min + 1 || k == 0 {
        return &[];
    }
    let last = tokens[len - 1];
    let (mut best_len, mut best_end) = (0, 0);
    // `end` is one past an earlier occurrence of the suffix's last token
    for end in (1..len).rev() {
        if tokens[end - 1] != last {
            continue;
        }
        let limit = max.min(end);
        let matched = (1..=limit).take_while(|&n| tokens[end - n] == tokens[len - n]).count();
        if matched > best_len {
            (best_len, best_end) = (matched, end);
            if matched == max {
                break;
            }
        }
    }
    if best_len < min {
        return &[];
    }
    &tokens[best_end..(best_end + k).min(len)]
}

/// How often a sequence's drafted tokens were accepted recently.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Acceptance {
    accepted: f32,
    trials: f32,
}

/// Weight of older draft outcomes per new one.
const DECAY: f32 = 0.8;

impl Default for Acceptance {
    fn default() -> Self {
        Acceptance { accepted: 0.0, trials: 0.0 }
    }
}

impl Acceptance {
    /// Estimated probability that the next drafted token is accepted, given the previous one
    /// was (Laplace-smoothed, recent outcomes weigh more).
    pub fn rate(&self) -> f32 {
        (self.accepted + 1.0) / (self.trials + 2.0)
    }

    /// Records a verified draft: `accepted` of `drafted` tokens matched.
    pub fn record(&mut self, drafted: usize, accepted: usize) {
        let rejected = usize::from(accepted < drafted);
        self.accepted = self.accepted * DECAY + accepted as f32;
        self.trials = self.trials * DECAY + (accepted + rejected) as f32;
    }
}

/// Measured time of one forward pass by its number of tokens, interpolated between points.
#[derive(Debug, Clone, PartialEq)]
pub struct StepCost {
    /// (tokens, seconds), ascending in both.
    points: Vec<(usize, f64)>,
}

impl StepCost {
    /// From measurements; times are made non-decreasing in the token count.
    pub fn new(mut points: Vec<(usize, f64)>) -> Self {
        points.sort_by_key(|p| p.0);
        points.dedup_by_key(|p| p.0);
        let mut floor: f64 = 0.0;
        for p in &mut points {
            floor = floor.max(p.1);
            p.1 = floor;
        }
        StepCost { points }
    }

    pub fn points(&self) -> &[(usize, f64)] {
        &self.points
    }

    /// Seconds for a pass over `tokens` tokens (extrapolated linearly past the last point).
    pub fn seconds(&self, tokens: usize) -> f64 {
        let p = &self.points;
        match p.len() {
            0 => tokens as f64,
            1 => p[0].1 * tokens.max(1) as f64 / p[0].0.max(1) as f64,
            _ => {
                let i = p.iter().position(|&(t, _)| t >= tokens).unwrap_or(p.len() - 1).max(1);
                let ((t0, s0), (t1, s1)) = (p[i - 1], p[i]);
                let slope = (s1 - s0) / (t1 - t0) as f64;
                (s0 + slope * (tokens as f64 - t0 as f64)).max(p[0].1 * 0.5)
            }
        }
    }
}

/// A drafted token below this chance of being accepted is never worth its row.
const MIN_TOKEN_VALUE: f32 = 0.05;

/// One sequence's offer: its acceptance rate and how many tokens it could draft.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DraftOffer {
    pub rate: f32,
    pub available: usize,
}

/// How many drafted tokens each offer gets this step, maximizing expected useful tokens per
/// second: the step's `base_tokens` are all useful, and the j-th drafted token of a sequence
/// is emitted with probability rate^j. A token joins only while it raises that ratio.
pub fn allot_drafts(offers: &[DraftOffer], base_tokens: usize, budget: usize, cost: &StepCost) -> Vec<usize> {
    let mut candidates: Vec<(f32, usize)> = Vec::new();
    for (i, offer) in offers.iter().enumerate() {
        let mut value = 1.0;
        for _ in 0..offer.available {
            value *= offer.rate;
            if value < MIN_TOKEN_VALUE {
                break;
            }
            candidates.push((value, i));
        }
    }
    // the values of one sequence fall with depth, so this order keeps each one's prefix
    candidates.sort_by(|a, b| b.0.total_cmp(&a.0));
    candidates.truncate(budget.saturating_sub(base_tokens));
    let (mut useful, mut best_ratio, mut best_count) = (base_tokens as f64, 0.0, 0);
    let base_ratio = useful / cost.seconds(base_tokens.max(1));
    for (n, &(value, _)) in candidates.iter().enumerate() {
        useful += value as f64;
        let ratio = useful / cost.seconds(base_tokens + n + 1);
        if ratio > best_ratio {
            (best_ratio, best_count) = (ratio, n + 1);
        }
    }
    let mut allotted = vec![0; offers.len()];
    if best_ratio > base_ratio {
        for &(_, i) in &candidates[..best_count] {
            allotted[i] += 1;
        }
    }
    allotted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ngram_finds_the_latest_longest_match() {
        // "1 2 3 9 ... 1 2 3" proposes what followed the earlier "1 2 3"
        let tokens = [1, 2, 3, 9, 8, 7, 5, 2, 3, 4, 1, 2, 3];
        assert_eq!(propose_ngram(&tokens, 2, 4, 3), &[9, 8, 7]);
        assert_eq!(propose_ngram(&tokens, 2, 4, 10), &[9, 8, 7, 5, 2, 3, 4, 1, 2, 3]);
        // the longer match "1 2 3" beats the more recent "2 3"
        assert_eq!(propose_ngram(&tokens, 2, 2, 2), &[4, 1], "with max 2 the latest '2 3' wins");
        assert!(propose_ngram(&tokens, 4, 4, 3).is_empty(), "no 4-gram recurs");
        assert!(propose_ngram(&[5, 6, 7], 1, 3, 3).is_empty());
        assert_eq!(propose_ngram(&[5, 5], 1, 3, 3), &[5]);
        assert!(propose_ngram(&[], 1, 3, 3).is_empty());
    }

    #[test]
    fn acceptance_follows_outcomes() {
        let mut a = Acceptance::default();
        assert_eq!(a.rate(), 0.5);
        for _ in 0..10 {
            a.record(4, 4);
        }
        assert!(a.rate() > 0.9, "{}", a.rate());
        for _ in 0..10 {
            a.record(4, 0);
        }
        assert!(a.rate() < 0.4, "a long good history fades within ten drafts: {}", a.rate());
        let mut fresh = Acceptance::default();
        for _ in 0..10 {
            fresh.record(4, 0);
        }
        assert!(fresh.rate() < 0.2, "{}", fresh.rate());
    }

    #[test]
    fn cost_interpolates_and_never_falls() {
        let cost = StepCost::new(vec![(1, 1.0), (4, 1.0), (2, 1.2), (8, 2.0)]);
        assert_eq!(cost.points(), &[(1, 1.0), (2, 1.2), (4, 1.2), (8, 2.0)]);
        assert!((cost.seconds(3) - 1.2).abs() < 1e-9);
        assert!((cost.seconds(6) - 1.6).abs() < 1e-9);
        assert!((cost.seconds(16) - 3.6).abs() < 1e-9, "extrapolated");
    }

    #[test]
    fn drafts_only_where_they_pay() {
        // memory-bound up to 8 tokens, then linear: 1 + (t - 8) / 8
        let cost = StepCost::new(vec![(1, 1.0), (8, 1.0), (64, 8.0)]);
        let sure = DraftOffer { rate: 0.95, available: 5 };
        assert_eq!(allot_drafts(&[sure], 1, 2048, &cost), vec![5], "free tokens are taken");
        let poor = DraftOffer { rate: 0.04, available: 5 };
        assert_eq!(allot_drafts(&[poor], 1, 2048, &cost), vec![0]);
        // 32 sequences decoding: every extra token costs 1/8 of a step's worth, a draft of rate
        // 0.5 returns less than that
        let half = DraftOffer { rate: 0.5, available: 4 };
        assert_eq!(allot_drafts(&[half; 32], 32, 2048, &cost), vec![0; 32]);
        // but at 4 sequences there is room for 4 more tokens at no cost
        let got = allot_drafts(&[half; 4], 4, 2048, &cost);
        assert_eq!(got.iter().sum::<usize>(), 4, "{got:?}");
        assert_eq!(allot_drafts(&[sure], 1, 3, &cost), vec![2], "the token budget caps drafts");
    }
}
