//! `hearth gateway`: the routing proxy over several backends, its config check, LiteLLM
//! export/import, and virtual keys.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use hearth_gateway::config::{Balancing, MAPPINGS_FILE, PROVIDERS_FILE};
use hearth_gateway::keys::DB_FILE;
use hearth_gateway::{litellm, FrontLimits, Gateway, GatewayConfig, KeyPolicy, KeyStore};

#[derive(Args, Debug)]
pub struct GatewayArgs {
    /// Folder with providers.yaml and model-mappings.yaml (and the key database)
    #[arg(long, default_value = "config")]
    pub config: PathBuf,
    /// Address to listen on
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Port to listen on (LiteLLM's proxy default)
    #[arg(long, default_value_t = 4000)]
    pub port: u16,
    /// Validate the configuration and exit
    #[arg(long)]
    pub check_config: bool,
    /// Do not open the key database (no keys, no usage records)
    #[arg(long)]
    pub no_keys: bool,
    /// Key and usage database: a SQLite file or a postgres:// URL [default: gateway.db in the
    /// config folder]
    #[arg(long, env = "HEARTH_GATEWAY_DB")]
    pub keys_db: Option<String>,
    /// Largest request body in bytes (larger ones get 413), e.g. 32MiB
    #[arg(long, default_value = "32MiB", value_parser = crate::common::parse_bytes)]
    pub max_request_body: u64,
    /// Do not serve the web playground (/) and dashboard (/dashboard)
    #[arg(long)]
    pub no_ui: bool,
    #[command(flatten)]
    pub connections: crate::common::ConnectionArgs,
    #[command(subcommand)]
    pub action: Option<GatewayAction>,
}

#[derive(Subcommand, Debug)]
pub enum GatewayAction {
    /// Write the equivalent LiteLLM proxy config.yaml
    ExportLitellm {
        /// Output file [default: standard output]
        #[arg(long, short = 'o')]
        output: Option<PathBuf>,
    },
    /// Write providers.yaml and model-mappings.yaml from a LiteLLM config.yaml
    ImportLitellm {
        file: PathBuf,
        /// Replace existing files
        #[arg(long)]
        force: bool,
    },
    /// Virtual API keys
    #[command(subcommand)]
    Keys(KeysAction),
    /// Write the JSON Schemas of providers.yaml and model-mappings.yaml (for editors)
    Schema {
        /// Folder to write them to
        #[arg(long, default_value = "config/schema")]
        out: PathBuf,
    },
    /// Measure the gateway's added latency and throughput against an instant stub backend
    Bench {
        /// Concurrent connections per run
        #[arg(long, value_delimiter = ',', default_value = "100,1000")]
        connections: Vec<usize>,
        /// Seconds per run
        #[arg(long, default_value_t = 10)]
        duration: u64,
        /// Offered load in requests/s shared by the connections [default: as fast as they can]
        #[arg(long)]
        rate: Option<f64>,
        /// Balancing policy of the measured gateway (other than the default: over three routes)
        #[arg(long, value_enum, default_value = "least-outstanding")]
        balancing: BalancingArg,
        /// Characters of system prompt per request (8 different ones, as shared-prefix traffic)
        #[arg(long, default_value_t = 0)]
        system_chars: usize,
    },
}

#[derive(Subcommand, Debug)]
pub enum KeysAction {
    /// Create a key (printed once; only its hash is stored)
    Create {
        #[arg(long)]
        name: String,
        /// Token budget (prompt + completion tokens over the key's life)
        #[arg(long)]
        budget: Option<u64>,
        /// Requests per minute
        #[arg(long)]
        rpm: Option<u64>,
        /// Tokens per minute
        #[arg(long)]
        tpm: Option<u64>,
    },
    /// Tokens used per key, model and backend
    Usage,
}

pub fn run(args: GatewayArgs) -> anyhow::Result<()> {
    match &args.action {
        Some(GatewayAction::ImportLitellm { file, force }) => return import(&args.config, file, *force),
        Some(GatewayAction::Keys(action)) => return keys(&args, action),
        Some(GatewayAction::Schema { out }) => {
            std::fs::create_dir_all(out)?;
            for (name, text) in hearth_gateway::config::schemas() {
                std::fs::write(out.join(name), text).with_context(|| format!("cannot write {}", out.join(name).display()))?;
            }
            return Ok(());
        }
        Some(GatewayAction::Bench { connections, duration, rate, balancing, system_chars }) => {
            return bench(connections, *duration, *rate, balancing.policy(), *system_chars)
        }
        _ => {}
    }
    let open_files = crate::common::raise_open_files_limit();
    let config = GatewayConfig::load(&args.config)?;
    match &args.action {
        Some(GatewayAction::ExportLitellm { output }) => {
            let yaml = litellm::export(&config)?;
            match output {
                Some(path) => std::fs::write(path, yaml).with_context(|| format!("cannot write {}", path.display()))?,
                None => print!("{yaml}"),
            }
            return Ok(());
        }
        _ if args.check_config => {
            println!("{}: {} providers, {} models: OK", args.config.display(), config.providers.providers.len(), config.mappings.models.len());
            return Ok(());
        }
        _ => {}
    }
    let front = FrontLimits { connections: args.connections.limits(open_files), max_body_bytes: args.max_request_body as usize, ui: !args.no_ui };
    let runtime = crate::common::runtime(2)?;
    runtime.block_on(async move {
        let store = match args.no_keys {
            true => None,
            false => Some(Arc::new(KeyStore::open(&keys_location(&args)).await?)),
        };
        let gateway = Gateway::new(config, store, front);
        gateway.spawn_health_probes();
        let addr = SocketAddr::new(args.host, args.port);
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
        let base = crate::serve::browser_url(listener.local_addr()?);
        tracing::info!("gateway listening on {base}: API {base}/v1");
        if !args.no_ui {
            tracing::info!("playground: {base}/   dashboard: {base}/dashboard");
        }
        gateway.serve(listener, crate::serve::shutdown_signal()).await?;
        Ok(())
    })
}

fn import(dir: &std::path::Path, file: &std::path::Path, force: bool) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let (providers, mappings) = litellm::import(&text)?;
    std::fs::create_dir_all(dir)?;
    for (name, yaml) in [(PROVIDERS_FILE, serde_yaml_ng::to_string(&providers)?), (MAPPINGS_FILE, serde_yaml_ng::to_string(&mappings)?)] {
        let path = dir.join(name);
        if path.exists() && !force {
            bail!("{} exists; pass --force to replace it", path.display());
        }
        std::fs::write(&path, yaml).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let config = GatewayConfig::load(dir)?;
    println!("wrote {} providers and {} models to {}", config.providers.providers.len(), config.mappings.models.len(), dir.display());
    Ok(())
}

fn keys_location(args: &GatewayArgs) -> String {
    args.keys_db.clone().unwrap_or_else(|| args.config.join(DB_FILE).display().to_string())
}

fn keys(args: &GatewayArgs, action: &KeysAction) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.config)?;
    let runtime = crate::common::runtime(1)?;
    runtime.block_on(async {
        let store = KeyStore::open(&keys_location(args)).await?;
        match action {
            KeysAction::Create { name, budget, rpm, tpm } => {
                let key = store.create(&KeyPolicy { name: name.clone(), budget_tokens: *budget, rpm: *rpm, tpm: *tpm }).await?;
                println!("{key}");
                eprintln!("store this key now: it is not shown again");
            }
            KeysAction::Usage => {
                println!("| key | model | backend | prompt tokens | completion tokens |\n|---|---|---|---|---|");
                for (key, model, backend, prompt, completion) in store.usage_summary().await? {
                    println!("| {} | {model} | {backend} | {prompt} | {completion} |", key.as_deref().unwrap_or("(none)"));
                }
            }
        }
        Ok(())
    })
}

