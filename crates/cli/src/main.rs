//! The `hearth` binary: subcommands wired to the library crates.

mod bench_engine;
mod bench_model;
mod chat;
mod common;
mod generate;

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
    /// Measure the batching engine under concurrent requests and the prefix cache.
    BenchEngine(bench_engine::BenchEngineArgs),
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("HEARTH_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Generate(args) => generate::run(args),
        Command::Chat(args) => chat::run(args),
        Command::BenchModel(args) => bench_model::run(args),
        Command::BenchEngine(args) => bench_engine::run(args),
    }
}
