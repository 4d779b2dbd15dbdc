//! `GET /status`: one JSON snapshot of the server for the dashboard and for scripts: the model,
//! its memory and KV capacity, the kernel path and launch settings, request and token counters,
//! prefix-cache counters and the latency histograms (cumulative, as on `/metrics`).

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use hearth_engine::metrics::HistogramSnapshot;
use hearth_engine::EngineMetrics;
use serde_json::{json, Map, Value};

use crate::state::{AppState, ServedModel};

pub async fn status(State(state): State<Arc<AppState>>) -> Json<Value> {
    let model = state.model();
    let mut body = json!({
        "kind": "server",
        "version": env!("CARGO_PKG_VERSION"),
        "state": state.phase().as_str(),
        "uptime_s": crate::unix_now().saturating_sub(state.started_at),
        "model": null,
        "engine": engine_settings(&state, model.map(|m| m.as_ref())),
        "http": {"connections_open": state.connections.open(), "connections_max": state.connections.max()},
    });
    if let Some(model) = model {
        let extra = model_status(&state, model);
        body.as_object_mut().expect("an object").extend(extra);
    }
    Json(body)
}

fn engine_settings(state: &AppState, model: Option<&ServedModel>) -> Value {
    let settings: Map<String, Value> = state.config.launch_settings.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
    json!({
        "kernels": hearth_kernels::isa::active().to_string(),
        "threads": hearth_kernels::threads::num_threads(),
        "max_num_seqs": model.map(|m| m.engine.info().max_num_seqs),
        "settings": settings,
    })
}

fn model_status(state: &AppState, model: &ServedModel) -> Map<String, Value> {
    let info = model.engine.info();
    let plan = &info.plan;
    let m: &EngineMetrics = model.engine.metrics();
    let count = |c| EngineMetrics::get(c);
    let extra = json!({
        "model": {
            "id": state.config.served_model_names[0],
            "aliases": &state.config.served_model_names[1..],
            "root": state.config.model_root,
            "weights_bytes": info.model_bytes,
            "vocab_size": info.vocab_size,
            "max_model_len": plan.max_model_len,
        },
        "kv_cache": {
            "blocks": plan.num_blocks,
            "block_size": plan.block_size,
            "tokens": plan.token_capacity(),
            "bytes": plan.kv_bytes,
            "max_concurrency": plan.max_concurrency(),
            "usage": m.kv_usage(),
        },
        "requests": {
            "running": count(&m.num_running),
            "waiting": count(&m.num_waiting),
            "finished_stop": count(&m.finished_stop),
            "finished_length": count(&m.finished_length),
            "finished_abort": count(&m.finished_abort),
            "preemptions": count(&m.num_preemptions),
        },
        "tokens": {
            "prompt": count(&m.prompt_tokens),
            "prompt_computed": count(&m.prompt_tokens_computed),
            "generation": count(&m.generation_tokens),
        },
        "prefix_cache": {"queries": count(&m.prefix_queries), "hits": count(&m.prefix_hits)},
        "latency": {
            "ttft_s": histogram(&m.time_to_first_token.snapshot()),
            "itl_s": histogram(&m.inter_token_latency.snapshot()),
            "e2e_s": histogram(&m.e2e_latency.snapshot()),
        },
    });
    let Value::Object(map) = extra else { return Map::new() };
    map
}

/// A histogram as upper bounds with cumulative counts (observations above the last bound
/// count only in `count`).
pub fn histogram(h: &HistogramSnapshot) -> Value {
    json!({"bounds": h.bounds, "cumulative": h.cumulative, "count": h.count, "sum": h.sum})
}
