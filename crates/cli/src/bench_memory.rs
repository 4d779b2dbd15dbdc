//! `hearth bench-memory`: the machine's memory read bandwidth with the compute threads, the
//! quantized matrix-vector products decode runs (per weight type) as a share of it, and with
//! a model its decode: the weight bytes each token reads (counted in the kernels, beside what
//! the model's active weights add up to) and the bandwidth that makes.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use hearth_kernels::{bandwidth, interleaved, QMatrix, QuantType};
use hearth_model::{LogitsWanted, SeqSpan};

use crate::bench_model::median as median_of;
use crate::common::{init_kernels, ModelArgs};

#[derive(Args, Debug)]
pub struct BenchMemoryArgs {
    /// Also decode with this GGUF model and report its bytes per token and bandwidth
    #[arg(long, short = 'm')]
    model: Option<PathBuf>,
    /// Compute threads [default: one per core]
    #[arg(long, short = 't')]
    threads: Option<usize>,
    /// Size of the read buffer in MiB (the matrices are half of it); well above the caches
    #[arg(long, default_value_t = 512)]
    mib: usize,
    /// Repetitions; the median is reported
    #[arg(long, short = 'r', default_value_t = 5)]
    repetitions: usize,
    /// Tokens decoded for the model figures
    #[arg(long, short = 'n', default_value_t = 64)]
    gen_tokens: usize,
}

const GIB: f64 = (1u64 << 30) as f64;
const MIB: f64 = (1u64 << 20) as f64;

pub fn run(args: BenchMemoryArgs) -> anyhow::Result<()> {
    let isa = init_kernels()?;
    let threads = hearth_kernels::threads::init(args.threads);
    let repetitions = args.repetitions.max(1);
    println!("kernels {}, {threads} threads; GB/s are GiB/s\n", isa.name());
    println!("| test | bytes | GiB/s | share of read |\n|---|---|---|---|");
    let words: Vec<u64> = (0..(args.mib << 17) as u64).collect();
    let read = median(repetitions, || {
        let start = Instant::now();
        std::hint::black_box(bandwidth::read_all(&words));
        (words.len() * 8) as f64 / start.elapsed().as_secs_f64() / GIB
    });
    drop(words);
    println!("| read | {} MiB | {read:.1} | 100% |", args.mib);
    for dtype in [QuantType::Q4_0, QuantType::Q8_0, QuantType::Q4K, QuantType::Q6K] {
        let speed = matvec_speed(dtype, args.mib / 2, repetitions);
        println!("| {dtype:?} x vector | {} MiB | {speed:.1} | {:.0}% |", args.mib / 2, 100.0 * speed / read);
    }
    if let Some(path) = args.model {
        decode_figures(ModelArgs { model: Some(path), threads: args.threads }, args.gen_tokens, repetitions, read)?;
    }
    Ok(())
}

/// GiB/s of one-token products with a matrix of about `mib` MiB of `dtype` (4096 columns,
/// random codes, small scales), repacked as model loads repack it.
fn matvec_speed(dtype: QuantType, mib: usize, repetitions: usize) -> f64 {
    let cols = 4096;
    let row_bytes = dtype.bytes_for(cols);
    let rows = ((mib << 20) / row_bytes).next_multiple_of(interleaved::GROUP_ROWS);
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut data: Vec<u8> = (0..rows * row_bytes)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let scale_at = if dtype == QuantType::Q6K { 208 } else { 0 };
    let scale = half::f16::from_f32(0.01).to_le_bytes();
    for block in data.chunks_exact_mut(dtype.block_bytes()) {
        block[scale_at..scale_at + 2].copy_from_slice(&scale);
        if dtype == QuantType::Q4K {
            block[2..4].copy_from_slice(&scale);
        }
    }
    let packed = interleaved::interleave(dtype, rows, cols, &data);
    drop(data);
    let matrix = QMatrix::interleaved(dtype, rows, cols, &packed).expect("a whole number of groups");
    let x: Vec<f32> = (0..cols).map(|i| (i as f32 * 0.37).sin()).collect();
    let mut out = vec![0f32; rows];
    median(repetitions, || {
        let start = Instant::now();
        hearth_kernels::threads::install(|| hearth_kernels::matmul_many(std::slice::from_ref(&matrix), &x, 1, &mut [&mut out]));
        packed.len() as f64 / start.elapsed().as_secs_f64() / GIB
    })
}

/// Decodes `tokens` tokens with the model: tokens/s, weight bytes per token as the kernels
/// count them and as the model's active weights add up, and the bandwidth that makes.
fn decode_figures(model_args: ModelArgs, tokens: usize, repetitions: usize, read: f64) -> anyhow::Result<()> {
    let bundle = model_args.load()?;
    let model = &bundle.model;
    let expected = model.active_weight_bytes() as f64;
    let (mut speeds, mut per_token) = (Vec::new(), Vec::new());
    for _ in 0..repetitions {
        let mut cache = model.new_cache();
        let mut token = 1u32;
        let (start, counted) = (Instant::now(), bandwidth::weight_bytes_read());
        for _ in 0..tokens.max(1) {
            let logits = model.forward(&mut [SeqSpan { tokens: &[token], cache: &mut cache, logits: LogitsWanted::Last }])?;
            token = hearth_engine::sample::argmax(&logits[0]);
        }
        speeds.push(tokens.max(1) as f64 / start.elapsed().as_secs_f64());
        per_token.push((bandwidth::weight_bytes_read() - counted) as f64 / tokens.max(1) as f64);
    }
    let tg = median_of(&mut speeds).unwrap_or(0.0);
    let bytes = median_of(&mut per_token).unwrap_or(0.0);
    let speed = bytes * tg / GIB;
    let name = model_args.path()?.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    println!("| decode {name}: {tg:.1} t/s | {:.1} MiB/token | {speed:.1} | {:.0}% |", bytes / MIB, 100.0 * speed / read);
    println!("\nweight bytes per token: {:.1} MiB counted in the kernels, {:.1} MiB of active weights in the model ({:.3}x)", bytes / MIB, expected / MIB, bytes / expected);
    Ok(())
}

fn median(repetitions: usize, mut measure: impl FnMut() -> f64) -> f64 {
    measure(); // warm-up: pages faulted in, caches and threads awake
    let mut values: Vec<f64> = (0..repetitions).map(|_| measure()).collect();
    median_of(&mut values).unwrap_or(0.0)
}
