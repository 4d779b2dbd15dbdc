//! `hearth bench-spec`: speculative decoding on and off side by side in one run, on code
//! edits (answers that repeat the prompt) and open-ended generation, alone and concurrent.

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use hearth_bench::workloads::{code_edit_cases, free_generation_cases, ChatCase};
use hearth_engine::{
    ChatMessage, EngineConfig, EngineEvent, EngineHandle, EngineMetrics, EngineRequest, ModelBundle, SamplingParams,
    StopConditions,
};

use crate::common::{EngineArgs, ModelArgs};

#[derive(Args, Debug)]
pub struct BenchSpecArgs {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    engine: EngineArgs,
    /// Most tokens per code-edit answer
    #[arg(long, default_value_t = 256)]
    edit_tokens: usize,
    /// Tokens per open-ended answer
    #[arg(long, default_value_t = 128)]
    free_tokens: usize,
    /// Requests at once in the concurrent runs
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Code-edit and open-ended cases run alone (of 12 and 8)
    #[arg(long, default_value_t = 12)]
    cases: usize,
}

/// One run of a workload on one engine.
struct RunResult {
    tokens: usize,
    /// Time spent decoding: first to last token of each request, summed (alone) or the whole
    /// run (concurrent).
    decode: Duration,
    outputs: Vec<Vec<u32>>,
}

impl RunResult {
    fn tokens_per_second(&self) -> f64 {
        self.tokens as f64 / self.decode.as_secs_f64().max(1e-9)
    }
}

pub fn run(args: BenchSpecArgs) -> anyhow::Result<()> {
    let bundle = args.model.load()?;
    let mut config: EngineConfig = args.engine.config();
    let spec = config.speculative.unwrap_or_default();
    config.speculative = None;
    let plain = EngineHandle::spawn(&bundle, &config)?;
    config.speculative = Some(spec);
    let speculative = EngineHandle::spawn(&bundle, &config)?;
    let edits = prompts(&bundle, &code_edit_cases())?;
    let free = prompts(&bundle, &free_generation_cases())?;
    let n = args.concurrency;
    let cycle = |p: &[Vec<u32>]| p.iter().cycle().take(n).cloned().collect::<Vec<_>>();
    let workloads = [
        ("code edit, alone", edits.iter().take(args.cases).cloned().collect::<Vec<_>>(), args.edit_tokens, false),
        ("open-ended, alone", free.iter().take(args.cases).cloned().collect(), args.free_tokens, false),
        ("code edit, concurrent", cycle(&edits), args.edit_tokens, true),
        ("open-ended, concurrent", cycle(&free), args.free_tokens, true),
    ];
    println!("| workload | requests | off tok/s | on tok/s | speed-up | acceptance | tokens per draft | outputs equal |");
    println!("|---|---|---|---|---|---|---|---|");
    for (name, prompts, max_tokens, concurrent) in workloads {
        let off = run_workload(&plain, &prompts, max_tokens, concurrent)?;
        let before = SpecCounts::of(speculative.metrics());
        let on = run_workload(&speculative, &prompts, max_tokens, concurrent)?;
        let spec = SpecCounts::of(speculative.metrics()).since(&before);
        println!(
            "| {name} | {} | {:.1} | {:.1} | {:.2}x | {:.0}% | {:.2} | {} |",
            prompts.len(),
            off.tokens_per_second(),
            on.tokens_per_second(),
            on.tokens_per_second() / off.tokens_per_second().max(1e-9),
            spec.acceptance() * 100.0,
            spec.emitted_per_draft(),
            if off.outputs == on.outputs { "yes" } else { "NO" }
        );
    }
    plain.shutdown(false);
    speculative.shutdown(false);
    Ok(())
}

fn prompts(bundle: &ModelBundle, cases: &[ChatCase]) -> anyhow::Result<Vec<Vec<u32>>> {
    cases
        .iter()
        .map(|case| {
            let message = ChatMessage { role: "user".into(), content: case.message.clone() };
            bundle.chat_prompt(&[message]).with_context(|| format!("rendering {}", case.name))
        })
        .collect()
}

/// Runs greedy requests one after another (`concurrent` false) or all at once.
fn run_workload(engine: &EngineHandle, prompts: &[Vec<u32>], max_tokens: usize, concurrent: bool) -> anyhow::Result<RunResult> {
    let submit = |prompt: &Vec<u32>| {
        let stop = StopConditions { max_tokens: Some(max_tokens), ..Default::default() };
        let request =
            EngineRequest { prompt: prompt.clone(), sampling: SamplingParams::greedy(), stop, constraint: None, no_speculation: false };
        engine.submit(request)
    };
    let mut result = RunResult { tokens: 0, decode: Duration::ZERO, outputs: Vec::new() };
    if concurrent {
        let start = Instant::now();
        let mut streams = prompts.iter().map(submit).collect::<Result<Vec<_>, _>>()?;
        for stream in &mut streams {
            result.outputs.push(collect(stream)?.0);
        }
        result.decode = start.elapsed();
    } else {
        for prompt in prompts {
            let (tokens, decode) = collect(&mut submit(prompt)?)?;
            result.outputs.push(tokens);
            result.decode += decode;
        }
    }
    result.tokens = result.outputs.iter().map(Vec::len).sum();
    if !concurrent {
        // decode speed counts the tokens after each request's first
        result.tokens -= result.outputs.iter().filter(|o| !o.is_empty()).count();
    }
    Ok(result)
}

/// A request's tokens and the time from its first token to its last.
fn collect(stream: &mut hearth_engine::RequestStream) -> anyhow::Result<(Vec<u32>, Duration)> {
    let (mut tokens, mut first) = (Vec::new(), None);
    while let Some(event) = stream.next_blocking() {
        match event {
            EngineEvent::Token(t) => {
                first.get_or_insert_with(Instant::now);
                tokens.push(t.sampled.token);
            }
            EngineEvent::Finished(_) => break,
            EngineEvent::Error(e) => anyhow::bail!("engine error: {e}"),
        }
    }
    Ok((tokens, first.map(|f| f.elapsed()).unwrap_or_default()))
}

/// The spec-decode counters at one moment.
struct SpecCounts {
    drafts: u64,
    drafted: u64,
    accepted: u64,
}

impl SpecCounts {
    fn of(m: &EngineMetrics) -> Self {
        let get = EngineMetrics::get;
        SpecCounts { drafts: get(&m.spec.drafts), drafted: get(&m.spec.draft_tokens), accepted: get(&m.spec.accepted_tokens) }
    }

    fn since(&self, before: &SpecCounts) -> SpecCounts {
        SpecCounts {
            drafts: self.drafts - before.drafts,
            drafted: self.drafted - before.drafted,
            accepted: self.accepted - before.accepted,
        }
    }

    fn acceptance(&self) -> f64 {
        self.accepted as f64 / self.drafted.max(1) as f64
    }

    /// Tokens emitted per verified draft: the accepted ones plus the step's own.
    fn emitted_per_draft(&self) -> f64 {
        if self.drafts == 0 { 0.0 } else { (self.accepted + self.drafts) as f64 / self.drafts as f64 }
    }
}
