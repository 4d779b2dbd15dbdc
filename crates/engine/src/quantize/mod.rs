//! `hearth quantize`: an int4 checkpoint in the standard AWQ (GEMM) or GPTQ layout from a
//! bf16/f16/f32 model directory — round-to-nearest over groups of input features, with AWQ's
//! activation-aware scale search (`awq`) or GPTQ's act order (`gptq --desc-act`) calibrated on
//! a small text. Unquantized tensors are written as f16, as AutoAWQ and AutoGPTQ do.

pub mod awq;
pub mod calibrate;
mod layer;
pub mod rtn;

use std::path::{Path, PathBuf};

use hearth_model::hf::{self, hf_name};
use hearth_model::weights::WeightLoader;
use hearth_model::{Model, ModelError};
use serde_json::{json, Value};

pub use awq::Searched;
pub(crate) use crate::tensor_out::OutTensor;

/// A short mixed text of prose and code, the default calibration input.
pub const DEFAULT_CALIBRATION: &str = include_str!("calibration.txt");

/// How to choose the int4 values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Plain round-to-nearest, written in the AWQ layout.
    Rtn,
    /// AWQ's scale search, then round-to-nearest, in the AWQ layout.
    Awq,
    /// Round-to-nearest in the GPTQ layout (optionally act-ordered and symmetric).
    Gptq,
}

#[derive(Debug, Clone)]
pub struct QuantizeOptions {
    pub method: Method,
    pub group_size: usize,
    /// GPTQ only: zero point 8 and symmetric ranges.
    pub symmetric: bool,
    /// GPTQ only: group features by decreasing calibration energy (writes a scattered `g_idx`).
    pub desc_act: bool,
    pub calibration_text: String,
    /// At most this many calibration tokens are run through the model.
    pub calibration_tokens: usize,
    /// Rows of each layer input kept to score AWQ's candidate scales.
    pub sample_rows: usize,
    /// AWQ's grid of scale exponents.
    pub grid: usize,
}

impl QuantizeOptions {
    pub fn new(method: Method) -> Self {
        QuantizeOptions {
            method,
            group_size: 128,
            symmetric: false,
            desc_act: false,
            calibration_text: DEFAULT_CALIBRATION.to_string(),
            calibration_tokens: 512,
            sample_rows: 512,
            grid: 20,
        }
    }

