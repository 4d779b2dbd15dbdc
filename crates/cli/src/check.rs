//! `hearth check URL`: the acceptance suite against any OpenAI-compatible server, with a report.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use hearth_check::{run_suite, CheckConfig, Status};

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Base URL of the server, e.g. http://127.0.0.1:8001
    pub url: String,
    /// Model to test [default: the first one the server lists]
    #[arg(long)]
    pub model: Option<String>,
    /// API key sent as a bearer token
    #[arg(long, env = "HEARTH_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Write the Markdown report here
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Print the report as JSON on stdout instead of Markdown
    #[arg(long)]
    pub json: bool,
    /// Per-request timeout in seconds
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
    /// Python interpreter that runs the generated code (sandboxed: isolated mode, empty
    /// environment, CPU, memory and time limits)
    #[arg(long, default_value = "python3")]
    pub python: String,
    /// Share of the code tasks that must pass (pass@1)
    #[arg(long, default_value_t = 0.6)]
    pub min_pass_rate: f64,
    /// Skip the performance probe
    #[arg(long)]
    pub skip_performance: bool,
}

pub fn run(args: CheckArgs) -> anyhow::Result<()> {
    let config = CheckConfig {
        url: args.url.clone(),
        model: args.model.clone(),
        api_key: args.api_key.clone(),
        timeout: Duration::from_secs(args.timeout),
        python: args.python.clone(),
        min_pass_rate: args.min_pass_rate,
        skip_performance: args.skip_performance,
    };
    let runtime = crate::common::runtime(2)?;
    let report = runtime.block_on(run_suite(&config, |number, result| {
        let status = match (result.status, result.required) {
            (Status::Pass, _) => "PASS",
            (Status::Fail, true) => "FAIL",
            (Status::Fail, false) => "WARN",
        };
        eprintln!("[{number}] {:<32} {status} ({:.0} ms)", result.name, result.elapsed_ms);
        let _ = std::io::stderr().flush();
    }));
    let markdown = report.to_markdown();
    if let Some(path) = &args.report {
        std::fs::write(path, &markdown).with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("report written to {}", path.display());
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else if args.report.is_none() {
        println!("{markdown}");
    }
    eprintln!("{}", report.verdict());
    if !report.passed() {
        std::process::exit(1);
    }
    Ok(())
}
