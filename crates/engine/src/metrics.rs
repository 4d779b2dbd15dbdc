//! Engine metrics: counters, gauges and latency histograms, shared with whoever exports them.

use std::sync::atomic::{AtomicU64, Ordering};

/// A Prometheus-style histogram with fixed upper bounds (seconds).
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    counts: Vec<AtomicU64>,
    sum_micros: AtomicU64,
    count: AtomicU64,
}

/// Bounds for time to first token and end-to-end latency.
pub const LATENCY_BOUNDS: &[f64] = &[0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0, 80.0, 160.0];
/// Bounds for the duration of one engine step.
pub const STEP_BOUNDS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0];
/// Bounds for the time between tokens.
pub const TOKEN_GAP_BOUNDS: &[f64] = &[0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.5];

/// A snapshot of a histogram: cumulative counts per bound, total count and sum.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    pub bounds: Vec<f64>,
    pub cumulative: Vec<u64>,
    pub count: u64,
    pub sum: f64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            counts: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, seconds: f64) {
        if let Some(i) = self.bounds.iter().position(|&b| seconds <= b) {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
        self.sum_micros.fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut running = 0;
        let cumulative = self
            .counts
            .iter()
            .map(|c| {
                running += c.load(Ordering::Relaxed);
                running
            })
            .collect();
        HistogramSnapshot {
            bounds: self.bounds.to_vec(),
            cumulative,
            count: self.count.load(Ordering::Relaxed),
            sum: self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
        }
    }
}

/// Speculative decoding outcomes (vLLM's spec-decode counters).
#[derive(Debug)]
pub struct SpecMetrics {
    /// Drafts verified (one per sequence and step that had one).
    pub drafts: AtomicU64,
    pub draft_tokens: AtomicU64,
    pub accepted_tokens: AtomicU64,
    /// Tokens emitted by steps that verified a draft (accepted ones plus one sampled each).
    pub emitted_tokens: AtomicU64,
    /// Accepted tokens by their position in the draft.
    pub accepted_per_position: [AtomicU64; MAX_DRAFT_POSITIONS],
    /// Longest draft verified so far.
    pub longest_draft: AtomicU64,
}

/// Draft positions counted one by one (the engine drafts at most this many tokens).
pub const MAX_DRAFT_POSITIONS: usize = 64;

impl Default for SpecMetrics {
    fn default() -> Self {
        SpecMetrics {
            drafts: AtomicU64::new(0),
            draft_tokens: AtomicU64::new(0),
            accepted_tokens: AtomicU64::new(0),
            emitted_tokens: AtomicU64::new(0),
            accepted_per_position: std::array::from_fn(|_| AtomicU64::new(0)),
            longest_draft: AtomicU64::new(0),
        }
    }
}

impl SpecMetrics {
    /// Counts one verified draft of which the first `accepted` tokens matched.
    pub fn record(&self, drafted: usize, accepted: usize) {
        let add = |c: &AtomicU64, n: usize| c.fetch_add(n as u64, Ordering::Relaxed);
        add(&self.drafts, 1);
        add(&self.draft_tokens, drafted);
        add(&self.accepted_tokens, accepted);
        add(&self.emitted_tokens, accepted + 1);
        for counter in self.accepted_per_position.iter().take(accepted) {
            add(counter, 1);
        }
        self.longest_draft.fetch_max(drafted as u64, Ordering::Relaxed);
    }

    /// Accepted over drafted tokens (0 before any draft).
    pub fn acceptance_rate(&self) -> f64 {
        let drafted = self.draft_tokens.load(Ordering::Relaxed);
        if drafted == 0 { 0.0 } else { self.accepted_tokens.load(Ordering::Relaxed) as f64 / drafted as f64 }
    }

    /// Mean tokens emitted per verified draft (accepted plus the one sampled).
    pub fn mean_emitted_per_draft(&self) -> f64 {
        let drafts = self.drafts.load(Ordering::Relaxed);
        if drafts == 0 { 0.0 } else { self.emitted_tokens.load(Ordering::Relaxed) as f64 / drafts as f64 }
    }
}

/// Everything the engine counts (vLLM's metric set).
#[derive(Debug)]
pub struct EngineMetrics {
    pub num_running: AtomicU64,
    pub num_waiting: AtomicU64,
    /// KV cache usage in millionths (0..=1_000_000).
    pub kv_usage_ppm: AtomicU64,
    pub num_preemptions: AtomicU64,
    pub prefix_queries: AtomicU64,
    pub prefix_hits: AtomicU64,
    pub prompt_tokens: AtomicU64,
    /// Prompt tokens actually run through the model (not served from the prefix cache).
    pub prompt_tokens_computed: AtomicU64,
    pub generation_tokens: AtomicU64,
    pub finished_stop: AtomicU64,
    pub finished_length: AtomicU64,
    pub finished_abort: AtomicU64,
    pub time_to_first_token: Histogram,
    pub inter_token_latency: Histogram,
    pub e2e_latency: Histogram,
    /// Wall time of each engine step (schedule, forward pass, sampling).
    pub step_duration: Histogram,
    pub spec: SpecMetrics,
}

impl Default for EngineMetrics {
    fn default() -> Self {
        EngineMetrics {
            num_running: AtomicU64::new(0),
            num_waiting: AtomicU64::new(0),
            kv_usage_ppm: AtomicU64::new(0),
            num_preemptions: AtomicU64::new(0),
            prefix_queries: AtomicU64::new(0),
            prefix_hits: AtomicU64::new(0),
            prompt_tokens: AtomicU64::new(0),
            prompt_tokens_computed: AtomicU64::new(0),
            generation_tokens: AtomicU64::new(0),
            finished_stop: AtomicU64::new(0),
            finished_length: AtomicU64::new(0),
            finished_abort: AtomicU64::new(0),
            time_to_first_token: Histogram::new(LATENCY_BOUNDS),
            inter_token_latency: Histogram::new(TOKEN_GAP_BOUNDS),
            e2e_latency: Histogram::new(LATENCY_BOUNDS),
            step_duration: Histogram::new(STEP_BOUNDS),
            spec: SpecMetrics::default(),
        }
    }
}

impl EngineMetrics {
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    pub fn kv_usage(&self) -> f64 {
        self.kv_usage_ppm.load(Ordering::Relaxed) as f64 / 1e6
    }

    /// Prefix-cache hit rate over all queried blocks so far.
    pub fn prefix_hit_rate(&self) -> f64 {
        let q = Self::get(&self.prefix_queries);
        if q == 0 { 0.0 } else { Self::get(&self.prefix_hits) as f64 / q as f64 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_counts_cumulatively() {
        let h = Histogram::new(&[0.1, 1.0]);
        h.observe(0.05);
        h.observe(0.5);
        h.observe(5.0);
        let s = h.snapshot();
        assert_eq!(s.cumulative, vec![1, 2]);
        assert_eq!(s.count, 3);
        assert!((s.sum - 5.55).abs() < 1e-6);
    }
}
