//! `hearth quantize`: an AWQ or GPTQ int4 checkpoint from a bf16/f16/f32 model directory.

use std::path::PathBuf;
use std::time::Instant;

use clap::{Args, ValueEnum};
use hearth_engine::quantize::{quantize_dir, Method, QuantizeOptions};

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum MethodArg {
    /// AWQ's activation-aware scale search, then round-to-nearest (AWQ GEMM layout)
    Awq,
    /// Round-to-nearest in the GPTQ layout (with --desc-act: groups in act order)
    Gptq,
    /// Plain round-to-nearest (AWQ GEMM layout)
    Rtn,
}

#[derive(Args, Debug)]
pub struct QuantizeArgs {
    /// The model directory to quantize (config.json, *.safetensors, tokenizer files)
    pub input: PathBuf,
    /// The directory to write
    pub out: PathBuf,
    #[arg(long, value_enum, default_value = "awq")]
    pub method: MethodArg,
    /// Input features per scale and zero point (a multiple of 32)
    #[arg(long, default_value_t = 128)]
    pub group_size: usize,
    /// GPTQ: symmetric ranges with zero point 8
    #[arg(long)]
    pub sym: bool,
    /// GPTQ: group input features by decreasing calibration energy (act order, writes g_idx)
    #[arg(long)]
    pub desc_act: bool,
    /// Calibration text (default: a built-in mix of prose and code)
    #[arg(long)]
    pub calibration: Option<PathBuf>,
    /// Calibration tokens run through the model
    #[arg(long, default_value_t = 512)]
    pub calibration_tokens: usize,
    /// AWQ: calibration rows of each layer input that score the candidate scales
    #[arg(long, default_value_t = 512)]
    pub search_rows: usize,
}

pub fn run(args: QuantizeArgs) -> anyhow::Result<()> {
    crate::common::init_kernels()?;
    hearth_kernels::threads::init(None);
    let method = match args.method {
        MethodArg::Awq => Method::Awq,
        MethodArg::Gptq => Method::Gptq,
        MethodArg::Rtn => Method::Rtn,
    };
    if (args.sym || args.desc_act) && method != Method::Gptq {
        anyhow::bail!("--sym and --desc-act apply to --method gptq only");
    }
    let mut opts = QuantizeOptions::new(method);
    opts.group_size = args.group_size;
    opts.symmetric = args.sym;
    opts.desc_act = args.desc_act;
    opts.calibration_tokens = args.calibration_tokens;
    opts.sample_rows = args.search_rows;
    if let Some(path) = &args.calibration {
        opts.calibration_text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    }
    let started = Instant::now();
    let report = quantize_dir(&args.input, &args.out, &opts)?;
    if !report.searched.is_empty() {
        let (rtn, awq): (f64, f64) = report.searched.iter().fold((0.0, 0.0), |(r, a), (_, s)| (r + s.rtn_loss, a + s.loss));
        let kept_rtn = report.searched.iter().filter(|(_, s)| s.ratio.is_none()).count();
        println!(
            "AWQ search over {} calibration tokens: {} groups, output error {:.3e} vs {:.3e} for plain RTN ({:.1}% lower); RTN kept in {kept_rtn} groups",
            report.calibration_tokens,
            report.searched.len(),
            awq,
            rtn,
            100.0 * (1.0 - awq / rtn.max(f64::MIN_POSITIVE))
        );
    }
    println!("wrote {} layers, {} tensors to {} in {:.1} s", report.layers, report.tensors, args.out.display(), started.elapsed().as_secs_f64());
    Ok(())
}
