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
