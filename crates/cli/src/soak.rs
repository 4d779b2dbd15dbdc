//! `hearth soak`: a long mixed load against a running server, with its memory, open files, KV
//! cache and latency sampled and judged for upward trends; writes the samples and their chart.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use hearth_bench::soak::{run_soak, Sample, SoakConfig, SoakReport};

#[derive(Args, Debug)]
pub struct SoakArgs {
    /// The server's base URL
    #[arg(long, default_value = "http://127.0.0.1:8001")]
    pub url: String,
    /// Model name to send
    #[arg(long, default_value = "default")]
    pub model: String,
    /// API key, if the server wants one
    #[arg(long, env = "HEARTH_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// The server's process id, for its memory and open files (read from /proc)
    #[arg(long)]
    pub pid: Option<u32>,
    /// How long to run the load, in seconds
    #[arg(long, default_value = "3600", value_parser = crate::common::parse_seconds)]
    pub duration: Duration,
    /// Seconds between samples
    #[arg(long, default_value = "5", value_parser = crate::common::parse_seconds)]
    pub sample_every: Duration,
    /// Clients sending requests one after another
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Report the latency trend without judging it (for machines shared with other work,
    /// whose load moves latency)
    #[arg(long)]
    pub no_latency_verdict: bool,
    /// Folder for soak.csv and soak.svg
    #[arg(long, default_value = "soak")]
    pub out: PathBuf,
}

pub fn run(args: SoakArgs) -> anyhow::Result<()> {
    let config = SoakConfig {
        base_url: args.url.clone(),
        model: args.model.clone(),
        api_key: args.api_key.clone(),
        pid: args.pid,
        duration: args.duration,
        sample_every: args.sample_every,
        concurrency: args.concurrency,
        seed: args.seed,
        judge_latency: !args.no_latency_verdict,
    };
    eprintln!("soak: {} clients for {:?} against {}, a sample every {:?}", config.concurrency, config.duration, config.base_url, config.sample_every);
    let runtime = crate::common::runtime(2)?;
    let report = runtime.block_on(run_soak(&config, |s| eprintln!("{}", sample_line(s))));
    std::fs::create_dir_all(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
    write_csv(&args.out.join("soak.csv"), &report.samples)?;
    let title = format!("hearth soak: {} clients, {:.0} min", config.concurrency, config.duration.as_secs_f64() / 60.0);
    let chart = args.out.join("soak.svg");
    std::fs::write(&chart, hearth_bench::plot::soak_svg(&title, &report.samples)).with_context(|| format!("cannot write {}", chart.display()))?;
    print_report(&report);
    println!("samples: {}, chart: {}", args.out.join("soak.csv").display(), chart.display());
    if !report.verdict.passed() {
        bail!("the soak found a trend or a wrong answer (see above)");
    }
    Ok(())
}

fn sample_line(s: &Sample) -> String {
    let show = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
    format!(
        "{:>7.0} s  requests {:>6}  rss {:>8} MiB  files {:>5}  kv {:>5}  running {:>3}  p50 {:>8} ms",
        s.at_s, s.requests, show(s.rss_mib), show(s.open_files), show(s.kv_usage), show(s.running), show(s.latency_p50_ms)
    )
}

fn write_csv(path: &std::path::Path, samples: &[Sample]) -> anyhow::Result<()> {
    let mut file = std::fs::File::create(path).with_context(|| format!("cannot write {}", path.display()))?;
    writeln!(file, "seconds,requests,rss_mib,open_files,kv_usage,running,latency_p50_ms")?;
    let cell = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.3}"));
    for s in samples {
        writeln!(file, "{:.1},{},{},{},{},{},{}", s.at_s, s.requests, cell(s.rss_mib), cell(s.open_files), cell(s.kv_usage), cell(s.running), cell(s.latency_p50_ms))?;
    }
    Ok(())
}

fn print_report(report: &SoakReport) {
    println!("requests answered as due: {}, otherwise: {}", report.as_expected, report.unexpected);
    for example in &report.unexpected_examples {
        println!("  {example}");
    }
    println!("{:<40} {:>10} {:>10} {:>10}  verdict", "", "early", "late", "limit");
    for check in &report.verdict.checks {
        let verdict = if check.ok { "ok" } else { "FAIL" };
        println!("{:<40} {:>10.2} {:>10.2} {:>10.2}  {verdict}", check.what, check.early, check.late, check.limit);
    }
    for skipped in &report.verdict.skipped {
        println!("not judged: {skipped}");
    }
}
