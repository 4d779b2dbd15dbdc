//! `hearth bench-grammar`: what constrained decoding costs. Grammar compile times for schemas
//! of several sizes, decode throughput with and without a JSON Schema at each concurrency
//! (same engine, same prompts, one run), and the per-token mask time on the tokens produced.

use std::time::Instant;

use clap::Args;
use hearth_engine::{
    EngineEvent, EngineHandle, EngineRequest, Grammar, GrammarCompiler, SamplingParams, StopConditions, TokenConstraint,
};
use hearth_tokenizer::ChatInputs;
use serde_json::{json, Value};

use crate::bench_engine::percentile;
use crate::common::{EngineArgs, ModelArgs};

#[derive(Args, Debug)]
pub struct BenchGrammarArgs {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    engine: EngineArgs,
    /// Concurrent requests to measure, comma-separated
    #[arg(long, value_delimiter = ',', default_value = "1,16")]
    concurrency: Vec<usize>,
    /// Generated tokens per request
    #[arg(long, default_value_t = 128)]
    gen_tokens: usize,
}

/// A record with string, integer, enum, array and nested-object fields.
fn person_schema() -> Value {
    json!({"type": "object", "additionalProperties": false, "required": ["name", "age", "role", "skills", "address"],
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"},
            "role": {"enum": ["engineer", "designer", "manager"]},
            "skills": {"type": "array", "items": {"type": "string"}},
            "address": {"type": "object", "required": ["city", "zip"],
                "properties": {"city": {"type": "string"}, "zip": {"type": "string", "pattern": "^[0-9]{5}$"}}}}})
}

/// A list of records long enough that no request ends before its token budget.
fn list_schema() -> Value {
    json!({"type": "array", "minItems": 64, "items": person_schema()})
}

/// A wide schema: 60 typed fields, a few of them nested objects.
fn wide_schema() -> Value {
    let mut properties = serde_json::Map::new();
    for i in 0..60 {
        let field = match i % 4 {
            0 => json!({"type": "string", "maxLength": 64}),
            1 => json!({"type": "integer", "minimum": 0}),
            2 => json!({"type": "array", "items": {"type": "number"}}),
            _ => person_schema(),
        };
        properties.insert(format!("field_{i}"), field);
    }
    json!({"type": "object", "properties": properties})
}

pub fn run(args: BenchGrammarArgs) -> anyhow::Result<()> {
    let bundle = args.model.load()?;
    let engine = EngineHandle::spawn(&bundle, &args.engine.config())?;
    let vocab_size = bundle.model.config().vocab_size;
    let started = Instant::now();
    let compiler = GrammarCompiler::new(&bundle.tokenizer, vocab_size)?;
    println!("grammar engine over {vocab_size} tokens built in {:.0} ms\n", started.elapsed().as_secs_f64() * 1e3);
    print_compile_times(&compiler)?;

    let template = bundle.template.as_ref().ok_or_else(|| anyhow::anyhow!("the model has no chat template"))?;
    let messages = [json!({"role": "user", "content": "List the engineers of a small company as JSON records."})];
    let text = template.render(&ChatInputs::<_, Value> { messages: &messages, tools: None, add_generation_prompt: true })?;
    let prompt = bundle.tokenizer.encode(&text)?;
    let grammar = Grammar::JsonSchema(list_schema());

    println!("\n| concurrency | free tok/s | JSON Schema tok/s | ratio | mask mean ms | mask p99 ms |");
    println!("|---|---|---|---|---|---|");
    for &n in &args.concurrency {
        let free = run_batch(&engine, &prompt, n, args.gen_tokens, || None)?;
        let constrained = run_batch(&engine, &prompt, n, args.gen_tokens, || compiler.compile(&grammar).ok())?;
        let mut masks = replay_masks(&compiler, &grammar, &constrained.outputs)?;
        let mean = masks.iter().sum::<f64>() / masks.len().max(1) as f64;
        println!(
            "| {n} | {:.1} | {:.1} | {:.3} | {:.3} | {:.3} |",
            free.tokens_per_second,
            constrained.tokens_per_second,
            constrained.tokens_per_second / free.tokens_per_second,
            mean,
            percentile(&mut masks, 99.0)
        );
    }
    engine.shutdown(false);
    Ok(())
}

fn print_compile_times(compiler: &GrammarCompiler) -> anyhow::Result<()> {
    println!("| schema | compile ms (median of 5) |");
    println!("|---|---|");
    let cases = [
        ("json_object", json!({"type": "object"})),
        ("record (5 fields, nested)", person_schema()),
        ("list of 64+ records", list_schema()),
        ("wide (60 fields)", wide_schema()),
    ];
    for (name, schema) in cases {
        let grammar = Grammar::JsonSchema(schema);
        let mut times = Vec::new();
        for _ in 0..5 {
            let start = Instant::now();
            compiler.compile(&grammar)?;
            times.push(start.elapsed().as_secs_f64() * 1e3);
        }
        println!("| {name} | {:.2} |", percentile(&mut times, 50.0));
    }
    Ok(())
}

struct BatchResult {
    tokens_per_second: f64,
    outputs: Vec<Vec<u32>>,
}

/// Runs `n` copies of the prompt at once (greedy) and collects their tokens.
fn run_batch(
    engine: &EngineHandle,
    prompt: &[u32],
    n: usize,
    gen_tokens: usize,
    mut constraint: impl FnMut() -> Option<TokenConstraint>,
) -> anyhow::Result<BatchResult> {
    let start = Instant::now();
    let mut streams = Vec::with_capacity(n);
    for _ in 0..n {
        let stop = StopConditions { max_tokens: Some(gen_tokens), ignore_eos: true, ..Default::default() };
        let request = EngineRequest { prompt: prompt.to_vec(), sampling: SamplingParams::greedy(), stop, constraint: constraint(), no_speculation: false };
        streams.push(engine.submit(request)?);
    }
    let mut outputs = Vec::with_capacity(n);
    for mut stream in streams {
        let mut tokens = Vec::new();
        while let Some(event) = stream.next_blocking() {
            match event {
                EngineEvent::Token(t) => tokens.push(t.sampled.token),
                EngineEvent::Finished(_) => break,
                EngineEvent::Error(e) => anyhow::bail!(e),
            }
        }
        outputs.push(tokens);
    }
    let total: usize = outputs.iter().map(Vec::len).sum();
    Ok(BatchResult { tokens_per_second: total as f64 / start.elapsed().as_secs_f64(), outputs })
}

/// Milliseconds of each step's mask, replaying the produced tokens through a fresh matcher.
fn replay_masks(compiler: &GrammarCompiler, grammar: &Grammar, outputs: &[Vec<u32>]) -> anyhow::Result<Vec<f64>> {
    let mut times = Vec::new();
    for tokens in outputs {
        let mut constraint = compiler.compile(grammar)?;
        for &token in tokens {
            constraint.prepare();
            constraint.commit(token).map_err(anyhow::Error::msg)?;
        }
        times.extend(constraint.mask_seconds().iter().map(|&s| s as f64 * 1e3));
    }
    Ok(times)
}
