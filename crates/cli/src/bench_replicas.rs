//! `hearth bench-replicas`: several hearth replicas on 127.0.0.1 behind the gateway, and one
//! shared-prefix workload (G long system prompts, many short user turns) sent through it at a
//! fixed offered load once per balancing policy, each time on fresh replicas: TTFT,
//! throughput, errors, and each replica's requests and prefix-cache hit rate.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use hearth_bench::client::StreamingClient;
use hearth_bench::dataset::{BenchPrompt, PromptBody, TOKEN_RANGE};
use hearth_bench::run::{run_benchmark, BenchConfig, Load};
use hearth_bench::stats::BenchReport;
use hearth_engine::{EngineConfig, ModelBundle};
use hearth_gateway::config::ProviderKind;
use hearth_gateway::loadtest::{replicas_config, serve_on_random_port};
use hearth_protocol::prometheus;
use hearth_server::{ServedModel, Server, ServerConfig};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::common::{EngineArgs, ModelArgs};
use crate::gateway::BalancingArg;

#[derive(Args, Debug)]
pub struct BenchReplicasArgs {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    engine: EngineArgs,
    /// hearth replicas behind the gateway
    #[arg(long, default_value_t = 3)]
    replicas: usize,
    /// Prefix groups: distinct long system prompts
    #[arg(long, default_value_t = 8)]
    groups: usize,
    /// Tokens of each group's shared prefix
    #[arg(long, default_value_t = 1500)]
    prefix_tokens: usize,
    /// Tokens of each request's own user turn after the prefix
    #[arg(long, default_value_t = 32)]
    question_tokens: usize,
    /// Generated tokens per request (end-of-sequence ignored)
    #[arg(long, default_value_t = 16)]
    output_tokens: usize,
    /// Requests per run (groups drawn at random, the same sequence for every policy)
    #[arg(long, default_value_t = 96)]
    requests: usize,
    /// Offered load: Poisson arrivals at this many requests per second
    #[arg(long, default_value_t = 1.0)]
    rate: f64,
    /// Balancing policies to compare, in the order run
    #[arg(long, value_enum, value_delimiter = ',', default_value = "round-robin,cache-aware")]
    policies: Vec<BalancingArg>,
    /// Runs of each policy (alternating)
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Also write the results as JSON here
    #[arg(long)]
    json: Option<PathBuf>,
}

/// One replica's share of a run.
#[derive(Debug, Clone, Serialize)]
struct ReplicaStats {
    requests: f64,
    prefix_hit_rate: f64,
}

#[derive(Debug, Serialize)]
struct PolicyRun {
    policy: String,
    round: usize,
    report: BenchReport,
    replicas: Vec<ReplicaStats>,
}

pub fn run(args: BenchReplicasArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.replicas >= 2 && args.groups >= 1 && args.requests >= 1, "--replicas must be at least 2, --groups and --requests at least 1");
    let bundle = args.model.load()?;
    let path = args.model.path()?;
    let mut engine = args.engine.config();
    if engine.kv_cache_memory.is_none() {
        engine.kv_cache_memory = Some(kv_budget(&args, &bundle, &engine));
    }
    let kv_tokens = engine.kv_cache_memory.unwrap_or(0) / bundle.model.config().kv_bytes_per_token().max(1) as u64;
    println!(
        "{} replicas of {}, KV cache {} MiB each (~{kv_tokens} tokens); {} groups x {}-token prefixes, {}-token turns, {} output tokens; {} requests at {} req/s",
        args.replicas,
        path.display(),
        engine.kv_cache_memory.unwrap_or(0) >> 20,
        args.groups,
        args.prefix_tokens,
        args.question_tokens,
        args.output_tokens,
        args.requests,
        args.rate
    );
    let prompts = workload(&args, bundle.model.config().vocab_size as u32);
    drop(bundle);
    let runtime = crate::common::runtime(2)?;
    let mut runs = Vec::new();
    for round in 0..args.rounds {
        for &policy in &args.policies {
            let run = runtime.block_on(run_policy(&args, &path, &engine, policy, round, prompts.clone()))?;
            runs.push(run);
        }
    }
    print_table(&runs, args.replicas);
    if let Some(out) = &args.json {
        std::fs::write(out, serde_json::to_string_pretty(&runs)?).with_context(|| format!("cannot write {}", out.display()))?;
    }
    Ok(())
}

/// A KV cache per replica that holds its fair share of the groups' prefixes plus two more
/// and the requests in flight: enough when each group stays on one replica, too little for
/// every replica to keep every group (which is the situation routing is for).
fn kv_budget(args: &BenchReplicasArgs, bundle: &ModelBundle, engine: &EngineConfig) -> u64 {
    let per_request = args.prefix_tokens + args.question_tokens + args.output_tokens + engine.block_size;
    let share = args.groups.div_ceil(args.replicas) + 2;
    (share * per_request) as u64 * bundle.model.config().kv_bytes_per_token() as u64
}

/// The requests: each a group's prefix then its own turn, groups drawn at random.
fn workload(args: &BenchReplicasArgs, vocab: u32) -> Vec<BenchPrompt> {
    let range = TOKEN_RANGE.start..TOKEN_RANGE.end.min(vocab);
    let mut rng = StdRng::seed_from_u64(args.seed);
    let prefixes: Vec<Vec<u32>> = (0..args.groups).map(|_| (0..args.prefix_tokens).map(|_| rng.random_range(range.clone())).collect()).collect();
    (0..args.requests)
        .map(|_| {
            let mut ids = prefixes[rng.random_range(0..args.groups)].clone();
            ids.extend((0..args.question_tokens).map(|_| rng.random_range(range.clone())));
            BenchPrompt { prompt: PromptBody::Tokens(ids), output_len: args.output_tokens }
        })
        .collect()
}

