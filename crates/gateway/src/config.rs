//! Gateway configuration: `providers.yaml` (backends) and `model-mappings.yaml` (public names
//! -> ordered routes), loaded strictly: unknown keys, wrong types, unknown providers, duplicate
//! names and fallback cycles are errors that name the file, the line and the field.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub const PROVIDERS_FILE: &str = "providers.yaml";
pub const MAPPINGS_FILE: &str = "model-mappings.yaml";

/// How to talk to a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// Any OpenAI-compatible server (vLLM, llama.cpp, OpenAI).
    Openai,
    /// Ollama's native API (`/api/chat`, `/api/generate`, `/api/tags`).
    Ollama,
    /// hearth serve (OpenAI-compatible).
    Hearth,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Provider {
    pub name: String,
    pub kind: ProviderKind,
    /// For openai/hearth the API root including `/v1`; for ollama the server root.
    pub base_url: String,
    /// Environment variable holding the backend's API key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
    /// Whole-request limit.
    #[serde(default = "default_timeout_s")]
    pub timeout_s: f64,
    #[serde(default = "default_connect_timeout_s")]
    pub connect_timeout_s: f64,
    /// Limit until the first byte (streaming: the first chunk) arrives.
    #[serde(default = "default_first_token_timeout_s")]
    pub first_token_timeout_s: f64,
    #[serde(default = "default_max_concurrent")]
    pub max_concurrent: usize,
    #[serde(default)]
    pub health: HealthProbe,
    /// How often the load gauges on the backend's `/metrics` page are read (only for backends
    /// of `cache_aware` routes).
    #[serde(default = "default_metrics_interval_s")]
    pub metrics_interval_s: f64,
}

fn default_metrics_interval_s() -> f64 {
    Provider::DEFAULT_METRICS_INTERVAL_S
}

impl Provider {
    pub const DEFAULT_METRICS_INTERVAL_S: f64 = 2.0;
}

fn default_timeout_s() -> f64 {
    600.0
}
fn default_connect_timeout_s() -> f64 {
    5.0
}
fn default_first_token_timeout_s() -> f64 {
    120.0
}
fn default_max_concurrent() -> usize {
    256
}

/// Active health probing: `/health` for OpenAI-style backends, `/api/tags` for Ollama.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HealthProbe {
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default = "default_interval_s")]
    pub interval_s: f64,
    /// Probe path relative to the server root [default by kind].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

fn yes() -> bool {
    true
}
fn default_interval_s() -> f64 {
    10.0
}

impl Default for HealthProbe {
    fn default() -> Self {
        HealthProbe { enabled: true, interval_s: default_interval_s(), path: None }
    }
}

/// When a backend is taken out of rotation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BreakerSettings {
    /// Failures within the window that open the breaker.
    #[serde(default = "default_failures")]
    pub failures: usize,
    #[serde(default = "default_window_s")]
    pub window_s: f64,
    /// How long it stays open before one probe request is let through.
    #[serde(default = "default_cooldown_s")]
    pub cooldown_s: f64,
}

fn default_failures() -> usize {
    3
}
fn default_window_s() -> f64 {
    60.0
}
fn default_cooldown_s() -> f64 {
    30.0
}

