//! `GET /metrics`: the engine's counters in Prometheus text format, under `hearth:` and, where
//! vLLM has the same metric, also under vLLM's own `vllm:` names.

use std::fmt::Write;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use hearth_engine::metrics::{HistogramSnapshot, SpecMetrics};
use hearth_engine::config::KvPlan;
use hearth_engine::EngineMetrics;

use crate::state::AppState;

pub async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let mut text = match state.model() {
        Some(model) => render(model.engine.metrics(), &model.engine.info().plan, &state.config.served_model_names[0]),
        None => String::new(),
    };
    text.push_str(&state.connections.render_prometheus("hearth"));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
}

/// One sample of a family: the suffix of its name (`_bucket`, `_sum`...), labels beyond
/// `model_name`, and its value.
#[derive(Debug, Clone)]
struct Sample {
    suffix: &'static str,
    labels: String,
    value: f64,
}

/// One metric family in hearth's units, written under one name or several.
#[derive(Debug, Clone)]
struct Family {
    name: &'static str,
    help: &'static str,
    kind: &'static str,
    samples: Vec<Sample>,
}

impl Family {
    fn single(name: &'static str, help: &'static str, kind: &'static str, value: f64) -> Self {
        Family { name, help, kind, samples: vec![Sample { suffix: "", labels: String::new(), value }] }
    }

    fn renamed(&self, name: &'static str) -> Self {
        Family { name, ..self.clone() }
    }

    fn scaled(mut self, factor: f64) -> Self {
        self.samples.iter_mut().for_each(|s| s.value *= factor);
        self
    }

    fn write(&self, out: &mut String, prefix: &str, model_label: &str) {
        let name = format!("{prefix}:{}", self.name);
        let _ = writeln!(out, "# HELP {name} {}\n# TYPE {name} {}", self.help, self.kind);
        for s in &self.samples {
            let _ = writeln!(out, "{name}{}{{{model_label}{}}} {}", s.suffix, s.labels, s.value);
        }
    }
}

/// Renders every metric under hearth's names and, where vLLM has an equivalent, under vLLM's
/// too (its units and its older aliases), each labelled with the model name, so routers,
/// autoscalers and dashboards made for vLLM read hearth unchanged.
pub fn render(m: &EngineMetrics, plan: &KvPlan, model_name: &str) -> String {
    let label = format!("model_name=\"{}\"", model_name.replace('\\', "\\\\").replace('"', "\\\""));
    let families = families(m);
    let mut out = String::new();
    for family in &families {
        family.write(&mut out, "hearth", &label);
    }
    for family in vllm_families(&families, plan) {
        family.write(&mut out, "vllm", &label);
    }
    out
}

/// The families in hearth's own units (prefix-cache counts in blocks).
fn families(m: &EngineMetrics) -> Vec<Family> {
    let get = |c: &std::sync::atomic::AtomicU64| EngineMetrics::get(c) as f64;
    let mut families = vec![
        Family::single("num_requests_running", "Requests in the running batch.", "gauge", get(&m.num_running)),
        Family::single("num_requests_waiting", "Requests waiting to be scheduled.", "gauge", get(&m.num_waiting)),
        Family::single("kv_cache_usage_perc", "Fraction of KV cache blocks in use (1 = full).", "gauge", m.kv_usage()),
        Family::single("num_preemptions_total", "Requests preempted for lack of KV blocks.", "counter", get(&m.num_preemptions)),
        Family::single("prefix_cache_queries_total", "KV blocks looked up in the prefix cache.", "counter", get(&m.prefix_queries)),
        Family::single("prefix_cache_hits_total", "KV blocks found in the prefix cache.", "counter", get(&m.prefix_hits)),
        Family::single("prompt_tokens_total", "Prompt tokens of finished requests.", "counter", get(&m.prompt_tokens)),
        Family::single("generation_tokens_total", "Generated tokens of finished requests.", "counter", get(&m.generation_tokens)),
    ];
    families.extend(spec_decode_families(&m.spec));
    let reasons = [("stop", &m.finished_stop), ("length", &m.finished_length), ("abort", &m.finished_abort)];
    let samples = reasons.iter().map(|(reason, c)| Sample { suffix: "", labels: format!(",finished_reason=\"{reason}\""), value: get(c) }).collect();
    families.push(Family { name: "request_success_total", help: "Finished requests by finish reason.", kind: "counter", samples });
    let histograms = [
        ("time_to_first_token_seconds", "Time to first token.", &m.time_to_first_token),
        ("inter_token_latency_seconds", "Time between tokens.", &m.inter_token_latency),
        ("e2e_request_latency_seconds", "End-to-end request latency.", &m.e2e_latency),
        ("engine_step_duration_seconds", "Wall time of one engine step.", &m.step_duration),
    ];
    for (name, help, histogram) in histograms {
        families.push(Family { name, help, kind: "histogram", samples: histogram_samples(&histogram.snapshot()) });
    }
    families
}

