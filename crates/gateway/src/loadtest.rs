//! Gateway overhead measurement: an instant stub backend, a load generator with a fixed
//! number of connections, and the same load sent to the stub directly and through a gateway
//! in one run, so that the difference is what the gateway adds.

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::config::{Balancing, BreakerSettings, GatewayConfig, HealthProbe, MappingsFile, ModelMapping, Provider, ProviderKind, ProvidersFile, Route};
use crate::{FrontLimits, Gateway};

/// A backend that answers every chat request at once with a fixed completion.
pub async fn instant_stub() -> std::io::Result<SocketAddr> {
    let answer = json!({"id": "chatcmpl-stub", "object": "chat.completion", "created": 1, "model": "stub",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}});
    let app = Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/v1/chat/completions", post(move |_: Json<Value>| {
            let answer = answer.clone();
            async move { Json(answer) }
        }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(axum::serve(listener, app).into_future());
    Ok(addr)
}

/// A gateway in front of `backend`, listening on a random port: one route, or under
/// `cache_aware` and the other balancing policies three equal routes to it (as three replicas),
/// so that the policy's own work is in the measurement.
pub async fn gateway_over(backend: SocketAddr, balancing: Balancing) -> std::io::Result<SocketAddr> {
    let replicas = if balancing == Balancing::default() { 1 } else { 3 };
    let urls = vec![format!("http://{backend}/v1"); replicas];
    let (addr, stop) = serve_on_random_port(replicas_config(&urls, ProviderKind::Openai, "stub", "bench", balancing, false)).await?;
    std::mem::forget(stop); // serves for the rest of the process
    Ok(addr)
}

/// A configuration with one public model (`public`) over equal routes to `base_urls`, named
/// `r1`, `r2`, ..., each knowing the model as `upstream`; health probes every second when
/// `probe_health`.
pub fn replicas_config(base_urls: &[String], kind: ProviderKind, upstream: &str, public: &str, balancing: Balancing, probe_health: bool) -> GatewayConfig {
    let provider = |(i, url): (usize, &String)| Provider {
        name: format!("r{}", i + 1),
        kind,
        base_url: url.clone(),
        api_key_env: None,
        timeout_s: 600.0,
        connect_timeout_s: 5.0,
        first_token_timeout_s: 600.0,
        max_concurrent: 100_000,
        health: HealthProbe { enabled: probe_health, interval_s: 1.0, path: None },
        metrics_interval_s: Provider::DEFAULT_METRICS_INTERVAL_S,
    };
    let providers: Vec<Provider> = base_urls.iter().enumerate().map(provider).collect();
    let routes = providers.iter().map(|p| Route { provider: p.name.clone(), model: upstream.into(), weight: 1.0, order: Some(0) }).collect();
    let mapping = ModelMapping {
        name: public.into(),
        aliases: vec![],
        routes,
        fallbacks: vec![],
        context_window_fallback: None,
        balancing,
        affinity: Default::default(),
    };
    GatewayConfig {
        dir: std::env::temp_dir(),
        providers: ProvidersFile { providers, circuit_breaker: BreakerSettings::default(), max_attempts: 4 },
        mappings: MappingsFile { models: vec![mapping], prefix_index_entries: MappingsFile::DEFAULT_PREFIX_INDEX_ENTRIES },
    }
}

/// Starts a gateway (with its health probes and load scrapes) on a random local port; it
/// stops, probes and scrapes included, when the returned sender is dropped.
pub async fn serve_on_random_port(config: GatewayConfig) -> std::io::Result<(SocketAddr, tokio::sync::oneshot::Sender<()>)> {
    let gateway = Gateway::new(config, None, FrontLimits::default());
    gateway.spawn_health_probes();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = gateway.serve(listener, async move {
            let _ = stopped.await;
        })
        .await;
    });
    Ok((addr, stop))
}

/// Latency and throughput of one load run.
#[derive(Debug, Clone, Default)]
pub struct LoadResult {
    pub requests: usize,
    pub errors: usize,
    pub requests_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// `connections` clients sending requests for `duration`: back to back, or paced so that
/// together they offer `rate` requests per second (each client on its own fixed schedule).
/// Each request carries a system prompt of `system_chars` characters (one of 8), as
/// shared-prefix traffic does, and a one-word user turn.
pub async fn hammer(base: &str, model: &str, connections: usize, duration: Duration, rate: Option<f64>, system_chars: usize) -> LoadResult {
    let client = reqwest::Client::builder().pool_max_idle_per_host(connections).build().expect("HTTP client");
    let url = Arc::new(format!("{base}/v1/chat/completions"));
    let bodies: Arc<Vec<Value>> = Arc::new(
        (0..8)
            .map(|group| {
                let system: String = format!("System prompt of group {group}. ").chars().cycle().take(system_chars).collect();
                json!({"model": model, "messages": [{"role": "system", "content": system}, {"role": "user", "content": "hi"}], "max_tokens": 1})
            })
            .collect(),
    );
    let started = Instant::now();
    let tasks: Vec<_> = (0..connections)
        .map(|i| {
            let (client, url, bodies) = (client.clone(), url.clone(), bodies.clone());
            let gap = rate.map(|r| Duration::from_secs_f64(connections as f64 / r.max(1e-9)));
            tokio::spawn(async move {
                let (mut latencies, mut errors) = (Vec::new(), 0usize);
                // spread the clients' schedules over one gap
                let mut next = started + gap.map(|g| g.mul_f64(i as f64 / connections as f64)).unwrap_or_default();
                let mut sent = 0usize;
                while started.elapsed() < duration {
                    let body = &bodies[(i + sent) % bodies.len()];
                    sent += 1;
                    if let Some(gap) = gap {
                        tokio::time::sleep_until(next.into()).await;
                        next += gap;
                    }
                    let t = Instant::now();
                    let ok = match client.post(url.as_str()).json(body).send().await {
                        Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                        Err(_) => false,
                    };
                    match ok {
                        true => latencies.push(t.elapsed().as_secs_f64() * 1000.0),
                        false => errors += 1,
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    let (mut all, mut errors) = (Vec::new(), 0);
    for task in tasks {
        if let Ok((l, e)) = task.await {
            all.extend(l);
            errors += e;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_by(f64::total_cmp);
    let at = |q: f64| all.get(((all.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(0.0);
    LoadResult { requests: all.len(), errors, requests_per_s: all.len() as f64 / elapsed, p50_ms: at(0.5), p99_ms: at(0.99) }
}