impl Default for BreakerSettings {
    fn default() -> Self {
        BreakerSettings { failures: default_failures(), window_s: default_window_s(), cooldown_s: default_cooldown_s() }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProvidersFile {
    pub providers: Vec<Provider>,
    #[serde(default)]
    pub circuit_breaker: BreakerSettings,
    /// Attempts per request across all routes, the first included.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: usize,
}

fn default_max_attempts() -> usize {
    4
}

/// How requests spread over routes of equal `order`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Balancing {
    #[default]
    LeastOutstanding,
    Weighted,
    /// Each request to the next route in turn.
    RoundRobin,
    /// To the replica that already holds the longest prefix of the prompt in its KV cache,
    /// weighed against its load; spill to the least loaded one when it is overloaded.
    CacheAware,
    /// The same session (a header, else the `user` field) to the same replica, by
    /// rendezvous hashing; without a session key, least outstanding.
    Session,
}

/// Tuning of `cache_aware` and `session` balancing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AffinitySettings {
    /// Characters per prefix chunk (the index's unit of match).
    #[serde(default = "default_chunk_chars")]
    pub chunk_chars: usize,
    /// Score = match_weight x matched share of the prompt - load_weight x load.
    #[serde(default = "default_match_weight")]
    pub match_weight: f64,
    #[serde(default = "default_load_weight")]
    pub load_weight: f64,
    /// Load (0 idle, 1 saturated) at which the best match is passed over for the least
    /// loaded replica.
    #[serde(default = "default_spill_load")]
    pub spill_load: f64,
    /// Pending requests (in flight from the gateway, or running + waiting as the replica
    /// reports) that count as a saturated replica.
    #[serde(default = "default_saturation_requests")]
    pub saturation_requests: f64,
    /// The header that names a session for `session` balancing (else the body's `user`).
    #[serde(default = "default_session_header")]
    pub session_header: String,
}

fn default_chunk_chars() -> usize {
    256
}
fn default_match_weight() -> f64 {
    1.0
}
fn default_load_weight() -> f64 {
    0.5
}
fn default_spill_load() -> f64 {
    0.9
}
fn default_saturation_requests() -> f64 {
    8.0
}
fn default_session_header() -> String {
    "x-session-id".into()
}

impl Default for AffinitySettings {
    fn default() -> Self {
        AffinitySettings {
            chunk_chars: default_chunk_chars(),
            match_weight: default_match_weight(),
            load_weight: default_load_weight(),
            spill_load: default_spill_load(),
            saturation_requests: default_saturation_requests(),
            session_header: default_session_header(),
        }
    }
}

impl AffinitySettings {
    fn problem(&self) -> Option<&'static str> {
        let finite_non_negative = |x: f64| x.is_finite() && x >= 0.0;
        if self.chunk_chars == 0 {
            return Some("chunk_chars must be at least 1");
        }
        if !finite_non_negative(self.match_weight) || !finite_non_negative(self.load_weight) {
            return Some("match_weight and load_weight must be non-negative numbers");
        }
        if !(self.spill_load > 0.0 && self.spill_load.is_finite()) || !(self.saturation_requests >= 1.0 && self.saturation_requests.is_finite()) {
            return Some("spill_load must be positive and saturation_requests at least 1");
        }
        if axum::http::HeaderName::from_bytes(self.session_header.as_bytes()).is_err() {
            return Some("session_header is not a valid header name");
        }
        None
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Route {
    pub provider: String,
    /// The model name the backend knows.
    pub model: String,
    #[serde(default = "default_weight")]
    pub weight: f64,
    /// Routes are tried by increasing order; equal orders share the load [default: position].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<u32>,
}

fn default_weight() -> f64 {
    1.0
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelMapping {
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    pub routes: Vec<Route>,
    /// Public names tried, in order, when every route of this one fails.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fallbacks: Vec<String>,
    /// Public name tried when a backend says the prompt is too long.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_window_fallback: Option<String>,
    #[serde(default)]
    pub balancing: Balancing,
    #[serde(default)]
    pub affinity: AffinitySettings,
}

impl ModelMapping {
    /// The routes with their effective `order` (default: position), by increasing order.
    pub fn ordered_routes(&self) -> Vec<(u32, &Route)> {
        let mut routes: Vec<(u32, &Route)> = self.routes.iter().enumerate().map(|(i, r)| (r.order.unwrap_or(i as u32), r)).collect();
        routes.sort_by_key(|(order, _)| *order);
        routes
    }

    /// Whether two routes have the same `order` (so that balancing has a group to work on).
    fn has_shared_order(&self) -> bool {
        self.ordered_routes().windows(2).any(|pair| pair[0].0 == pair[1].0)
    }
}

fn balancing_name(balancing: Balancing) -> String {
    serde_json::to_value(balancing).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MappingsFile {
    pub models: Vec<ModelMapping>,
    /// The bound on the cache-aware prefix index (chunks remembered, all models together).
    #[serde(default = "default_prefix_index_entries")]
    pub prefix_index_entries: usize,
}

fn default_prefix_index_entries() -> usize {
    MappingsFile::DEFAULT_PREFIX_INDEX_ENTRIES
}

impl MappingsFile {
    pub const DEFAULT_PREFIX_INDEX_ENTRIES: usize = 200_000;
}

/// Both files, checked against each other.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayConfig {
    pub dir: PathBuf,
    pub providers: ProvidersFile,
    pub mappings: MappingsFile,
}

/// A configuration fault: file, line (when known) and what is wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}{}: {message}", file.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub message: String,
}

impl GatewayConfig {
    /// Loads and cross-checks `providers.yaml` and `model-mappings.yaml` in `dir`.
    pub fn load(dir: &Path) -> Result<Self, ConfigError> {
        let (providers, p_text): (ProvidersFile, String) = parse_file(&dir.join(PROVIDERS_FILE))?;
        let (mappings, m_text): (MappingsFile, String) = parse_file(&dir.join(MAPPINGS_FILE))?;
        let config = GatewayConfig { dir: dir.to_path_buf(), providers, mappings };
        config.validate(&p_text, &m_text)?;
        Ok(config)
    }

