//! Token sampling: logit bias, penalties, temperature, top-k, top-p, min-p, seeds, logprobs.

use std::collections::{HashMap, HashSet};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// How to pick each next token (OpenAI and vLLM parameter meanings).
#[derive(Debug, Clone, PartialEq)]
pub struct SamplingParams {
    /// 0 means greedy.
    pub temperature: f32,
    /// 0 means no top-k limit.
    pub top_k: usize,
    /// 1 means no nucleus limit.
    pub top_p: f32,
    /// 0 means no min-p limit.
    pub min_p: f32,
    /// HF-style multiplicative penalty on tokens seen in prompt or output; 1 means off.
    pub repetition_penalty: f32,
    /// OpenAI: subtracted once from tokens present in the output.
    pub presence_penalty: f32,
    /// OpenAI: subtracted per occurrence in the output.
    pub frequency_penalty: f32,
    pub logit_bias: Vec<(u32, f32)>,
    /// Same seed, same parameters, same prompt: same output.
    pub seed: Option<u64>,
    /// How many top alternatives to report with each token's logprob (None: no logprobs).
    pub logprobs: Option<usize>,
}

impl Default for SamplingParams {
    fn default() -> Self {
        SamplingParams {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            repetition_penalty: 1.0,
            presence_penalty: 0.0,
            frequency_penalty: 0.0,
            logit_bias: Vec::new(),
            seed: None,
            logprobs: None,
        }
    }
}

impl SamplingParams {
    pub fn greedy() -> Self {
        SamplingParams { temperature: 0.0, ..Self::default() }
    }

    /// Checks ranges; the message names the parameter.
    pub fn validate(&self, vocab_size: usize) -> Result<(), String> {
        let check = |ok: bool, msg: &str| if ok { Ok(()) } else { Err(msg.to_string()) };
        check(self.temperature.is_finite() && self.temperature >= 0.0, "temperature must be a finite number >= 0")?;
        check(self.top_p > 0.0 && self.top_p <= 1.0, "top_p must be in (0, 1]")?;
        check((0.0..=1.0).contains(&self.min_p), "min_p must be in [0, 1]")?;
        check(self.repetition_penalty.is_finite() && self.repetition_penalty > 0.0, "repetition_penalty must be > 0")?;
        check((-2.0..=2.0).contains(&self.presence_penalty), "presence_penalty must be in [-2, 2]")?;
        check((-2.0..=2.0).contains(&self.frequency_penalty), "frequency_penalty must be in [-2, 2]")?;
        for &(token, bias) in &self.logit_bias {
            check((token as usize) < vocab_size, &format!("logit_bias token {token} is not in the vocabulary"))?;
            check((-100.0..=100.0).contains(&bias), "logit_bias values must be in [-100, 100]")?;
        }
        Ok(())
    }
}

/// One sampled token with its log-probability and the top alternatives, if asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct Sampled {
    pub token: u32,
    pub logprob: Option<f32>,
    pub top_logprobs: Vec<(u32, f32)>,
}

/// A sampler for one sequence: its parameters, random state and output-token counts.
pub struct Sampler {
    params: SamplingParams,
    rng: StdRng,
    output_counts: HashMap<u32, u32>,
    seen: HashSet<u32>,
}

/// The unprocessed distribution, kept when logprobs are requested.
struct RawLogprobs {
    logits: Vec<f32>,
    log_sum_exp: f32,
    top: Vec<(u32, f32)>,
}

impl RawLogprobs {
    fn new(logits: &[f32], n: usize) -> Self {
        let lse = log_sum_exp(logits);
        let top = top_n(logits, n).into_iter().map(|i| (i as u32, logits[i] - lse)).collect();
        RawLogprobs { logits: logits.to_vec(), log_sum_exp: lse, top }
    }

    fn of(&self, token: u32) -> f32 {
        self.logits[token as usize] - self.log_sum_exp
    }
}

