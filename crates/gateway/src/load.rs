//! A replica's load as the router weighs it: the requests the gateway has in flight there,
//! and the queue depth and KV-cache use the replica reports on its `/metrics` page (vLLM's
//! names, which hearth exports too), scraped at a short interval.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use hearth_protocol::prometheus;

/// What one scrape of a replica's `/metrics` said.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReportedLoad {
    pub waiting: f64,
    pub running: f64,
    /// KV-cache use, 0..1.
    pub kv_usage: f64,
}

impl ReportedLoad {
    /// Reads a Prometheus page; `None` when it has none of the gauges (not a vLLM-style server).
    pub fn parse(page: &str) -> Option<Self> {
        let (mut waiting, mut running, mut kv_usage, mut seen) = (0.0, 0.0, 0.0f64, false);
        for sample in prometheus::samples(page) {
            match sample.name {
                "vllm:num_requests_waiting" => waiting += sample.value,
                "vllm:num_requests_running" => running += sample.value,
                "vllm:kv_cache_usage_perc" | "vllm:gpu_cache_usage_perc" => kv_usage = kv_usage.max(sample.value),
                _ => continue,
            }
            seen = true;
        }
        seen.then_some(ReportedLoad { waiting, running, kv_usage: kv_usage.clamp(0.0, 1.0) })
    }
}

/// The latest report and when it came; reports older than `max_age` are ignored.
#[derive(Debug, Default)]
pub struct LoadReports {
    latest: Mutex<Option<(ReportedLoad, Instant)>>,
}

impl LoadReports {
    pub fn record(&self, report: Option<ReportedLoad>) {
        *self.latest.lock().expect("load lock") = report.map(|r| (r, Instant::now()));
    }

    pub fn fresh(&self, max_age: Duration) -> Option<ReportedLoad> {
        let latest = *self.latest.lock().expect("load lock");
        latest.filter(|(_, at)| at.elapsed() <= max_age).map(|(r, _)| r)
    }
}

/// A replica's load on one scale: 0 idle, 1 saturated (more is possible).
/// `pending` is the larger of what the gateway has in flight there and what the replica
/// reports running and waiting (the report counts the gateway's own requests too, and other
/// clients'); `saturation` is the number of pending requests that counts as full. KV-cache use
/// counts when it is higher, since a full cache means new requests queue or preempt.
pub fn load_score(outstanding: usize, report: Option<ReportedLoad>, saturation: f64) -> f64 {
    let reported = report.map(|r| r.waiting + r.running).unwrap_or(0.0);
    let pending = (outstanding as f64).max(reported);
    let queue = pending / saturation.max(1.0);
    let kv = report.map(|r| r.kv_usage).unwrap_or(0.0);
    queue.max(kv)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vllm_and_hearth_pages() {
        let page = "# TYPE vllm:num_requests_waiting gauge\nvllm:num_requests_waiting{model_name=\"m\"} 3\n\
                    vllm:num_requests_running{model_name=\"m\"} 5\nvllm:kv_cache_usage_perc{model_name=\"m\"} 0.5\n";
        assert_eq!(ReportedLoad::parse(page), Some(ReportedLoad { waiting: 3.0, running: 5.0, kv_usage: 0.5 }));
        let old_name = "vllm:gpu_cache_usage_perc 0.75\n";
        assert_eq!(ReportedLoad::parse(old_name).unwrap().kv_usage, 0.75);
        assert_eq!(ReportedLoad::parse("other_metric 1\n"), None);
        assert_eq!(ReportedLoad::parse("<html>nope</html>"), None);
    }

    #[test]
    fn stale_reports_are_ignored() {
        let reports = LoadReports::default();
        assert_eq!(reports.fresh(Duration::from_secs(1)), None);
        let report = ReportedLoad { waiting: 1.0, running: 0.0, kv_usage: 0.0 };
        reports.record(Some(report));
        assert_eq!(reports.fresh(Duration::from_secs(60)), Some(report));
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(reports.fresh(Duration::from_millis(1)), None);
        reports.record(None);
        assert_eq!(reports.fresh(Duration::from_secs(60)), None);
    }

    #[test]
    fn load_takes_the_worse_of_queue_and_cache() {
        assert_eq!(load_score(0, None, 8.0), 0.0);
        assert_eq!(load_score(4, None, 8.0), 0.5);
        let busy = ReportedLoad { waiting: 6.0, running: 10.0, kv_usage: 0.2 };
        assert_eq!(load_score(4, Some(busy), 8.0), 2.0, "other clients' requests count");
        let full_cache = ReportedLoad { waiting: 0.0, running: 1.0, kv_usage: 0.95 };
        assert_eq!(load_score(1, Some(full_cache), 8.0), 0.95);
    }
}