    /// Cross-file rules; `*_text` are the sources, for line numbers.
    pub fn validate(&self, providers_text: &str, mappings_text: &str) -> Result<(), ConfigError> {
        let p_err = |needle: &str, message: String| self.error(PROVIDERS_FILE, providers_text, needle, message);
        let m_err = |needle: &str, message: String| self.error(MAPPINGS_FILE, mappings_text, needle, message);
        let mut provider_names = HashSet::new();
        for (i, p) in self.providers.providers.iter().enumerate() {
            if !provider_names.insert(p.name.as_str()) {
                return Err(p_err(&p.name, format!("providers[{i}].name: `{}` is defined twice", p.name)));
            }
            if !(p.base_url.starts_with("http://") || p.base_url.starts_with("https://")) {
                return Err(p_err(&p.base_url, format!("providers[{i}].base_url: `{}` is not an http(s) URL", p.base_url)));
            }
            if p.timeout_s <= 0.0 || p.connect_timeout_s <= 0.0 || p.first_token_timeout_s <= 0.0 || p.max_concurrent == 0 || !(p.metrics_interval_s > 0.0) {
                return Err(p_err(&p.name, format!("providers[{i}]: timeouts, max_concurrent and metrics_interval_s must be positive")));
            }
        }
        let mut public = HashMap::new();
        for (i, m) in self.mappings.models.iter().enumerate() {
            for name in std::iter::once(&m.name).chain(&m.aliases) {
                if public.insert(name.as_str(), i).is_some() {
                    return Err(m_err(name, format!("models[{i}]: the name `{name}` is used twice")));
                }
            }
            if let Some(problem) = m.affinity.problem() {
                return Err(m_err(&m.name, format!("models[{i}].affinity: {problem}")));
            }
            if matches!(m.balancing, Balancing::CacheAware | Balancing::Session) && !m.has_shared_order() {
                let message = format!("models[{i}].balancing: `{}` balances routes of equal `order`, and no two routes of `{}` share one", balancing_name(m.balancing), m.name);
                return Err(m_err(&m.name, message));
            }
            if m.routes.is_empty() {
                return Err(m_err(&m.name, format!("models[{i}].routes: `{}` has no routes", m.name)));
            }
            for (j, r) in m.routes.iter().enumerate() {
                if !provider_names.contains(r.provider.as_str()) {
                    let message = format!("models[{i}].routes[{j}].provider: `{}` is not defined in {PROVIDERS_FILE}", r.provider);
                    return Err(m_err(&format!("provider: {}", r.provider), message));
                }
                if !(r.weight > 0.0 && r.weight.is_finite()) {
                    return Err(m_err(&r.model, format!("models[{i}].routes[{j}].weight must be a positive number")));
                }
            }
        }
        for (i, m) in self.mappings.models.iter().enumerate() {
            for (field, target) in m.fallbacks.iter().map(|f| ("fallbacks", f)).chain(m.context_window_fallback.iter().map(|f| ("context_window_fallback", f))) {
                if !public.contains_key(target.as_str()) {
                    return Err(m_err(target, format!("models[{i}].{field}: `{target}` is not a model name")));
                }
            }
        }
        if let Some(cycle) = self.fallback_cycle(&public) {
            return Err(m_err(&cycle[0], format!("fallback cycle: {}", cycle.join(" -> "))));
        }
        Ok(())
    }