/// vLLM's names for the families it has: the prefix-cache counts in tokens (vLLM's unit),
/// the older names production-stack's router and dashboards still read, and the cache config.
fn vllm_families(families: &[Family], plan: &KvPlan) -> Vec<Family> {
    let mut out: Vec<Family> = Vec::new();
    for family in families.iter().filter(|f| f.name != "engine_step_duration_seconds") {
        let family = match family.name {
            "prefix_cache_queries_total" | "prefix_cache_hits_total" => family.clone().scaled(plan.block_size as f64),
            _ => family.clone(),
        };
        let alias = match family.name {
            "kv_cache_usage_perc" => Some("gpu_cache_usage_perc"),
            "inter_token_latency_seconds" => Some("time_per_output_token_seconds"),
            "prefix_cache_queries_total" => Some("gpu_prefix_cache_queries_total"),
            "prefix_cache_hits_total" => Some("gpu_prefix_cache_hits_total"),
            _ => None,
        };
        out.extend(alias.map(|alias| family.renamed(alias)));
        out.push(family);
    }
    let labels = format!(",block_size=\"{}\",num_gpu_blocks=\"{}\",cache_dtype=\"auto\"", plan.block_size, plan.num_blocks);
    out.push(Family { name: "cache_config_info", help: "The KV cache's configuration.", kind: "gauge", samples: vec![Sample { suffix: "", labels, value: 1.0 }] });
    out
}

/// vLLM's speculative-decoding counters, with one per-position series per draft position
/// seen so far.
fn spec_decode_families(spec: &SpecMetrics) -> Vec<Family> {
    let get = |c: &std::sync::atomic::AtomicU64| EngineMetrics::get(c) as f64;
    let mut families = vec![
        Family::single("spec_decode_num_drafts_total", "Drafts verified (one per sequence and step).", "counter", get(&spec.drafts)),
        Family::single("spec_decode_num_draft_tokens_total", "Drafted tokens verified.", "counter", get(&spec.draft_tokens)),
        Family::single("spec_decode_num_accepted_tokens_total", "Drafted tokens accepted.", "counter", get(&spec.accepted_tokens)),
        Family::single("spec_decode_num_emitted_tokens_total", "Tokens emitted by steps that verified a draft.", "counter", get(&spec.emitted_tokens)),
    ];
    let positions = EngineMetrics::get(&spec.longest_draft) as usize;
    let samples = spec.accepted_per_position.iter().take(positions).enumerate();
    let samples = samples.map(|(position, c)| Sample { suffix: "", labels: format!(",position=\"{position}\""), value: get(c) }).collect();
    families.push(Family { name: "spec_decode_num_accepted_tokens_per_pos_total", help: "Drafted tokens accepted, by position in the draft.", kind: "counter", samples });
    families
}

