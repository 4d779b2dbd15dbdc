//! The soak test's verdict: no upward trend beyond noise in memory, open files and latency
//! under the load, the KV cache and running requests back to where they were after it, and no
//! request answered wrongly.

use crate::soak::Sample;

/// One judged quantity.
#[derive(Debug, Clone)]
pub struct Check {
    pub what: String,
    /// The early and the late value (medians of the first and last third, or before and after).
    pub early: f64,
    pub late: f64,
    /// Largest late value that passes.
    pub limit: f64,
    pub ok: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Verdict {
    pub checks: Vec<Check>,
    /// Why some trend checks were not made (too few samples, no `/proc`).
    pub skipped: Vec<String>,
}

impl Verdict {
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
    }

    fn push(&mut self, what: &str, early: f64, late: f64, limit: f64) {
        self.checks.push(Check { what: what.into(), early, late, limit, ok: late <= limit });
    }
}

/// Fewest samples after the warm-up that a trend is judged on.
const MIN_TREND_SAMPLES: usize = 6;

/// Judges the samples under load, and the settled state before and after it. Latency is
/// judged only with `judge_latency` (on a machine shared with other work it moves with that).
pub fn judge(samples: &[Sample], before: &Sample, after: &Sample, unexpected: u64, idle_connections: usize, judge_latency: bool) -> Verdict {
    let mut verdict = Verdict::default();
    // the first fifth warms caches, pools and allocator arenas up
    let steady = &samples[samples.len() / 5..];
    let trends: [(&str, fn(&Sample) -> Option<f64>, fn(f64) -> f64); 3] = [
        ("server memory, RSS MiB", |s| s.rss_mib, |early| early * 1.10 + 16.0),
        ("server open files", |s| s.open_files, |early| early + 16.0),
        ("short-request latency p50, ms", |s| s.latency_p50_ms, |early| early * 1.5 + 20.0),
    ];
    for (what, value, limit) in trends {
        let values: Vec<f64> = steady.iter().filter_map(value).collect();
        if what.contains("latency") && !judge_latency {
            verdict.skipped.push(format!("{what}: reported, not judged (--no-latency-verdict)"));
            continue;
        }
        if values.len() < MIN_TREND_SAMPLES {
            verdict.skipped.push(format!("{what}: {} samples, too few to judge a trend", values.len()));
            continue;
        }
        let third = values.len() / 3;
        let (early, late) = (median(&values[..third]), median(&values[values.len() - third..]));
        verdict.push(what, early, late, limit(early));
    }
    if let (Some(early), Some(late)) = (before.kv_usage, after.kv_usage) {
        verdict.push("KV cache in use when idle, fraction", early, late, early + 0.01);
    }
    if let (Some(early), Some(late)) = (before.open_files, after.open_files) {
        // the soak's own idle keep-alive connections are still open on the server
        verdict.push("server open files when idle", early, late, early + idle_connections as f64 + 8.0);
    }
    verdict.push("running requests when idle", before.running.unwrap_or(0.0), after.running.unwrap_or(0.0), 0.0);
    verdict.push("requests not answered as due", 0.0, unexpected as f64, 0.0);
    verdict
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(rss: impl Fn(usize) -> f64) -> Vec<Sample> {
        (0..40).map(|i| Sample { at_s: i as f64, rss_mib: Some(rss(i)), open_files: Some(40.0), latency_p50_ms: Some(50.0), ..Default::default() }).collect()
    }

    #[test]
    fn a_steady_server_passes_and_a_leaking_one_fails() {
        let idle = Sample { kv_usage: Some(0.0), open_files: Some(30.0), running: Some(0.0), ..Default::default() };
        let noisy = samples(|i| 300.0 + (i % 3) as f64 * 4.0);
        assert!(judge(&noisy, &idle, &idle, 0, 8, true).passed());
        let leaking = samples(|i| 300.0 + i as f64 * 5.0);
        let verdict = judge(&leaking, &idle, &idle, 0, 8, true);
        assert!(!verdict.passed());
        assert!(verdict.checks.iter().any(|c| c.what.contains("RSS") && !c.ok), "{verdict:?}");
        let kv_left = Sample { kv_usage: Some(0.2), ..idle.clone() };
        assert!(!judge(&noisy, &idle, &kv_left, 0, 8, true).passed());
        assert!(!judge(&noisy, &idle, &idle, 1, 8, true).passed());
        let short = judge(&noisy[..5], &idle, &idle, 0, 8, true);
        assert!(short.passed() && short.skipped.len() == 3, "{short:?}");
        let slower = samples(|_| 300.0).into_iter().enumerate().map(|(i, s)| Sample { latency_p50_ms: Some(50.0 + 10.0 * i as f64), ..s }).collect::<Vec<_>>();
        assert!(!judge(&slower, &idle, &idle, 0, 8, true).passed());
        let unjudged = judge(&slower, &idle, &idle, 0, 8, false);
        assert!(unjudged.passed() && unjudged.skipped.iter().any(|s| s.contains("latency")), "{unjudged:?}");
    }
}