/// The balancing policies, as the command line names them.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum BalancingArg {
    LeastOutstanding,
    Weighted,
    RoundRobin,
    CacheAware,
    Session,
}

impl BalancingArg {
    pub fn policy(self) -> Balancing {
        match self {
            BalancingArg::LeastOutstanding => Balancing::LeastOutstanding,
            BalancingArg::Weighted => Balancing::Weighted,
            BalancingArg::RoundRobin => Balancing::RoundRobin,
            BalancingArg::CacheAware => Balancing::CacheAware,
            BalancingArg::Session => Balancing::Session,
        }
    }
}

/// Same load to the stub directly and through the gateway, per connection count.
fn bench(connections: &[usize], duration: u64, rate: Option<f64>, balancing: Balancing, system_chars: usize) -> anyhow::Result<()> {
    use hearth_gateway::loadtest::{gateway_over, hammer, instant_stub};
    let runtime = crate::common::runtime(2)?;
    runtime.block_on(async {
        let stub = instant_stub().await?;
        let gateway = gateway_over(stub, balancing).await?;
        let duration = std::time::Duration::from_secs(duration);
        println!("| connections | path | requests/s | p50 ms | p99 ms | errors |\n|---|---|---|---|---|---|");
        for &n in connections {
            let direct = hammer(&format!("http://{stub}"), "stub", n, duration, rate, system_chars).await;
            let routed = hammer(&format!("http://{gateway}"), "bench", n, duration, rate, system_chars).await;
            for (path, r) in [("direct", &direct), ("gateway", &routed)] {
                println!("| {n} | {path} | {:.0} | {:.2} | {:.2} | {} |", r.requests_per_s, r.p50_ms, r.p99_ms, r.errors);
            }
            println!(
                "| {n} | added | {:.2}x | +{:.2} | +{:.2} | |",
                routed.requests_per_s / direct.requests_per_s.max(1e-9),
                routed.p50_ms - direct.p50_ms,
                routed.p99_ms - direct.p99_ms
            );
        }
        Ok(())
    })
}