/// One hearth replica on a random local port; dropping the sender stops it.
async fn start_replica(path: &PathBuf, engine: &EngineConfig) -> anyhow::Result<(SocketAddr, tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<std::io::Result<()>>)> {
    let config = ServerConfig { served_model_names: vec!["bench".into()], shutdown_grace: Duration::ZERO, ..Default::default() };
    let server = Server::bind("127.0.0.1:0".parse()?, config).await?;
    let addr = server.local_addr()?;
    let (path, engine) = (path.clone(), engine.clone());
    let model = tokio::task::spawn_blocking(move || -> anyhow::Result<ServedModel> {
        let bundle = ModelBundle::load(&path).with_context(|| format!("cannot load model {}", path.display()))?;
        ServedModel::start(bundle, &engine, None).map_err(anyhow::Error::msg)
    })
    .await??;
    server.state().set_model(model);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));
    Ok((addr, stop, task))
}

async fn run_policy(args: &BenchReplicasArgs, path: &PathBuf, engine: &EngineConfig, policy: BalancingArg, round: usize, prompts: Vec<BenchPrompt>) -> anyhow::Result<PolicyRun> {
    let mut replicas = Vec::new();
    for _ in 0..args.replicas {
        replicas.push(start_replica(path, engine).await?);
    }
    let urls: Vec<String> = replicas.iter().map(|(addr, _, _)| format!("http://{addr}/v1")).collect();
    let (gateway, stop_gateway) = serve_on_random_port(replicas_config(&urls, ProviderKind::Hearth, "bench", "bench", policy.policy(), true)).await?;
    let client = StreamingClient::new(&format!("http://{gateway}"), "bench", None, Duration::from_secs(600));
    let config = BenchConfig { load: Load::Rate { per_second: args.rate, max_in_flight: None }, duration: None, seed: args.seed };
    let label = format!("{policy:?}");
    eprintln!("running {label} (round {})", round + 1);
    let report = run_benchmark(&client, prompts, &config, label.clone(), |done, total| {
        if done % 16 == 0 || done == total {
            eprintln!("  {done}/{total}");
        }
    })
    .await;
    let gateway_page = scrape(&format!("http://{gateway}/metrics")).await;
    let mut stats = Vec::new();
    for (i, (addr, _, _)) in replicas.iter().enumerate() {
        let page = scrape(&format!("http://{addr}/metrics")).await;
        let (hits, queries) = (prometheus::first(&page, "vllm:prefix_cache_hits_total"), prometheus::first(&page, "vllm:prefix_cache_queries_total"));
        let name = format!("r{}", i + 1);
        let requests = prometheus::samples(&gateway_page)
            .filter(|s| s.name == "hearth_gateway:requests_total" && s.label("backend").as_deref() == Some(name.as_str()))
            .map(|s| s.value)
            .sum();
        let prefix_hit_rate = match (hits, queries) {
            (Some(h), Some(q)) if q > 0.0 => h / q,
            _ => 0.0,
        };
        stats.push(ReplicaStats { requests, prefix_hit_rate });
    }
    drop(stop_gateway);
    for (_, stop, task) in replicas {
        drop(stop);
        let _ = task.await;
    }
    Ok(PolicyRun { policy: label, round, report, replicas: stats })
}

async fn scrape(url: &str) -> String {
    match reqwest::get(url).await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

fn print_table(runs: &[PolicyRun], replicas: usize) {
    let names: Vec<String> = (1..=replicas).map(|i| format!("r{i}")).collect();
    println!(
        "\n| policy | round | ok | failed | req/s | output tok/s | TTFT p50 ms | TTFT p99 ms | E2E p50 ms | requests {} | prefix hit rate {} |",
        names.join("/"),
        names.join("/")
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for run in runs {
        let r = &run.report;
        let requests: Vec<String> = run.replicas.iter().map(|s| format!("{:.0}", s.requests)).collect();
        let hits: Vec<String> = run.replicas.iter().map(|s| format!("{:.0}%", s.prefix_hit_rate * 100.0)).collect();
        println!(
            "| {} | {} | {} | {} | {:.2} | {:.1} | {:.0} | {:.0} | {:.0} | {} | {} |",
            run.policy,
            run.round + 1,
            r.successes,
            r.failures,
            r.request_throughput,
            r.output_throughput,
            r.ttft_ms.median,
            r.ttft_ms.p99,
            r.e2e_ms.median,
            requests.join("/"),
            hits.join("/")
        );
        for error in r.errors.iter().take(3) {
            println!("|   error: {error} |");
        }
    }
    if let (Some(first), Some(last)) = (runs.first(), runs.iter().rev().find(|r| r.policy != runs[0].policy)) {
        println!(
            "\n{} vs {}: TTFT p50 {:.2}x lower, p99 {:.2}x lower, throughput {:.2}x",
            last.policy,
            first.policy,
            first.report.ttft_ms.median / last.report.ttft_ms.median.max(1e-9),
            first.report.ttft_ms.p99 / last.report.ttft_ms.p99.max(1e-9),
            last.report.request_throughput / first.report.request_throughput.max(1e-9)
        );
    }
}
