//! `hearth bench-engine`: the batching engine under N concurrent requests, and the prefix
//! cache's effect on time to first token, without HTTP in the way.

use std::time::{Duration, Instant};

use clap::Args;
use hearth_engine::{EngineConfig, EngineEvent, EngineHandle, EngineRequest, SamplingParams, StopConditions};

use crate::common::{EngineArgs, ModelArgs};

#[derive(Args, Debug)]
pub struct BenchEngineArgs {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    engine: EngineArgs,
    /// Concurrent requests to measure, comma-separated
    #[arg(long, value_delimiter = ',', default_value = "1,4,16,64")]
    concurrency: Vec<usize>,
    /// Prompt tokens per request
    #[arg(long, default_value_t = 128)]
    prompt_tokens: usize,
    /// Generated tokens per request (end-of-sequence ignored)
    #[arg(long, default_value_t = 128)]
    gen_tokens: usize,
    /// Prompt tokens of the repeated prompt in the prefix-cache test (0: skip it)
    #[arg(long, default_value_t = 1000)]
    prefix_tokens: usize,
}

/// Timings of one request.
struct RequestTimes {
    ttft: Duration,
    gaps: Vec<Duration>,
    tokens: usize,
}

pub fn run(args: BenchEngineArgs) -> anyhow::Result<()> {
    let bundle = args.model.load()?;
    let config: EngineConfig = args.engine.config();
    let engine = EngineHandle::spawn(&bundle, &config)?;
    let vocab = bundle.model.config().vocab_size as u64;
    println!("| concurrency | gen tok/s (sum) | TTFT p50 ms | TTFT p99 ms | ITL p50 ms | ITL p99 ms | wall s |");
    println!("|---|---|---|---|---|---|---|");
    let mut seed = 1u64;
    for &n in &args.concurrency {
        let prompts: Vec<Vec<u32>> = (0..n).map(|_| random_tokens(&mut seed, args.prompt_tokens, vocab)).collect();
        let start = Instant::now();
        let times = run_batch(&engine, prompts, args.gen_tokens)?;
        let wall = start.elapsed().as_secs_f64();
        let tokens: usize = times.iter().map(|t| t.tokens).sum();
        let mut ttft: Vec<f64> = times.iter().map(|t| t.ttft.as_secs_f64() * 1e3).collect();
        let mut itl: Vec<f64> = times.iter().flat_map(|t| t.gaps.iter().map(|g| g.as_secs_f64() * 1e3)).collect();
        println!(
            "| {n} | {:.1} | {:.0} | {:.0} | {:.1} | {:.1} | {wall:.1} |",
            tokens as f64 / wall,
            percentile(&mut ttft, 50.0),
            percentile(&mut ttft, 99.0),
            percentile(&mut itl, 50.0),
            percentile(&mut itl, 99.0)
        );
    }
    if args.prefix_tokens > 0 {
        let prompt = random_tokens(&mut seed, args.prefix_tokens, vocab);
        let cold = run_batch(&engine, vec![prompt.clone()], 1)?[0].ttft;
        let warm = run_batch(&engine, vec![prompt], 1)?[0].ttft;
        println!(
            "\nprefix cache, {}-token prompt: TTFT cold {:.0} ms, repeated {:.0} ms ({:.1}x faster); hit rate {:.0}%",
            args.prefix_tokens,
            cold.as_secs_f64() * 1e3,
            warm.as_secs_f64() * 1e3,
            cold.as_secs_f64() / warm.as_secs_f64().max(1e-9),
            engine.metrics().prefix_hit_rate() * 100.0
        );
    }
    engine.shutdown(false);
    Ok(())
}

/// Submits all prompts at once and collects each request's timings.
fn run_batch(engine: &EngineHandle, prompts: Vec<Vec<u32>>, gen_tokens: usize) -> anyhow::Result<Vec<RequestTimes>> {
    let start = Instant::now();
    let streams = prompts
        .into_iter()
        .map(|prompt| {
            let stop = StopConditions { max_tokens: Some(gen_tokens), ignore_eos: true, ..Default::default() };
            engine.submit(EngineRequest { prompt, sampling: SamplingParams::greedy(), stop, constraint: None, no_speculation: false })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let handles: Vec<_> = streams
        .into_iter()
        .map(|mut stream| {
            std::thread::spawn(move || {
                let mut times = RequestTimes { ttft: Duration::ZERO, gaps: Vec::new(), tokens: 0 };
                let mut last = None;
                while let Some(event) = stream.next_blocking() {
                    match event {
                        EngineEvent::Token(_) => {
                            let now = Instant::now();
                            match last {
                                None => times.ttft = now - start,
                                Some(prev) => times.gaps.push(now - prev),
                            }
                            last = Some(now);
                            times.tokens += 1;
                        }
                        EngineEvent::Finished(_) => break,
                        EngineEvent::Error(e) => return Err(anyhow::anyhow!(e)),
                    }
                }
                Ok(times)
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().map_err(|_| anyhow::anyhow!("collector thread panicked"))?).collect()
}

/// Deterministic pseudo-random token ids (xorshift), away from the special tokens at 0..100.
fn random_tokens(state: &mut u64, n: usize, vocab: u64) -> Vec<u32> {
    (0..n)
        .map(|_| {
            *state ^= *state << 13;
            *state ^= *state >> 7;
            *state ^= *state << 17;
            (100 + *state % (vocab.min(30_000) - 100)) as u32
        })
        .collect()
}

/// The p-th percentile (nearest rank) of `xs`.
pub fn percentile(xs: &mut [f64], p: f64) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    xs.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * xs.len() as f64).ceil().max(1.0) as usize;
    xs[rank.min(xs.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut xs: Vec<f64> = (1..=100).map(|v| v as f64).collect();
        assert_eq!(percentile(&mut xs, 50.0), 50.0);
        assert_eq!(percentile(&mut xs, 99.0), 99.0);
        assert_eq!(percentile(&mut [3.0], 99.0), 3.0);
    }
}