fn histogram_samples(h: &HistogramSnapshot) -> Vec<Sample> {
    let mut samples: Vec<Sample> = h.bounds.iter().zip(&h.cumulative).map(|(bound, count)| Sample { suffix: "_bucket", labels: format!(",le=\"{bound}\""), value: *count as f64 }).collect();
    samples.push(Sample { suffix: "_bucket", labels: ",le=\"+Inf\"".into(), value: h.count as f64 });
    samples.push(Sample { suffix: "_sum", labels: String::new(), value: h.sum });
    samples.push(Sample { suffix: "_count", labels: String::new(), value: h.count as f64 });
    samples
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    const PLAN: KvPlan = KvPlan { num_blocks: 100, block_size: 16, kv_bytes: 1 << 20, max_model_len: 1024 };

    #[test]
    fn renders_prometheus_text() {
        let m = EngineMetrics::default();
        m.num_running.store(3, Ordering::Relaxed);
        m.finished_length.store(2, Ordering::Relaxed);
        m.time_to_first_token.observe(0.2);
        let text = render(&m, &PLAN, "qwen");
        assert!(text.contains("hearth:num_requests_running{model_name=\"qwen\"} 3\n"), "{text}");
        assert!(text.contains("hearth:request_success_total{model_name=\"qwen\",finished_reason=\"length\"} 2\n"));
        assert!(text.contains("hearth:time_to_first_token_seconds_bucket{model_name=\"qwen\",le=\"0.25\"} 1\n"));
        assert!(text.contains("hearth:time_to_first_token_seconds_count{model_name=\"qwen\"} 1\n"));
        assert!(text.contains("# TYPE hearth:e2e_request_latency_seconds histogram\n"));
        assert!(text.contains("# TYPE hearth:engine_step_duration_seconds histogram\n"), "{text}");
        m.spec.record(3, 2);
        let text = render(&m, &PLAN, "qwen");
        assert!(text.contains("hearth:spec_decode_num_draft_tokens_total{model_name=\"qwen\"} 3\n"), "{text}");
        assert!(text.contains("hearth:spec_decode_num_accepted_tokens_total{model_name=\"qwen\"} 2\n"));
        assert!(text.contains("hearth:spec_decode_num_emitted_tokens_total{model_name=\"qwen\"} 3\n"));
        assert!(text.contains("hearth:spec_decode_num_accepted_tokens_per_pos_total{model_name=\"qwen\",position=\"1\"} 1\n"));
        assert!(text.contains("hearth:spec_decode_num_accepted_tokens_per_pos_total{model_name=\"qwen\",position=\"2\"} 0\n"));
    }

    /// The vLLM series that the Gateway API Inference Extension's endpoint picker, KEDA
    /// scalers, production-stack's router and vLLM's Grafana dashboards read.
    const VLLM_CONSUMED: [&str; 18] = [
        "vllm:num_requests_running",
        "vllm:num_requests_waiting",
        "vllm:kv_cache_usage_perc",
        "vllm:gpu_cache_usage_perc",
        "vllm:num_preemptions_total",
        "vllm:prefix_cache_queries_total",
        "vllm:prefix_cache_hits_total",
        "vllm:gpu_prefix_cache_queries_total",
        "vllm:gpu_prefix_cache_hits_total",
        "vllm:prompt_tokens_total",
        "vllm:generation_tokens_total",
        "vllm:request_success_total",
        "vllm:time_to_first_token_seconds",
        "vllm:inter_token_latency_seconds",
        "vllm:time_per_output_token_seconds",
        "vllm:e2e_request_latency_seconds",
        "vllm:spec_decode_num_accepted_tokens_total",
        "vllm:cache_config_info",
    ];

    #[test]
    fn vllm_consumers_find_their_series_with_model_name() {
        let m = EngineMetrics::default();
        m.num_waiting.store(4, Ordering::Relaxed);
        m.kv_usage_ppm.store(250_000, Ordering::Relaxed);
        m.prefix_queries.store(10, Ordering::Relaxed);
        m.prefix_hits.store(6, Ordering::Relaxed);
        m.inter_token_latency.observe(0.03);
        let text = render(&m, &PLAN, "coder");
        let samples: Vec<_> = hearth_protocol::prometheus::samples(&text).collect();
        let value = |name: &str| samples.iter().find(|s| s.name == name).map(|s| s.value);
        for name in VLLM_CONSUMED {
            let kind = if name.ends_with("_seconds") { "histogram" } else if name.ends_with("_total") { "counter" } else { "gauge" };
            assert!(text.contains(&format!("# TYPE {name} {kind}\n")), "{name}: no TYPE line");
            let series = |s: &&hearth_protocol::prometheus::Sample| s.name == name || s.name.strip_prefix(name).is_some_and(|rest| ["_bucket", "_sum", "_count"].contains(&rest));
            let found: Vec<_> = samples.iter().filter(series).collect();
            assert!(!found.is_empty() && found.iter().all(|s| s.label("model_name").as_deref() == Some("coder")), "{name}: {found:?}");
        }
        // the same values as hearth's, prefix counts in tokens (vLLM's unit), not blocks
        assert_eq!(value("vllm:num_requests_waiting"), Some(4.0));
        assert_eq!(value("vllm:kv_cache_usage_perc"), Some(0.25));
        assert_eq!(value("vllm:gpu_cache_usage_perc"), value("hearth:kv_cache_usage_perc"));
        assert_eq!((value("hearth:prefix_cache_hits_total"), value("vllm:prefix_cache_hits_total")), (Some(6.0), Some(96.0)));
        assert_eq!(value("vllm:gpu_prefix_cache_queries_total"), Some(160.0));
        assert_eq!(value("vllm:time_per_output_token_seconds_count"), Some(1.0));
        let config = samples.iter().find(|s| s.name == "vllm:cache_config_info").unwrap();
        assert_eq!((config.label("block_size").as_deref(), config.label("num_gpu_blocks").as_deref()), (Some("16"), Some("100")));
        assert!(!text.contains("vllm:engine_step_duration"), "no vLLM equivalent");
        // no family declared twice
        let mut types: Vec<&str> = text.lines().filter(|l| l.starts_with("# TYPE ")).collect();
        let all = types.len();
        types.sort_unstable();
        types.dedup();
        assert_eq!(types.len(), all);
    }
}
