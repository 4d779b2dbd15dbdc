//! `GET /status` of the gateway: one JSON snapshot for the dashboard and for scripts: the public
//! models, request totals, and per backend its health, breaker, requests in flight, answer
//! latency (a cumulative histogram) and the load it last reported.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use crate::breaker::BreakerState;
use crate::upstream::Backend;
use crate::Gateway;

pub async fn status(State(gw): State<Arc<Gateway>>) -> Json<Value> {
    let (served, failed) = gw.metrics.totals();
    let backends: Vec<Value> = gw.backends.iter().map(|b| backend_status(&gw, b)).collect();
    Json(json!({
        "kind": "gateway",
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_s": crate::unix_now().saturating_sub(gw.started_at),
        "models": gw.config.mappings.models.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(),
        "requests": {"served": served, "failed": failed},
        "backends": backends,
        "http": {"connections_open": gw.connections.open(), "connections_max": gw.connections.max()},
    }))
}

fn backend_status(gw: &Gateway, backend: &Backend) -> Value {
    let name = backend.name();
    let models: Vec<&str> = gw
        .config
        .mappings
        .models
        .iter()
        .filter(|m| m.routes.iter().any(|r| r.provider == name))
        .map(|m| m.name.as_str())
        .collect();
    let breaker = match backend.breaker.lock().map(|b| b.state().clone()) {
        Ok(BreakerState::Closed) => "closed",
        Ok(BreakerState::Open { until }) if Instant::now() < until => "open",
        Ok(BreakerState::Open { .. } | BreakerState::HalfOpen { .. }) => "half_open",
        Err(_) => "unknown",
    };
    let (requests, failures) = gw.metrics.backend_totals(name);
    let latency = gw.metrics.latency(name);
    let reported = backend
        .reported
        .fresh(backend.report_max_age())
        .map(|r| json!({"waiting": r.waiting, "running": r.running, "kv_usage": r.kv_usage}));
    json!({
        "name": name,
        "kind": format!("{:?}", backend.provider.kind).to_ascii_lowercase(),
        "url": backend.provider.base_url,
        "models": models,
        "healthy": backend.healthy.load(Ordering::Acquire),
        "breaker": breaker,
        "in_flight": backend.outstanding.load(Ordering::Acquire),
        "max_concurrent": backend.provider.max_concurrent,
        "requests": requests,
        "failures": failures,
        "latency_s": {"bounds": latency.bounds(), "cumulative": latency.cumulative(), "count": latency.count, "sum": latency.sum},
        "reported": reported,
    })
}