    /// A chain of fallbacks (either kind) that returns to where it started.
    fn fallback_cycle(&self, public: &HashMap<&str, usize>) -> Option<Vec<String>> {
        let models = &self.mappings.models;
        let next = |i: usize| -> Vec<usize> {
            let m = &models[i];
            m.fallbacks.iter().chain(&m.context_window_fallback).filter_map(|n| public.get(n.as_str()).copied()).collect()
        };
        // depth-first search with colours: 0 new, 1 on the path, 2 done
        fn visit(i: usize, next: &dyn Fn(usize) -> Vec<usize>, colour: &mut [u8], path: &mut Vec<usize>) -> Option<Vec<usize>> {
            colour[i] = 1;
            path.push(i);
            for j in next(i) {
                if colour[j] == 1 {
                    let start = path.iter().position(|&p| p == j).unwrap_or(0);
                    let mut cycle = path[start..].to_vec();
                    cycle.push(j);
                    return Some(cycle);
                }
                if colour[j] == 0 {
                    if let Some(c) = visit(j, next, colour, path) {
                        return Some(c);
                    }
                }
            }
            path.pop();
            colour[i] = 2;
            None
        }
        let mut colour = vec![0u8; models.len()];
        (0..models.len()).find_map(|i| {
            if colour[i] != 0 {
                return None;
            }
            visit(i, &next, &mut colour, &mut Vec::new()).map(|c| c.into_iter().map(|k| models[k].name.clone()).collect())
        })
    }

    fn error(&self, file: &str, text: &str, needle: &str, message: String) -> ConfigError {
        let line = text.lines().position(|l| l.contains(needle)).map(|i| i + 1);
        ConfigError { file: self.dir.join(file), line, message }
    }

    /// The mapping a public name or alias stands for.
    pub fn model(&self, name: &str) -> Option<&ModelMapping> {
        self.mappings.models.iter().find(|m| m.name == name || m.aliases.iter().any(|a| a == name))
    }

    pub fn provider(&self, name: &str) -> Option<&Provider> {
        self.providers.providers.iter().find(|p| p.name == name)
    }
}

/// JSON Schemas of `providers.yaml` and `model-mappings.yaml`, generated from the types the
/// loader deserializes into (so the schema editors check against and the validator agree).
pub fn schemas() -> [(&'static str, String); 2] {
    let text = |schema: schemars::Schema| serde_json::to_string_pretty(&schema).unwrap_or_default() + "\n";
    [
        ("providers.schema.json", text(schemars::schema_for!(ProvidersFile))),
        ("model-mappings.schema.json", text(schemars::schema_for!(MappingsFile))),
    ]
}

/// Reads and deserializes one YAML file; errors carry the line serde reports.
fn parse_file<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<(T, String), ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError { file: path.to_path_buf(), line: None, message: format!("cannot read: {e}") })?;
    let value = serde_yaml_ng::from_str(&text).map_err(|e| ConfigError {
        file: path.to_path_buf(),
        line: e.location().map(|l| l.line()),
        message: e.to_string(),
    })?;
    Ok((value, text))
}
