//! `hearth check`: an acceptance suite for any OpenAI-compatible endpoint (health, models,
//! chat compliance, streaming, sampling controls, errors, tool calls, structured outputs, the
//! Responses and Messages APIs, coding agents' request shapes, code quality, performance) with a Markdown or JSON report.

pub mod agents;
pub mod codegen;
pub mod compliance;
pub mod http;
pub mod perf;
pub mod protocols;
pub mod report;
pub mod result;
pub mod tools;

use std::time::Duration;

use serde_json::Value;

pub use report::Report;
pub use result::{CheckResult, Status};

use crate::http::Http;

/// What to check and how.
#[derive(Debug, Clone)]
pub struct CheckConfig {
    pub url: String,
    /// None: the first model the server lists.
    pub model: Option<String>,
    pub api_key: Option<String>,
    pub timeout: Duration,
    pub python: String,
    /// pass@1 the code generation check requires.
    pub min_pass_rate: f64,
    pub skip_performance: bool,
}

pub async fn health(http: &Http) -> CheckResult {
    let mut r = CheckResult::new("Health endpoint", true);
    let x = http.get("/health").await;
    if r.record(&x) {
        r.check(format!("GET /health answers 200 (got {})", x.status), x.status == 200);
        r.note(format!("latency {:.1} ms", x.elapsed.as_secs_f64() * 1000.0));
    }
    r
}

/// Lists the models and picks the one to test.
pub async fn models(http: &Http, wanted: Option<&str>) -> (CheckResult, Option<String>) {
    let mut r = CheckResult::new("Model availability", true);
    let x = http.get("/v1/models").await;
    if !r.record(&x) || !r.check(format!("GET /v1/models answers 200 (got {})", x.status), x.status == 200) {
        return (r, None);
    }
    let v = x.json().unwrap_or(Value::Null);
    r.check("object is \"list\"", v["object"] == "list");
    let ids: Vec<String> =
        v["data"].as_array().map(|d| d.iter().filter_map(|m| m["id"].as_str().map(str::to_string)).collect()).unwrap_or_default();
    if !r.check("data lists at least one model with an id", !ids.is_empty()) {
        return (r, None);
    }
    let model = match wanted {
        Some(w) => r.check(format!("`{w}` is listed"), ids.iter().any(|i| i == w)).then(|| w.to_string()),
        None => Some(ids[0].clone()),
    };
    if let Some(m) = &model {
        r.note(format!("testing model `{m}` (listed: {})", ids.join(", ")));
    }
    (r, model)
}

/// Runs the whole suite; `progress` sees each result as it completes.
pub async fn run_suite(config: &CheckConfig, mut progress: impl FnMut(usize, &CheckResult)) -> Report {
    let http = Http::new(&config.url, config.api_key.clone(), config.timeout);
    let mut results = Vec::new();
    let mut push = |r: CheckResult, results: &mut Vec<CheckResult>| {
        progress(results.len() + 1, &r);
        results.push(r);
    };
    push(health(&http).await, &mut results);
    let (listing, model) = models(&http, config.model.as_deref()).await;
    push(listing, &mut results);
    if let Some(model) = &model {
        push(compliance::chat_completion(&http, model).await, &mut results);
        push(compliance::streaming(&http, model).await, &mut results);
        push(compliance::sampling(&http, model).await, &mut results);
        push(compliance::errors(&http, model).await, &mut results);
        push(tools::tool_calls(&http, model).await, &mut results);
        push(tools::structured_output(&http, model).await, &mut results);
        push(protocols::responses(&http, model).await, &mut results);
        push(protocols::messages(&http, model).await, &mut results);
        push(agents::agents(&http, model).await, &mut results);
        push(codegen::code_quality(&http, model, &config.python, config.min_pass_rate).await, &mut results);
        if !config.skip_performance {
            push(perf::performance(&config.url, config.api_key.as_deref(), model).await, &mut results);
        }
    }
    Report { url: config.url.clone(), model, results }
}
