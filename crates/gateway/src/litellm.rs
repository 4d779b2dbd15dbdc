//! Moving between hearth's gateway files and LiteLLM's proxy `config.yaml`: `model_list`
//! deployments (one per route, `order` keeping the route order), `router_settings` with
//! fallbacks, context-window fallbacks, aliases and the routing strategy. Provider names
//! travel in `model_info.hearth_provider` so that a round trip keeps them.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::config::{
    Balancing, BreakerSettings, GatewayConfig, HealthProbe, MappingsFile, ModelMapping, Provider, ProviderKind,
    ProvidersFile, Route,
};

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("LiteLLM config: {0}")]
pub struct LitellmError(pub String);

fn prefix(kind: ProviderKind) -> &'static str {
    match kind {
        ProviderKind::Ollama => "ollama_chat/",
        ProviderKind::Openai | ProviderKind::Hearth => "openai/",
    }
}

/// LiteLLM's `config.yaml` for this gateway configuration (as YAML text).
pub fn export(config: &GatewayConfig) -> Result<String, LitellmError> {
    let mut model_list = Vec::new();
    let (mut fallbacks, mut context, mut aliases) = (Vec::new(), Vec::new(), Map::new());
    for m in &config.mappings.models {
        for (i, r) in m.routes.iter().enumerate() {
            let p = config.provider(&r.provider).ok_or_else(|| LitellmError(format!("unknown provider {}", r.provider)))?;
            let mut params = json!({
                "model": format!("{}{}", prefix(p.kind), r.model),
                "api_base": p.base_url,
                "timeout": p.timeout_s,
                "max_parallel_requests": p.max_concurrent,
                "order": r.order.unwrap_or(i as u32) + 1,
            });
            if let Some(env) = &p.api_key_env {
                params["api_key"] = json!(format!("os.environ/{env}"));
            }
            if r.weight != 1.0 {
                params["weight"] = json!(r.weight);
            }
            let info = json!({"hearth_provider": p.name, "hearth_kind": p.kind});
            model_list.push(json!({"model_name": m.name, "litellm_params": params, "model_info": info}));
        }
        if !m.fallbacks.is_empty() {
            fallbacks.push(json!({ m.name.clone(): m.fallbacks }));
        }
        if let Some(c) = &m.context_window_fallback {
            context.push(json!({ m.name.clone(): [c] }));
        }
        for a in &m.aliases {
            aliases.insert(a.clone(), json!(m.name));
        }
    }
    let weighted = config.mappings.models.iter().any(|m| m.balancing == Balancing::Weighted);
    let strategy = if weighted { "simple-shuffle" } else { "least-busy" };
    let doc = json!({
        "model_list": model_list,
        "router_settings": {"routing_strategy": strategy, "fallbacks": fallbacks, "context_window_fallbacks": context,
            "model_group_alias": aliases, "allowed_fails": config.providers.circuit_breaker.failures,
            "cooldown_time": config.providers.circuit_breaker.cooldown_s},
    });
    serde_yaml_ng::to_string(&doc).map_err(|e| LitellmError(e.to_string()))
}

/// Gateway files from a LiteLLM `config.yaml` text.
pub fn import(text: &str) -> Result<(ProvidersFile, MappingsFile), LitellmError> {
    let doc: Value = serde_yaml_ng::from_str(text).map_err(|e| LitellmError(e.to_string()))?;
    let list = doc["model_list"].as_array().ok_or_else(|| LitellmError("`model_list` is missing".into()))?;
    let mut providers: Vec<Provider> = Vec::new();
    let mut models: Vec<ModelMapping> = Vec::new();
    for (i, entry) in list.iter().enumerate() {
        let name = entry["model_name"].as_str().ok_or_else(|| LitellmError(format!("model_list[{i}].model_name is missing")))?;
        let (provider, upstream) = provider_of(i, entry)?;
        let provider_name = match providers.iter().find(|p| same_backend(p, &provider)) {
            Some(p) => p.name.clone(),
            None => {
                let unique = unique_name(&providers, &provider.name);
                providers.push(Provider { name: unique.clone(), ..provider });
                unique
            }
        };
        let params = &entry["litellm_params"];
        let route = Route {
            provider: provider_name,
            model: upstream,
            weight: params["weight"].as_f64().unwrap_or(1.0),
            order: params["order"].as_u64().map(|o| o.saturating_sub(1) as u32),
        };
        match models.iter_mut().find(|m| m.name == name) {
            Some(m) => m.routes.push(route),
            None => models.push(ModelMapping {
                name: name.to_string(),
                aliases: Vec::new(),
                routes: vec![route],
                fallbacks: Vec::new(),
                context_window_fallback: None,
                balancing: Balancing::default(),
                affinity: Default::default(),
            }),
        }
    }
    apply_router_settings(&doc["router_settings"], &mut models)?;
    let breaker = BreakerSettings {
        failures: doc["router_settings"]["allowed_fails"].as_u64().map(|n| n as usize).unwrap_or(BreakerSettings::default().failures),
        cooldown_s: doc["router_settings"]["cooldown_time"].as_f64().unwrap_or(BreakerSettings::default().cooldown_s),
        ..Default::default()
    };
    Ok((ProvidersFile { providers, circuit_breaker: breaker, max_attempts: 4 }, MappingsFile { models, prefix_index_entries: MappingsFile::DEFAULT_PREFIX_INDEX_ENTRIES }))
}