/// Candidates kept before sorting for top-p (the rest are considered only if these do not
/// reach the nucleus mass).
const PARTIAL_SORT: usize = 1024;

impl Sampler {
    pub fn new(params: SamplingParams, prompt: &[u32]) -> Self {
        let rng = match params.seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_os_rng(),
        };
        let seen = prompt.iter().copied().collect();
        Sampler { params, rng, output_counts: HashMap::new(), seen }
    }

    pub fn params(&self) -> &SamplingParams {
        &self.params
    }

    /// Picks the next token from `logits` (modified in place) and records it.
    /// Log-probabilities are those of the model's raw distribution, before bias, penalties and
    /// temperature (as vLLM reports them).
    pub fn sample(&mut self, logits: &mut [f32]) -> Sampled {
        let raw = self.params.logprobs.map(|n| RawLogprobs::new(logits, n));
        self.apply_bias_and_penalties(logits);
        let token = if self.params.temperature == 0.0 { argmax(logits) } else { self.sample_random(logits) };
        *self.output_counts.entry(token).or_insert(0) += 1;
        self.seen.insert(token);
        match raw {
            Some(raw) => Sampled { token, logprob: Some(raw.of(token)), top_logprobs: raw.top },
            None => Sampled { token, logprob: None, top_logprobs: Vec::new() },
        }
    }

    fn apply_bias_and_penalties(&self, logits: &mut [f32]) {
        let p = &self.params;
        for &(token, bias) in &p.logit_bias {
            if let Some(l) = logits.get_mut(token as usize) {
                *l += bias;
            }
        }
        if p.repetition_penalty != 1.0 {
            for &token in &self.seen {
                let l = &mut logits[token as usize];
                *l = if *l > 0.0 { *l / p.repetition_penalty } else { *l * p.repetition_penalty };
            }
        }
        if p.presence_penalty != 0.0 || p.frequency_penalty != 0.0 {
            for (&token, &count) in &self.output_counts {
                logits[token as usize] -= p.presence_penalty + p.frequency_penalty * count as f32;
            }
        }
    }

    fn sample_random(&mut self, logits: &[f32]) -> u32 {
        let p = &self.params;
        let inv_t = 1.0 / p.temperature;
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let limit = if p.top_k > 0 { p.top_k.min(logits.len()) } else { logits.len() };
        let mut candidates = top_n(logits, limit.min(PARTIAL_SORT));
        let weight = |i: usize| ((logits[i] - max) * inv_t).exp();
        let total: f32 = logits.iter().map(|&l| ((l - max) * inv_t).exp()).sum();
        let kept_mass: f32 = candidates.iter().map(|&i| weight(i)).sum::<f32>() / total;
        if candidates.len() < limit && kept_mass < p.top_p {
            candidates = top_n(logits, limit); // the partial list is too short for this nucleus
        }
        let mut cumulative = 0.0;
        let min_weight = p.min_p * weight(candidates[0]);
        let mut kept = Vec::with_capacity(candidates.len());
        for &i in &candidates {
            let w = weight(i);
            if w < min_weight || (cumulative >= p.top_p * total && !kept.is_empty()) {
                break;
            }
            cumulative += w;
            kept.push((i, w));
        }
        let sum: f32 = kept.iter().map(|(_, w)| w).sum();
        let mut target = self.rng.random::<f32>() * sum;
        for &(i, w) in &kept {
            target -= w;
            if target <= 0.0 {
                return i as u32;
            }
        }
        kept.last().map(|&(i, _)| i as u32).unwrap_or(0)
    }
}

/// Index of the largest value (first one on ties).
pub fn argmax(xs: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in xs.iter().enumerate() {
        if v > xs[best] {
            best = i;
        }
    }
    best as u32
}

