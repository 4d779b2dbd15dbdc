//! `GET /metrics`: the engine's counters in Prometheus text format, vLLM's names with `hearth:`.

use std::fmt::Write;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use hearth_engine::metrics::{HistogramSnapshot, SpecMetrics};
use hearth_engine::EngineMetrics;

use crate::state::AppState;

pub async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let mut text = match state.model() {
        Some(model) => render(model.engine.metrics(), &state.config.served_model_names[0]),
        None => String::new(),
    };
    text.push_str(&state.connections.render_prometheus("hearth"));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
}

/// Renders all metrics, each labelled with the model name.
pub fn render(m: &EngineMetrics, model_name: &str) -> String {
    let label = format!("model_name=\"{}\"", model_name.replace('\\', "\\\\").replace('"', "\\\""));
    let mut out = String::new();
    let get = EngineMetrics::get;
    let gauges = [
        ("num_requests_running", "Requests in the running batch.", get(&m.num_running) as f64),
        ("num_requests_waiting", "Requests waiting to be scheduled.", get(&m.num_waiting) as f64),
        ("kv_cache_usage_perc", "Fraction of KV cache blocks in use (1 = full).", m.kv_usage()),
    ];
    for (name, help, value) in gauges {
        header(&mut out, name, help, "gauge");
        let _ = writeln!(out, "hearth:{name}{{{label}}} {value}");
    }
    let counters = [
        ("num_preemptions_total", "Requests preempted for lack of KV blocks.", get(&m.num_preemptions)),
        ("prefix_cache_queries_total", "KV blocks looked up in the prefix cache.", get(&m.prefix_queries)),
        ("prefix_cache_hits_total", "KV blocks found in the prefix cache.", get(&m.prefix_hits)),
        ("prompt_tokens_total", "Prompt tokens of finished requests.", get(&m.prompt_tokens)),
        ("generation_tokens_total", "Generated tokens of finished requests.", get(&m.generation_tokens)),
    ];
    for (name, help, value) in counters {
        header(&mut out, name, help, "counter");
        let _ = writeln!(out, "hearth:{name}{{{label}}} {value}");
    }
    write_spec_decode(&mut out, &label, &m.spec);
    header(&mut out, "request_success_total", "Finished requests by finish reason.", "counter");
    for (reason, counter) in [("stop", &m.finished_stop), ("length", &m.finished_length), ("abort", &m.finished_abort)] {
        let _ = writeln!(out, "hearth:request_success_total{{{label},finished_reason=\"{reason}\"}} {}", get(counter));
    }
    let histograms = [
        ("time_to_first_token_seconds", "Time to first token.", &m.time_to_first_token),
        ("inter_token_latency_seconds", "Time between tokens.", &m.inter_token_latency),
        ("e2e_request_latency_seconds", "End-to-end request latency.", &m.e2e_latency),
        ("engine_step_duration_seconds", "Wall time of one engine step.", &m.step_duration),
    ];
    for (name, help, histogram) in histograms {
        header(&mut out, name, help, "histogram");
        write_histogram(&mut out, name, &label, &histogram.snapshot());
    }
    out
}

/// vLLM's speculative-decoding counters, with one per-position series per draft position
/// seen so far.
fn write_spec_decode(out: &mut String, label: &str, spec: &SpecMetrics) {
    let get = EngineMetrics::get;
    let counters = [
        ("spec_decode_num_drafts_total", "Drafts verified (one per sequence and step).", get(&spec.drafts)),
        ("spec_decode_num_draft_tokens_total", "Drafted tokens verified.", get(&spec.draft_tokens)),
        ("spec_decode_num_accepted_tokens_total", "Drafted tokens accepted.", get(&spec.accepted_tokens)),
        ("spec_decode_num_emitted_tokens_total", "Tokens emitted by steps that verified a draft.", get(&spec.emitted_tokens)),
    ];
    for (name, help, value) in counters {
        header(out, name, help, "counter");
        let _ = writeln!(out, "hearth:{name}{{{label}}} {value}");
    }
    let name = "spec_decode_num_accepted_tokens_per_pos_total";
    header(out, name, "Drafted tokens accepted, by position in the draft.", "counter");
    let positions = get(&spec.longest_draft) as usize;
    for (position, counter) in spec.accepted_per_position.iter().take(positions).enumerate() {
        let _ = writeln!(out, "hearth:{name}{{{label},position=\"{position}\"}} {}", get(counter));
    }
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP hearth:{name} {help}\n# TYPE hearth:{name} {kind}");
}

fn write_histogram(out: &mut String, name: &str, label: &str, h: &HistogramSnapshot) {
    for (bound, count) in h.bounds.iter().zip(&h.cumulative) {
        let _ = writeln!(out, "hearth:{name}_bucket{{{label},le=\"{bound}\"}} {count}");
    }
    let _ = writeln!(out, "hearth:{name}_bucket{{{label},le=\"+Inf\"}} {}", h.count);
    let _ = writeln!(out, "hearth:{name}_sum{{{label}}} {}", h.sum);
    let _ = writeln!(out, "hearth:{name}_count{{{label}}} {}", h.count);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    #[test]
    fn renders_prometheus_text() {
        let m = EngineMetrics::default();
        m.num_running.store(3, Ordering::Relaxed);
        m.finished_length.store(2, Ordering::Relaxed);
        m.time_to_first_token.observe(0.2);
        let text = render(&m, "qwen");
        assert!(text.contains("hearth:num_requests_running{model_name=\"qwen\"} 3\n"), "{text}");
        assert!(text.contains("hearth:request_success_total{model_name=\"qwen\",finished_reason=\"length\"} 2\n"));
        assert!(text.contains("hearth:time_to_first_token_seconds_bucket{model_name=\"qwen\",le=\"0.25\"} 1\n"));
        assert!(text.contains("hearth:time_to_first_token_seconds_count{model_name=\"qwen\"} 1\n"));
        assert!(text.contains("# TYPE hearth:e2e_request_latency_seconds histogram\n"));
        assert!(text.contains("# TYPE hearth:engine_step_duration_seconds histogram\n"), "{text}");
        m.spec.record(3, 2);
        let text = render(&m, "qwen");
        assert!(text.contains("hearth:spec_decode_num_draft_tokens_total{model_name=\"qwen\"} 3\n"), "{text}");
        assert!(text.contains("hearth:spec_decode_num_accepted_tokens_total{model_name=\"qwen\"} 2\n"));
        assert!(text.contains("hearth:spec_decode_num_emitted_tokens_total{model_name=\"qwen\"} 3\n"));
        assert!(text.contains("hearth:spec_decode_num_accepted_tokens_per_pos_total{model_name=\"qwen\",position=\"1\"} 1\n"));
        assert!(text.contains("hearth:spec_decode_num_accepted_tokens_per_pos_total{model_name=\"qwen\",position=\"2\"} 0\n"));
    }
}