/// The provider one deployment describes, and the upstream model name.
fn provider_of(i: usize, entry: &Value) -> Result<(Provider, String), LitellmError> {
    let params = &entry["litellm_params"];
    let model = params["model"].as_str().ok_or_else(|| LitellmError(format!("model_list[{i}].litellm_params.model is missing")))?;
    let (kind, upstream) = match model.split_once('/') {
        Some(("openai" | "hosted_vllm", rest)) => (ProviderKind::Openai, rest),
        Some(("ollama" | "ollama_chat", rest)) => (ProviderKind::Ollama, rest),
        _ => return Err(LitellmError(format!("model_list[{i}]: `{model}` is not an openai/, hosted_vllm/, ollama/ or ollama_chat/ model"))),
    };
    let kind = match entry["model_info"]["hearth_kind"].as_str() {
        Some("hearth") => ProviderKind::Hearth,
        _ => kind,
    };
    let default_base = if kind == ProviderKind::Ollama { "http://127.0.0.1:11434" } else { "http://127.0.0.1:8000/v1" };
    let base_url = params["api_base"].as_str().unwrap_or(default_base).to_string();
    let name = match entry["model_info"]["hearth_provider"].as_str() {
        Some(n) => n.to_string(),
        None => format!("{}-{}", if kind == ProviderKind::Ollama { "ollama" } else { "openai" }, host_of(&base_url)),
    };
    let provider = Provider {
        name,
        kind,
        base_url,
        api_key_env: params["api_key"].as_str().and_then(|k| k.strip_prefix("os.environ/")).map(str::to_string),
        timeout_s: params["timeout"].as_f64().unwrap_or(600.0),
        connect_timeout_s: 5.0,
        first_token_timeout_s: 120.0,
        max_concurrent: params["max_parallel_requests"].as_u64().map(|n| n as usize).unwrap_or(256),
        health: HealthProbe::default(),
        metrics_interval_s: Provider::DEFAULT_METRICS_INTERVAL_S,
    };
    Ok((provider, upstream.to_string()))
}

fn host_of(url: &str) -> String {
    let rest = url.split("://").nth(1).unwrap_or(url);
    rest.split('/').next().unwrap_or(rest).replace(':', "-")
}

fn same_backend(a: &Provider, b: &Provider) -> bool {
    a.name == b.name && a.kind == b.kind && a.base_url == b.base_url && a.api_key_env == b.api_key_env
}

fn unique_name(providers: &[Provider], wanted: &str) -> String {
    let mut name = wanted.to_string();
    let mut n = 2;
    while providers.iter().any(|p| p.name == name) {
        name = format!("{wanted}-{n}");
        n += 1;
    }
    name
}

fn apply_router_settings(settings: &Value, models: &mut [ModelMapping]) -> Result<(), LitellmError> {
    let lists = |key: &str| -> BTreeMap<String, Vec<String>> {
        let mut out = BTreeMap::new();
        for item in settings[key].as_array().into_iter().flatten() {
            for (name, targets) in item.as_object().into_iter().flatten() {
                let targets = targets.as_array().into_iter().flatten().filter_map(|t| t.as_str().map(str::to_string)).collect();
                out.insert(name.clone(), targets);
            }
        }
        out
    };
    let (fallbacks, context) = (lists("fallbacks"), lists("context_window_fallbacks"));
    let balancing = match settings["routing_strategy"].as_str() {
        Some("simple-shuffle") => Balancing::Weighted,
        _ => Balancing::LeastOutstanding,
    };
    for m in models.iter_mut() {
        m.balancing = balancing;
        m.fallbacks = fallbacks.get(&m.name).cloned().unwrap_or_default();
        m.context_window_fallback = context.get(&m.name).and_then(|c| c.first().cloned());
    }
    for (alias, target) in settings["model_group_alias"].as_object().into_iter().flatten() {
        let target = target.as_str().or_else(|| target["model"].as_str()).unwrap_or_default();
        let m = models.iter_mut().find(|m| m.name == target).ok_or_else(|| LitellmError(format!("alias `{alias}` names an unknown model `{target}`")))?;
        m.aliases.push(alias.clone());
    }
    Ok(())
}
