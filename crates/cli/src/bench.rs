//! `hearth bench URL`: the serving benchmark against any OpenAI-compatible server.

use std::io::Write;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use hearth_bench::spec_decode::SpecDecodeCounts;
use hearth_bench::{load_jsonl, random_token_prompts, run_benchmark, BenchConfig, BenchPrompt, BenchReport, Load, StreamingClient};

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Base URL of the server, e.g. http://127.0.0.1:8001
    pub url: String,
    /// Model name to request [default: the first one the server lists]
    #[arg(long)]
    pub model: Option<String>,
    /// API key sent as a bearer token
    #[arg(long, env = "HEARTH_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Requests kept in flight; a comma-separated list runs a sweep (e.g. 1,4,16)
    #[arg(long, visible_alias = "sweep", value_delimiter = ',', default_value = "1")]
    pub concurrency: Vec<usize>,
    /// Poisson arrivals at this rate (requests/s) instead of a fixed concurrency
    #[arg(long, conflicts_with = "concurrency")]
    pub request_rate: Option<f64>,
    /// Requests per run
    #[arg(long, default_value_t = 32)]
    pub num_prompts: usize,
    /// `random` (token ids from --seed) or a JSONL file of `{"prompt": "text" | [ids], "output_len": N}`
    #[arg(long, default_value = "random")]
    pub dataset: String,
    /// Prompt length in tokens (random token ids from a seed)
    #[arg(long, default_value_t = 128)]
    pub input_len: usize,
    /// Tokens generated per request (end-of-sequence is ignored)
    #[arg(long, default_value_t = 128)]
    pub output_len: usize,
    /// Seed of the prompts and arrival times
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Stop starting requests after this many seconds
    #[arg(long)]
    pub duration: Option<u64>,
    /// Per-request timeout in seconds
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,
    /// Also write the reports as JSON to this file
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
    /// Draw throughput and latency percentiles across the runs as an SVG chart
    #[arg(long)]
    pub plot: Option<std::path::PathBuf>,
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    let runtime = crate::common::runtime(2)?;
    let reports = runtime.block_on(run_all(&args))?;
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&reports)?).with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(path) = &args.plot {
        let (x_title, levels): (&str, Vec<String>) = match args.request_rate {
            Some(rate) => ("request rate", vec![format!("{rate} req/s")]),
            None => ("concurrency", args.concurrency.iter().map(|c| c.to_string()).collect()),
        };
        let title = format!("{}: {} prompts, input {} / output {} tokens", args.url, args.num_prompts, args.input_len, args.output_len);
        std::fs::write(path, hearth_bench::plot::sweep_svg(&title, x_title, &levels, &reports))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if reports.iter().any(|r| r.failures > 0) {
        bail!("some requests failed");
    }
    Ok(())
}

async fn run_all(args: &BenchArgs) -> anyhow::Result<Vec<BenchReport>> {
    let model = match &args.model {
        Some(m) => m.clone(),
        None => first_model(&args.url, args.api_key.as_deref()).await?,
    };
    let client = StreamingClient::new(&args.url, &model, args.api_key.clone(), Duration::from_secs(args.timeout));
    let loads: Vec<Load> = match args.request_rate {
        Some(rate) => vec![Load::Rate { per_second: rate, max_in_flight: None }],
        None => args.concurrency.iter().map(|&c| Load::Concurrency(c)).collect(),
    };
    let mut reports = Vec::new();
    for load in loads {
        let prompts = prompts(args)?;
        let config = BenchConfig { load, duration: args.duration.map(Duration::from_secs), seed: args.seed };
        let label = match load {
            Load::Concurrency(c) => format!("{model}, concurrency {c}"),
            Load::Rate { per_second, .. } => format!("{model}, {per_second} requests/s"),
        };
        let before = spec_decode_counts(&args.url, args.api_key.as_deref()).await;
        let mut report = run_benchmark(&client, prompts, &config, label, progress_bar).await;
        let after = spec_decode_counts(&args.url, args.api_key.as_deref()).await;
        report.spec_decode = after.zip(before).map(|(after, before)| after.since(&before));
        eprintln!();
        println!("{report}");
        reports.push(report);
    }
    Ok(reports)
}

fn prompts(args: &BenchArgs) -> anyhow::Result<Vec<BenchPrompt>> {
    Ok(match args.dataset.as_str() {
        "random" => random_token_prompts(args.num_prompts, args.input_len, args.output_len, args.seed),
        path => load_jsonl(std::path::Path::new(path), args.num_prompts, args.output_len)?,
    })
}

/// `[########------------]  12/32 requests` on one terminal line.
fn progress_bar(done: usize, total: usize) {
    const WIDTH: usize = 30;
    let filled = WIDTH * done / total.max(1);
    eprint!("\r[{}{}] {done:>4}/{total} requests", "#".repeat(filled), "-".repeat(WIDTH - filled));
    let _ = std::io::stderr().flush();
}

/// The server's spec-decode counters from its `/metrics`, if it has them.
async fn spec_decode_counts(url: &str, api_key: Option<&str>) -> Option<SpecDecodeCounts> {
    let mut request = reqwest::Client::new().get(format!("{}/metrics", url.trim_end_matches('/')));
    if let Some(key) = api_key {
        request = request.bearer_auth(key);
    }
    let page = request.timeout(Duration::from_secs(5)).send().await.ok()?.error_for_status().ok()?.text().await.ok()?;
    SpecDecodeCounts::parse(&page)
}

async fn first_model(url: &str, api_key: Option<&str>) -> anyhow::Result<String> {
    let mut request = reqwest::Client::new().get(format!("{}/v1/models", url.trim_end_matches('/')));
    if let Some(key) = api_key {
        request = request.bearer_auth(key);
    }
    let list: hearth_protocol::ModelList = request.send().await?.error_for_status()?.json().await.context("bad /v1/models answer")?;
    list.data.first().map(|m| m.id.clone()).context("the server lists no models")
}
