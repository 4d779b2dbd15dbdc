//! Benchmark statistics: throughput and latency percentiles over the requests of one run.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::spec_decode::SpecDecodeCounts;

use crate::client::RequestOutcome;

/// Mean, median, p90 and p99 of a set of values (milliseconds).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Percentiles {
    pub mean: f64,
    pub median: f64,
    pub p90: f64,
    pub p99: f64,
}

impl Percentiles {
    pub fn of(values: &mut [f64]) -> Self {
        if values.is_empty() {
            return Percentiles::default();
        }
        values.sort_by(f64::total_cmp);
        let at = |q: f64| {
            // linear interpolation between closest ranks (numpy's default)
            let pos = q * (values.len() - 1) as f64;
            let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
            values[lo] + (values[hi] - values[lo]) * (pos - lo as f64)
        };
        Percentiles { mean: values.iter().sum::<f64>() / values.len() as f64, median: at(0.5), p90: at(0.9), p99: at(0.99) }
    }
}

/// The result of one benchmark run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BenchReport {
    pub label: String,
    pub successes: usize,
    pub failures: usize,
    pub duration_s: f64,
    pub input_tokens: usize,
    pub output_tokens: usize,
    pub request_throughput: f64,
    pub output_throughput: f64,
    pub total_token_throughput: f64,
    pub ttft_ms: Percentiles,
    pub tpot_ms: Percentiles,
    pub itl_ms: Percentiles,
    pub e2e_ms: Percentiles,
    /// The first few error messages.
    pub errors: Vec<String>,
    /// The server's speculative-decoding counters over the run, where it exports them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spec_decode: Option<SpecDecodeCounts>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl BenchReport {
    pub fn new(label: String, outcomes: &[RequestOutcome], duration: Duration) -> Self {
        let ok: Vec<&RequestOutcome> = outcomes.iter().filter(|o| o.ok).collect();
        let secs = duration.as_secs_f64().max(1e-9);
        let input_tokens = ok.iter().map(|o| o.prompt_tokens).sum();
        let output_tokens = ok.iter().map(|o| o.output_tokens).sum();
        let collect = |f: &dyn Fn(&RequestOutcome) -> Vec<f64>| Percentiles::of(&mut ok.iter().flat_map(|o| f(o)).collect::<Vec<_>>());
        BenchReport {
            label,
            successes: ok.len(),
            failures: outcomes.len() - ok.len(),
            duration_s: secs,
            input_tokens,
            output_tokens,
            request_throughput: ok.len() as f64 / secs,
            output_throughput: output_tokens as f64 / secs,
            total_token_throughput: (input_tokens + output_tokens) as f64 / secs,
            ttft_ms: collect(&|o| vec![ms(o.ttft)]),
            tpot_ms: collect(&|o| o.tpot().map(ms).into_iter().collect()),
            itl_ms: collect(&|o| o.itl.iter().map(|d| ms(*d)).collect()),
            e2e_ms: collect(&|o| vec![ms(o.latency)]),
            errors: outcomes.iter().filter_map(|o| o.error.clone()).take(5).collect(),
            spec_decode: None,
        }
    }
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "============ Serving benchmark: {} ============", self.label)?;
        writeln!(f, "{:<36}{}", "Successful requests:", self.successes)?;
        writeln!(f, "{:<36}{}", "Failed requests:", self.failures)?;
        writeln!(f, "{:<36}{:.2}", "Benchmark duration (s):", self.duration_s)?;
        writeln!(f, "{:<36}{}", "Total input tokens:", self.input_tokens)?;
        writeln!(f, "{:<36}{}", "Total generated tokens:", self.output_tokens)?;
        writeln!(f, "{:<36}{:.2}", "Request throughput (req/s):", self.request_throughput)?;
        writeln!(f, "{:<36}{:.2}", "Output token throughput (tok/s):", self.output_throughput)?;
        writeln!(f, "{:<36}{:.2}", "Total token throughput (tok/s):", self.total_token_throughput)?;
        for (name, p) in [("TTFT", self.ttft_ms), ("TPOT", self.tpot_ms), ("ITL", self.itl_ms), ("E2E latency", self.e2e_ms)] {
            writeln!(f, "{:-^52}", format!(" {name} (ms) "))?;
            writeln!(f, "{:<36}{:.2}", format!("Mean {name}:"), p.mean)?;
            writeln!(f, "{:<36}{:.2}", format!("Median {name}:"), p.median)?;
            writeln!(f, "{:<36}{:.2}", format!("P90 {name}:"), p.p90)?;
            writeln!(f, "{:<36}{:.2}", format!("P99 {name}:"), p.p99)?;
        }
        if let Some(spec) = &self.spec_decode {
            writeln!(f, "{:-^52}", " Speculative decoding ")?;
            writeln!(f, "{:<36}{}", "Drafts verified:", spec.drafts)?;
            writeln!(f, "{:<36}{}", "Drafted tokens:", spec.draft_tokens)?;
            writeln!(f, "{:<36}{}", "Accepted tokens:", spec.accepted_tokens)?;
            writeln!(f, "{:<36}{:.2}", "Acceptance rate (%):", spec.acceptance_rate() * 100.0)?;
            writeln!(f, "{:<36}{:.2}", "Mean accepted tokens per draft:", spec.mean_accepted())?;
        }
        for e in &self.errors {
            writeln!(f, "error: {e}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_interpolate() {
        let mut v: Vec<f64> = (1..=100).map(f64::from).collect();
        let p = Percentiles::of(&mut v);
        assert_eq!(p.mean, 50.5);
        assert_eq!(p.median, 50.5);
        assert!((p.p90 - 90.1).abs() < 1e-9);
        assert!((p.p99 - 99.01).abs() < 1e-9);
        assert_eq!(Percentiles::of(&mut []), Percentiles::default());
    }

    #[test]
    fn report_counts_only_successes() {
        let ok = RequestOutcome {
            ok: true,
            prompt_tokens: 10,
            output_tokens: 5,
            ttft: Duration::from_millis(100),
            itl: vec![Duration::from_millis(20); 4],
            latency: Duration::from_millis(180),
            error: None,
        };
        let failed = RequestOutcome { error: Some("HTTP 503".into()), ..Default::default() };
        let r = BenchReport::new("t".into(), &[ok.clone(), ok, failed], Duration::from_secs(2));
        assert_eq!((r.successes, r.failures, r.output_tokens), (2, 1, 10));
        assert_eq!(r.output_throughput, 5.0);
        assert_eq!(r.tpot_ms.mean, 20.0);
        assert_eq!(r.itl_ms.median, 20.0);
        assert_eq!(r.errors, vec!["HTTP 503".to_string()]);
    }
}
