//! Gateway counters in Prometheus text: requests served per model, backend and attempts;
//! requests that no backend could serve; backend failures; cache-aware and session choices;
//! backend health, breaker state and the load each backend reports.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Instant;

use crate::breaker::BreakerState;
use crate::upstream::Backend;

#[derive(Default)]
pub struct GatewayMetrics {
    /// (model, backend) -> (requests, attempts)
    served: Mutex<BTreeMap<(String, String), (u64, u64)>>,
    failed: Mutex<BTreeMap<String, u64>>,
    backend_failures: Mutex<BTreeMap<String, u64>>,
    /// (backend, reason) -> requests served after a cache-aware or session choice
    routed: Mutex<BTreeMap<(String, &'static str), u64>>,
    /// backend -> time until its answer started (successful attempts)
    latency: Mutex<BTreeMap<String, LatencyHistogram>>,
}

/// Upper bounds (seconds) of the latency buckets.
const LATENCY_BOUNDS: [f64; 14] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0];

/// Counts per bucket of one backend's answer latency.
#[derive(Debug, Clone, Default)]
pub struct LatencyHistogram {
    /// Observations at or below each bound of `LATENCY_BOUNDS` and above the one before.
    counts: [u64; LATENCY_BOUNDS.len()],
    pub count: u64,
    pub sum: f64,
}

impl LatencyHistogram {
    fn observe(&mut self, seconds: f64) {
        if let Some(i) = LATENCY_BOUNDS.iter().position(|&b| seconds <= b) {
            self.counts[i] += 1;
        }
        self.count += 1;
        self.sum += seconds;
    }

    pub fn bounds(&self) -> &'static [f64] {
        &LATENCY_BOUNDS
    }

    /// Observations at or below each bound.
    pub fn cumulative(&self) -> Vec<u64> {
        self.counts.iter().scan(0, |running, n| {
            *running += n;
            Some(*running)
        }).collect()
    }
}

impl GatewayMetrics {
    pub fn served(&self, model: &str, backend: &str, attempts: usize) {
        let mut served = self.served.lock().expect("metrics lock");
        let entry = served.entry((model.to_string(), backend.to_string())).or_default();
        entry.0 += 1;
        entry.1 += attempts as u64;
    }

    pub fn failed(&self, model: &str) {
        *self.failed.lock().expect("metrics lock").entry(model.to_string()).or_default() += 1;
    }

    pub fn backend_failed(&self, backend: &str) {
        *self.backend_failures.lock().expect("metrics lock").entry(backend.to_string()).or_default() += 1;
    }

    pub fn routed(&self, backend: &str, reason: &'static str) {
        *self.routed.lock().expect("metrics lock").entry((backend.to_string(), reason)).or_default() += 1;
    }

    /// How long the backend took until its answer started (the whole answer when not streamed).
    pub fn answered(&self, backend: &str, seconds: f64) {
        self.latency.lock().expect("metrics lock").entry(backend.to_string()).or_default().observe(seconds);
    }

    pub fn latency(&self, backend: &str) -> LatencyHistogram {
        self.latency.lock().expect("metrics lock").get(backend).cloned().unwrap_or_default()
    }

    /// (requests served, backend failures) of one backend.
    pub fn backend_totals(&self, backend: &str) -> (u64, u64) {
        let served = self.served.lock().expect("metrics lock").iter().filter(|((_, b), _)| b == backend).map(|(_, (n, _))| n).sum();
        let failures = self.backend_failures.lock().expect("metrics lock").get(backend).copied().unwrap_or(0);
        (served, failures)
    }

    /// (requests served, requests no backend could serve) over all models.
    pub fn totals(&self) -> (u64, u64) {
        let served = self.served.lock().expect("metrics lock").values().map(|(n, _)| n).sum();
        let failed = self.failed.lock().expect("metrics lock").values().sum();
        (served, failed)
    }

    pub fn render(&self, backends: &[std::sync::Arc<Backend>]) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# TYPE hearth_gateway:requests_total counter");
        for ((model, backend), (requests, _)) in self.served.lock().expect("metrics lock").iter() {
            let _ = writeln!(out, "hearth_gateway:requests_total{{model=\"{model}\",backend=\"{backend}\"}} {requests}");
        }
        let _ = writeln!(out, "# TYPE hearth_gateway:attempts_total counter");
        for ((model, backend), (_, attempts)) in self.served.lock().expect("metrics lock").iter() {
            let _ = writeln!(out, "hearth_gateway:attempts_total{{model=\"{model}\",backend=\"{backend}\"}} {attempts}");
        }
        let _ = writeln!(out, "# TYPE hearth_gateway:requests_failed_total counter");
        for (model, n) in self.failed.lock().expect("metrics lock").iter() {
            let _ = writeln!(out, "hearth_gateway:requests_failed_total{{model=\"{model}\"}} {n}");
        }
        let _ = writeln!(out, "# TYPE hearth_gateway:backend_failures_total counter");
        for (backend, n) in self.backend_failures.lock().expect("metrics lock").iter() {
            let _ = writeln!(out, "hearth_gateway:backend_failures_total{{backend=\"{backend}\"}} {n}");
        }
        let _ = writeln!(out, "# TYPE hearth_gateway:route_decisions_total counter");
        for ((backend, reason), n) in self.routed.lock().expect("metrics lock").iter() {
            let _ = writeln!(out, "hearth_gateway:route_decisions_total{{backend=\"{backend}\",reason=\"{reason}\"}} {n}");
        }
        let _ = writeln!(out, "# TYPE hearth_gateway:backend_latency_seconds histogram");
        for (backend, h) in self.latency.lock().expect("metrics lock").iter() {
            for (bound, n) in h.bounds().iter().zip(h.cumulative()) {
                let _ = writeln!(out, "hearth_gateway:backend_latency_seconds_bucket{{backend=\"{backend}\",le=\"{bound}\"}} {n}");
            }
            let _ = writeln!(out, "hearth_gateway:backend_latency_seconds_bucket{{backend=\"{backend}\",le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(out, "hearth_gateway:backend_latency_seconds_sum{{backend=\"{backend}\"}} {}", h.sum);
            let _ = writeln!(out, "hearth_gateway:backend_latency_seconds_count{{backend=\"{backend}\"}} {}", h.count);
        }
        let _ = writeln!(out, "# TYPE hearth_gateway:backend_up gauge\n# TYPE hearth_gateway:backend_circuit_open gauge\n# TYPE hearth_gateway:backend_outstanding gauge");
        let now = Instant::now();
        for b in backends {
            let up = b.healthy.load(std::sync::atomic::Ordering::Acquire) as u8;
            let open = b.breaker.lock().map(|br| matches!(br.state(), BreakerState::Open { .. }) && !br.is_available(now)).unwrap_or(false) as u8;
            let outstanding = b.outstanding.load(std::sync::atomic::Ordering::Acquire);
            let name = b.name();
            let _ = writeln!(out, "hearth_gateway:backend_up{{backend=\"{name}\"}} {up}");
            let _ = writeln!(out, "hearth_gateway:backend_circuit_open{{backend=\"{name}\"}} {open}");
            let _ = writeln!(out, "hearth_gateway:backend_outstanding{{backend=\"{name}\"}} {outstanding}");
            if let Some(report) = b.reported.fresh(b.report_max_age()) {
                let _ = writeln!(out, "hearth_gateway:backend_reported_waiting{{backend=\"{name}\"}} {}", report.waiting);
                let _ = writeln!(out, "hearth_gateway:backend_reported_kv_usage{{backend=\"{name}\"}} {}", report.kv_usage);
            }
        }
        out
    }
}
