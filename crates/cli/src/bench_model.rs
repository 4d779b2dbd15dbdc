//! `hearth bench-model`: prompt-processing and decode speed, llama-bench style (pp N, tg N).

use std::time::Instant;

use clap::Args;
use hearth_model::{LogitsWanted, SeqSpan};

use crate::common::ModelArgs;

#[derive(Args, Debug)]
pub struct BenchModelArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Prompt tokens processed in one batch (pp)
    #[arg(long, short = 'p', default_value_t = 512)]
    prompt_tokens: usize,
    /// Tokens decoded one at a time (tg)
    #[arg(long, short = 'n', default_value_t = 128)]
    gen_tokens: usize,
    /// Repetitions; the median is reported
    #[arg(long, short = 'r', default_value_t = 3)]
    repetitions: usize,
    /// Print one JSON object instead of a table
    #[arg(long)]
    json: bool,
}

pub fn run(args: BenchModelArgs) -> anyhow::Result<()> {
    let bundle = args.model.load()?;
    let model = &bundle.model;
    let vocab = model.config().vocab_size as u32;
    // Deterministic pseudo-random tokens, as llama-bench uses random tokens.
    let tokens: Vec<u32> = (0..args.prompt_tokens as u64).map(|i| ((i * 2_654_435_761 + 12_345) % vocab as u64) as u32).collect();
    let mut pp = Vec::new();
    let mut tg = Vec::new();
    for _ in 0..args.repetitions.max(1) {
        if args.prompt_tokens > 0 {
            let mut cache = model.new_cache();
            let start = Instant::now();
            model.forward(&mut [SeqSpan { tokens: &tokens, cache: &mut cache, logits: LogitsWanted::Last }])?;
            pp.push(args.prompt_tokens as f64 / start.elapsed().as_secs_f64());
        }
        if args.gen_tokens > 0 {
            let mut cache = model.new_cache();
            let start = Instant::now();
            let mut token = tokens.first().copied().unwrap_or(1);
            for _ in 0..args.gen_tokens {
                let logits = model.forward(&mut [SeqSpan { tokens: &[token], cache: &mut cache, logits: LogitsWanted::Last }])?;
                token = hearth_engine::sample::argmax(&logits[0]);
            }
            tg.push(args.gen_tokens as f64 / start.elapsed().as_secs_f64());
        }
    }
    let (pp, tg) = (median(&mut pp), median(&mut tg));
    let path = args.model.path()?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let threads = hearth_kernels::threads::num_threads();
    if args.json {
        let out = serde_json::json!({"model": name, "threads": threads, "pp_tokens": args.prompt_tokens,
            "pp_tokens_per_s": pp, "tg_tokens": args.gen_tokens, "tg_tokens_per_s": tg});
        println!("{out}");
    } else {
        println!("| model | threads | test | t/s |\n|---|---|---|---|");
        if let Some(pp) = pp {
            println!("| {name} | {threads} | pp{} | {pp:.2} |", args.prompt_tokens);
        }
        if let Some(tg) = tg {
            println!("| {name} | {threads} | tg{} | {tg:.2} |", args.gen_tokens);
        }
    }
    Ok(())
}

pub(crate) fn median(xs: &mut [f64]) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    xs.sort_by(f64::total_cmp);
    Some(xs[xs.len() / 2])
}