/// Indices of the `n` largest values, largest first.
fn top_n(xs: &[f32], n: usize) -> Vec<usize> {
    let n = n.min(xs.len());
    if n == 0 {
        return Vec::new();
    }
    let mut idx: Vec<usize> = (0..xs.len()).collect();
    let by_value_desc = |a: &usize, b: &usize| xs[*b].total_cmp(&xs[*a]).then(a.cmp(b));
    if n < idx.len() {
        idx.select_nth_unstable_by(n - 1, by_value_desc);
        idx.truncate(n);
    }
    idx.sort_unstable_by(by_value_desc);
    idx
}

fn log_sum_exp(xs: &[f32]) -> f32 {
    let max = xs.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    max + xs.iter().map(|&x| (x - max).exp()).sum::<f32>().ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logits() -> Vec<f32> {
        vec![1.0, 3.0, 2.0, 0.5, 2.9]
    }

    #[test]
    fn greedy_takes_the_maximum() {
        let mut s = Sampler::new(SamplingParams::greedy(), &[]);
        assert_eq!(s.sample(&mut logits()).token, 1);
    }

    #[test]
    fn logit_bias_can_force_a_token() {
        let params = SamplingParams { logit_bias: vec![(3, 100.0)], ..SamplingParams::greedy() };
        assert_eq!(Sampler::new(params, &[]).sample(&mut logits()).token, 3);
    }

    #[test]
    fn penalties_push_repeated_tokens_down() {
        let params = SamplingParams { presence_penalty: 0.5, ..SamplingParams::greedy() };
        let mut s = Sampler::new(params, &[]);
        assert_eq!(s.sample(&mut logits()).token, 1);
        assert_eq!(s.sample(&mut logits()).token, 4, "token 1 now pays 0.5 and falls below 2.9");
        let params = SamplingParams { repetition_penalty: 2.0, ..SamplingParams::greedy() };
        let mut s = Sampler::new(params, &[1]);
        assert_eq!(s.sample(&mut logits()).token, 4, "prompt token 1 is divided by 2");
    }

    #[test]
    fn same_seed_same_tokens() {
        let params = SamplingParams { temperature: 1.5, seed: Some(42), ..SamplingParams::default() };
        let run = || {
            let mut s = Sampler::new(params.clone(), &[]);
            (0..50).map(|_| s.sample(&mut logits()).token).collect::<Vec<_>>()
        };
        let a = run();
        assert_eq!(a, run());
        assert!(a.iter().any(|&t| t != a[0]), "temperature 1.5 should vary");
    }

    #[test]
    fn top_k_top_p_and_min_p_restrict_the_choice() {
        let cases = [
            SamplingParams { top_k: 2, ..Default::default() },
            SamplingParams { top_p: 0.5, ..Default::default() },
            SamplingParams { min_p: 0.8, ..Default::default() },
        ];
        for params in cases {
            for seed in 0..200 {
                let mut s = Sampler::new(SamplingParams { seed: Some(seed), ..params.clone() }, &[]);
                let t = s.sample(&mut logits()).token;
                assert!(t == 1 || t == 4, "{params:?} picked {t}");
            }
        }
    }

    #[test]
    fn logprobs_are_normalized_and_sorted() {
        let params = SamplingParams { logprobs: Some(3), ..SamplingParams::greedy() };
        let out = Sampler::new(params, &[]).sample(&mut logits());
        let total: f32 = logits().iter().map(|l| (l - log_sum_exp(&logits())).exp()).sum();
        assert!((total - 1.0).abs() < 1e-5);
        assert_eq!(out.top_logprobs.iter().map(|t| t.0).collect::<Vec<_>>(), vec![1, 4, 2]);
        assert_eq!(out.logprob, Some(out.top_logprobs[0].1));
    }

    #[test]
    fn validation_names_the_parameter() {
        let bad = SamplingParams { top_p: 0.0, ..Default::default() };
        assert!(bad.validate(10).unwrap_err().contains("top_p"));
        let bad = SamplingParams { logit_bias: vec![(10, 1.0)], ..Default::default() };
        assert!(bad.validate(10).unwrap_err().contains("logit_bias"));
        assert!(SamplingParams::default().validate(10).is_ok());
    }
}
