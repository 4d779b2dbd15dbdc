//! The `hearth` binary: subcommands wired to the library crates.

mod bench;
mod bench_engine;
mod bench_grammar;
mod bench_memory;
mod bench_model;
mod bench_replicas;
mod bench_spec;
mod chat;
mod check;
mod common;
mod convert;
mod default_model;
mod download;
mod quantize;
mod gateway;
mod generate;
mod serve;
mod soak;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "hearth", version, about = "Serve, chat with and benchmark LLMs on CPUs")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate a completion for one prompt, streaming tokens, then print speeds.
    Generate(generate::GenerateArgs),
    /// Chat with a model in the terminal (default: Qwen2.5-Coder-1.5B-Instruct).
    Chat(chat::ChatArgs),
    /// Measure prompt-processing and decode speed of a model (like llama-bench).
    BenchModel(bench_model::BenchModelArgs),
    /// Measure memory read bandwidth, the quantized products decode runs, and a model's decode as a share of it.
    BenchMemory(bench_memory::BenchMemoryArgs),
    /// Measure the batching engine under concurrent requests and the prefix cache.
    BenchEngine(bench_engine::BenchEngineArgs),
    /// Speculative decoding on and off side by side: code edits and open-ended answers, alone and concurrent.
    BenchSpec(bench_spec::BenchSpecArgs),
    /// Measure constrained decoding: grammar compile times, decode with and without a JSON Schema, mask time.
    BenchGrammar(bench_grammar::BenchGrammarArgs),
    /// Replicas behind the gateway on a shared-prefix workload: round-robin against cache-aware routing.
    BenchReplicas(bench_replicas::BenchReplicasArgs),
    /// Benchmark any OpenAI-compatible server: throughput, TTFT, TPOT, ITL (like `vllm bench serve`).
    Bench(bench::BenchArgs),
    /// Run the acceptance suite against any OpenAI-compatible server and write a report.
    Check(check::CheckArgs),
    /// One OpenAI endpoint over many backends: routing, fallback, keys (LiteLLM's role).
    Gateway(gateway::GatewayArgs),
    /// Write a GGUF model as a Hugging Face directory in bf16 (dequantized weights).
    Convert(convert::ConvertArgs),
    /// Download a model directory into the Hugging Face cache
    Download(download::DownloadArgs),
    /// Write an AWQ or GPTQ int4 checkpoint from a bf16/f16/f32 model directory
    Quantize(quantize::QuantizeArgs),
    /// Serve a model over an OpenAI-compatible HTTP API (like `vllm serve`).
    Serve(serve::ServeArgs),
    /// Drive a running server with a long mixed load and judge its memory, files, KV cache and latency for trends.
    Soak(soak::SoakArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let json_logs = matches!(&cli.command, Command::Serve(args) if args.log_format == serve::LogFormat::Json);
    init_logging(json_logs);
    match cli.command {
        Command::Generate(args) => generate::run(args),
        Command::Chat(args) => chat::run(args),
        Command::BenchModel(args) => bench_model::run(args),
        Command::BenchMemory(args) => bench_memory::run(args),
        Command::BenchEngine(args) => bench_engine::run(args),
        Command::BenchSpec(args) => bench_spec::run(args),
        Command::BenchGrammar(args) => bench_grammar::run(args),
        Command::BenchReplicas(args) => bench_replicas::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Check(args) => check::run(args),
        Command::Gateway(args) => gateway::run(args),
        Command::Convert(args) => convert::run(args),
        Command::Download(args) => download::run(args),
        Command::Quantize(args) => quantize::run(args),
        Command::Soak(args) => soak::run(args),
    }
}

/// Logs to stderr at the level in `HEARTH_LOG` (default info), as text or one JSON object a line.
fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("HEARTH_LOG").unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
