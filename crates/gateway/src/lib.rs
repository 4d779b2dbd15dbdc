//! `hearth gateway`: one OpenAI endpoint over many backends (hearth, vLLM, Ollama, any
//! OpenAI-compatible API) with ordered fallback, load balancing, circuit breakers, health
//! probes, virtual keys with limits, and usage records. It knows only the protocol.

pub mod affinity;
pub mod breaker;
pub mod choose;
pub mod config;
pub mod front;
pub mod keys;
pub mod keys_db;
pub mod litellm;
pub mod load;
pub mod loadtest;
pub mod metrics;
pub mod ollama;
pub mod plan;
pub mod relay;
pub mod router;
pub mod status;
pub mod typed_events;
pub mod upstream;
pub mod usage;

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use hearth_http::{ConnectionLimits, ConnectionStats};
use tokio::net::TcpListener;
use tokio::sync::mpsc::UnboundedSender;

pub use config::{ConfigError, GatewayConfig};
pub use keys::{KeyPolicy, KeyStore};

use crate::affinity::PrefixIndex;
use crate::config::Balancing;
use crate::metrics::GatewayMetrics;
use crate::upstream::{Backend, Endpoint};
use crate::usage::UsageRecord;

/// The running gateway's shared state.
pub struct Gateway {
    pub config: GatewayConfig,
    pub backends: Vec<Arc<Backend>>,
    pub keys: Option<Arc<KeyStore>>,
    pub usage_tx: Option<UnboundedSender<UsageRecord>>,
    pub metrics: GatewayMetrics,
    pub started_at: u64,
    /// How the gateway's own port treats clients.
    pub front: FrontLimits,
    /// Open and refused client connections.
    pub connections: Arc<ConnectionStats>,
    /// Which prompt prefixes went to which backend (for `cache_aware` balancing).
    pub prefixes: PrefixIndex,
    /// The turn counter of `round_robin` balancing.
    pub rotation: std::sync::atomic::AtomicUsize,
}

/// How the gateway's own port treats clients: connections, the size and pace of request
/// bodies, and whether the web pages are served.
#[derive(Debug, Clone)]
pub struct FrontLimits {
    pub connections: ConnectionLimits,
    pub max_body_bytes: usize,
    /// The playground (`/`, over the public models) and the dashboard (`/dashboard`).
    pub ui: bool,
}

impl Default for FrontLimits {
    fn default() -> Self {
        FrontLimits { connections: ConnectionLimits::default(), max_body_bytes: 32 << 20, ui: true }
    }
}

impl Gateway {
    /// Builds the gateway; with a key store, starts its usage writer (needs a tokio runtime).
    pub fn new(config: GatewayConfig, keys: Option<Arc<KeyStore>>, front: FrontLimits) -> Arc<Self> {
        let settings = &config.providers.circuit_breaker;
        let backends = config.providers.providers.iter().map(|p| Arc::new(Backend::new(p.clone(), settings))).collect();
        let usage_tx = keys.as_ref().map(|store| {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            tokio::spawn(keys::write_usage(store.clone(), rx));
            tx
        });
        let connections = ConnectionStats::new(front.connections.max_connections);
        let metrics = GatewayMetrics::default();
        let prefixes = PrefixIndex::new(config.mappings.prefix_index_entries);
        Arc::new(Gateway { config, backends, keys, usage_tx, metrics, started_at: unix_now(), front, connections, prefixes, rotation: Default::default() })
    }

    /// Probes every backend with health probing on, forever, each at its own interval; and
    /// reads the load of every backend that a `cache_aware` route uses.
    pub fn spawn_health_probes(self: &Arc<Self>) {
        self.spawn_load_scrapes();
        for (index, backend) in self.backends.iter().enumerate() {
            if !backend.provider.health.enabled {
                continue;
            }
            let (backend, gateway) = (backend.clone(), Arc::downgrade(self));
            tokio::spawn(async move {
                let interval = Duration::from_secs_f64(backend.provider.health.interval_s.max(0.05));
                // ends with the gateway
                while gateway.strong_count() > 0 {
                    let up = backend.probe().await;
                    let was = backend.healthy.swap(up, Ordering::AcqRel);
                    if was != up {
                        tracing::warn!(backend = backend.name(), up, "backend health changed");
                    }
                    if was && !up {
                        // a replica that went down comes back with an empty KV cache
                        if let Some(gateway) = gateway.upgrade() {
                            gateway.prefixes.forget_replica(index);
                        }
                    }
                    tokio::time::sleep(interval).await;
                }
            });
        }
    }

    fn spawn_load_scrapes(self: &Arc<Self>) {
        let cache_aware = self.config.mappings.models.iter().filter(|m| m.balancing == Balancing::CacheAware);
        let scraped: std::collections::HashSet<&str> = cache_aware.flat_map(|m| m.routes.iter().map(|r| r.provider.as_str())).collect();
        for backend in self.backends.iter().filter(|b| scraped.contains(b.name()) && b.provider.kind != config::ProviderKind::Ollama) {
            let (backend, gateway) = (backend.clone(), Arc::downgrade(self));
            tokio::spawn(async move {
                let interval = Duration::from_secs_f64(backend.provider.metrics_interval_s.max(0.05));
                while gateway.strong_count() > 0 {
                    let report = backend.scrape_load().await;
                    backend.reported.record(report);
                    tokio::time::sleep(interval).await;
                }
            });
        }
    }

    pub fn router(self: &Arc<Self>) -> axum::Router {
        front::router(self.clone())
    }

    /// Serves the gateway on `listener` under its front limits until `shutdown` resolves and
    /// the open connections have finished.
    pub async fn serve(self: &Arc<Self>, listener: TcpListener, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
        hearth_http::serve(listener, self.router(), &self.front.connections, self.connections.clone(), shutdown).await
    }
}

pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

pub(crate) fn new_id(endpoint: Endpoint) -> String {
    let prefix = match endpoint {
        Endpoint::Chat => "chatcmpl",
        Endpoint::Completions => "cmpl",
        Endpoint::Responses => "resp",
        Endpoint::Messages => "msg",
    };
    format!("{prefix}-{:024x}", rand::random::<u128>() >> 32)
}