    fn needs_calibration(&self) -> bool {
        self.method == Method::Awq || (self.method == Method::Gptq && self.desc_act)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum QuantizeError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Tokenizer(#[from] hearth_tokenizer::TokenizerError),
    #[error("{0}")]
    Invalid(String),
    #[error("{path}: {message}")]
    Write { path: PathBuf, message: String },
}

/// What was written.
#[derive(Debug, Default)]
pub struct QuantizeReport {
    pub layers: usize,
    pub tensors: usize,
    pub calibration_tokens: usize,
    /// AWQ: every searched group and its result.
    pub searched: Vec<(String, Searched)>,
}

/// Quantizes the model directory `input` into `output` (on the compute pool).
pub fn quantize_dir(input: &Path, output: &Path, opts: &QuantizeOptions) -> Result<QuantizeReport, QuantizeError> {
    hearth_kernels::threads::install(|| quantize_on_pool(input, output, opts))
}

fn quantize_on_pool(input: &Path, output: &Path, opts: &QuantizeOptions) -> Result<QuantizeReport, QuantizeError> {
    let (config, scheme) = hf::read_config(input)?;
    if scheme.is_some() {
        return Err(QuantizeError::Invalid(format!("{}: the model is already quantized", input.display())));
    }
    let g = opts.group_size;
    let widths = [config.hidden, config.n_heads * config.head_dim, config.ffn_hidden];
    if g == 0 || !g.is_multiple_of(32) || widths.iter().any(|w| !w.is_multiple_of(g)) {
        let fits = (1..=g.max(32) / 32).rev().map(|k| k * 32).find(|c| widths.iter().all(|w| w.is_multiple_of(*c))).unwrap_or(32);
        return Err(QuantizeError::Invalid(format!(
            "group size {g} must be a multiple of 32 dividing every layer input ({widths:?}); try a group size of {fits}"
        )));
    }
    let table = hf::read_tensors(input)?;
    let loader = WeightLoader::new(&table);
    let mut report = QuantizeReport { layers: config.n_layers, ..Default::default() };
    let calibration = if opts.needs_calibration() {
        let tokenizer = hearth_tokenizer::Tokenizer::from_dir(input)?;
        let mut tokens = tokenizer.encode(&opts.calibration_text)?;
        tokens.truncate(opts.calibration_tokens);
        if tokens.len() < 32 {
            return Err(QuantizeError::Invalid(format!("the calibration text has only {} tokens (at least 32 needed)", tokens.len())));
        }
        report.calibration_tokens = tokens.len();
        let model = Model::load_dir(input)?;
        Some(calibrate::calibrate(&model, &tokens, 256, opts.sample_rows)?)
    } else {
        None
    };
    let mut tensors = Vec::new();
    for li in 0..config.n_layers {
        let done = layer::quantize_layer(&loader, &config, li, calibration.as_ref(), opts)?;
        tensors.extend(done.tensors);
        report.searched.extend(done.searched);
        tracing::info!(layer = li, "quantized");
    }
    for name in ["token_embd.weight", "output.weight", "output_norm.weight"] {
        if let Some(entry) = table.get(name) {
            tensors.push((hf_name(name).unwrap_or(name.into()), whole_tensor_f16(&loader, name, &entry.dims)?));
        }
    }
    report.tensors = tensors.len();
    write_checkpoint(input, output, opts, &tensors)?;
    Ok(report)
}

fn whole_tensor_f16(loader: &WeightLoader<'_>, name: &str, dims: &[u64]) -> Result<OutTensor, QuantizeError> {
    let (cols, rows) = (dims[0] as usize, dims.get(1).copied().unwrap_or(1) as usize);
    let values = if dims.len() == 1 { loader.vector(name, cols)? } else { loader.matrix(name, rows, cols)?.dequantize() };
    let shape = if dims.len() == 1 { vec![cols] } else { vec![rows, cols] };
    OutTensor::f16(shape, &values).map_err(|e| QuantizeError::Invalid(format!("tensor `{}`: {e}", hf_name(name).unwrap_or(name.into()))))
}

fn write_err(path: &Path, e: &dyn std::fmt::Display) -> QuantizeError {
    QuantizeError::Write { path: path.to_path_buf(), message: e.to_string() }
}

/// `model.safetensors`, `config.json` with its `quantization_config`, and every other file
/// of the input (tokenizer, chat template, generation config) copied.
fn write_checkpoint(input: &Path, output: &Path, opts: &QuantizeOptions, tensors: &[(String, OutTensor)]) -> Result<(), QuantizeError> {
    std::fs::create_dir_all(output).map_err(|e| write_err(output, &e))?;
    let st_path = output.join("model.safetensors");
    let metadata = Some(std::collections::HashMap::from([("format".to_string(), "pt".to_string())]));
    safetensors::serialize_to_file(tensors.iter().map(|(n, t)| (n.as_str(), t)), metadata, &st_path).map_err(|e| write_err(&st_path, &e))?;
    let config_path = input.join("config.json");
    let text = std::fs::read_to_string(&config_path).map_err(|e| write_err(&config_path, &e))?;
    let mut config: Value = serde_json::from_str(&text).map_err(|e| write_err(&config_path, &e))?;
    config["quantization_config"] = quantization_config(opts);
    config["torch_dtype"] = json!("float16");
    let out_config = output.join("config.json");
    std::fs::write(&out_config, serde_json::to_string_pretty(&config).unwrap_or_default()).map_err(|e| write_err(&out_config, &e))?;
    for entry in std::fs::read_dir(input).map_err(|e| write_err(input, &e))? {
        let path = entry.map_err(|e| write_err(input, &e))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let skip = name == "config.json" || name.ends_with(".safetensors") || name == "model.safetensors.index.json";
        if path.is_file() && !skip {
            std::fs::copy(&path, output.join(name)).map_err(|e| write_err(&path, &e))?;
        }
    }
    Ok(())
}

/// The `quantization_config` other tools (transformers, vLLM, AutoAWQ) read.
fn quantization_config(opts: &QuantizeOptions) -> Value {
    let method = match opts.method {
        Method::Rtn => "rtn",
        Method::Awq => "awq",
        Method::Gptq => "gptq",
    };
    match opts.method {
        Method::Rtn | Method::Awq => json!({
            "quant_method": "awq", "bits": 4, "group_size": opts.group_size, "zero_point": true, "version": "gemm",
            "modules_to_not_convert": null, "hearth_method": method,
        }),
        Method::Gptq => json!({
            "quant_method": "gptq", "bits": 4, "group_size": opts.group_size, "desc_act": opts.desc_act, "sym": opts.symmetric,
            "static_groups": false, "true_sequential": true, "checkpoint_format": "gptq", "hearth_method": method,
        }),
    }
}
