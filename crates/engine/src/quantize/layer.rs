//! One decoder layer quantized: its seven linear layers loaded as floats, AWQ scales searched
//! and folded into the preceding norms or layers, then each layer quantized and packed.

use hearth_model::hf::hf_name;
use hearth_model::int4::{Int4Format, PackedTensors};
use hearth_model::weights::WeightLoader;
use hearth_model::{LinearSite, ModelConfig, ModelError};

use super::awq::{search_scales, Matrix, Searched};
use super::calibrate::Calibration;
use super::rtn::{self, Zero};
use super::{Method, OutTensor, QuantizeOptions};

/// A linear layer as floats: `rows x cols`, row-major, with its bias.
struct FloatLinear {
    module: &'static str,
    rows: usize,
    cols: usize,
    w: Vec<f32>,
    bias: Option<Vec<f32>>,
}

impl FloatLinear {
    fn load(loader: &WeightLoader<'_>, layer: usize, module: &'static str, (rows, cols): (usize, usize), bias: bool) -> Result<Self, ModelError> {
        let prefix = format!("blk.{layer}.{module}");
        let w = loader.matrix(&format!("{prefix}.weight"), rows, cols)?.dequantize();
        let bias = if bias { Some(loader.vector(&format!("{prefix}.bias"), rows)?) } else { None };
        Ok(FloatLinear { module, rows, cols, w, bias })
    }

    fn scale_columns(&mut self, s: &[f32]) {
        for row in self.w.chunks_exact_mut(self.cols) {
            row.iter_mut().zip(s).for_each(|(w, s)| *w *= s);
        }
    }

    /// Divides output row `r` (and its bias) by `s[r]`.
    fn divide_rows(&mut self, s: &[f32]) {
        for (row, s) in self.w.chunks_exact_mut(self.cols).zip(s) {
            row.iter_mut().for_each(|w| *w /= s);
        }
        if let Some(bias) = &mut self.bias {
            bias.iter_mut().zip(s).for_each(|(b, s)| *b /= s);
        }
    }

    fn as_matrix(&self) -> Matrix<'_> {
        Matrix { data: &self.w, rows: self.rows }
    }
}

/// What quantizing one layer produced.
pub struct LayerResult {
    pub tensors: Vec<(String, OutTensor)>,
    /// (group name, search result) for AWQ.
    pub searched: Vec<(String, Searched)>,
}

/// Quantizes layer `li`.
pub fn quantize_layer(
    loader: &WeightLoader<'_>,
    config: &ModelConfig,
    li: usize,
    calibration: Option<&Calibration>,
    opts: &QuantizeOptions,
) -> Result<LayerResult, ModelError> {
    let (h, qw, kvw, ffn) = (config.hidden, config.n_heads * config.head_dim, config.kv_width(), config.ffn_hidden);
    let bias = config.arch.qkv_bias;
    let mut attn_norm = loader.vector(&format!("blk.{li}.attn_norm.weight"), h)?;
    let mut ffn_norm = loader.vector(&format!("blk.{li}.ffn_norm.weight"), h)?;
    let load = |module, shape, bias| FloatLinear::load(loader, li, module, shape, bias);
    let (mut q, mut k, mut v) = (load("attn_q", (qw, h), bias)?, load("attn_k", (kvw, h), bias)?, load("attn_v", (kvw, h), bias)?);
    let mut o = load("attn_output", (h, qw), false)?;
    let (mut gate, mut up) = (load("ffn_gate", (ffn, h), false)?, load("ffn_up", (ffn, h), false)?);
    let mut down = load("ffn_down", (h, ffn), false)?;
    let mut searched = Vec::new();
    if let (Method::Awq, Some(cal)) = (opts.method, calibration) {
        let mut search = |name: &str, mats: &[&FloatLinear], site| {
            let matrices: Vec<Matrix<'_>> = mats.iter().map(|m| m.as_matrix()).collect();
            let found = search_scales(&matrices, mats[0].cols, cal.site(li, site), opts.group_size, opts.grid);
            searched.push((format!("blk.{li}.{name}"), found.clone()));
            found.scales
        };
        let s = search("qkv", &[&q, &k, &v], LinearSite::Attention);
        [&mut q, &mut k, &mut v].into_iter().for_each(|m| m.scale_columns(&s));
        attn_norm.iter_mut().zip(&s).for_each(|(n, s)| *n /= s);
        // o's input can be rescaled through v only when every head has its own v (no GQA)
        if kvw == qw {
            let s = search("o", &[&o], LinearSite::AttentionOutput);
            o.scale_columns(&s);
            v.divide_rows(&s);
        }
        let s = search("gate_up", &[&gate, &up], LinearSite::Mlp);
        [&mut gate, &mut up].into_iter().for_each(|m| m.scale_columns(&s));
        ffn_norm.iter_mut().zip(&s).for_each(|(n, s)| *n /= s);
        let s = search("down", &[&down], LinearSite::MlpDown);
        down.scale_columns(&s);
        up.divide_rows(&s);
    }
    let norm = |name: String, values: &[f32]| {
        let tensor = OutTensor::f16(vec![h], values).map_err(|e| ModelError::Config { path: loader.path().into(), message: format!("`{name}` after AWQ scaling: {e}") })?;
        Ok::<_, ModelError>((name, tensor))
    };
    let mut tensors = vec![norm(format!("blk.{li}.attn_norm.weight"), &attn_norm)?, norm(format!("blk.{li}.ffn_norm.weight"), &ffn_norm)?];
    let sites = [(LinearSite::Attention, vec![&q, &k, &v]), (LinearSite::AttentionOutput, vec![&o]), (LinearSite::Mlp, vec![&gate, &up]), (LinearSite::MlpDown, vec![&down])];
    for (site, linears) in sites {
        let cols = linears[0].cols;
        let groups = match (opts.method, calibration) {
            (Method::Gptq, Some(cal)) if opts.desc_act => act_order_groups(cal.site(li, site).square_sum(), opts.group_size),
            _ => rtn::contiguous_groups(cols, opts.group_size),
        };
        for linear in linears {
            write_linear(li, linear, &groups, opts, &mut tensors)
                .map_err(|e| ModelError::Config { path: loader.path().into(), message: format!("blk.{li}.{}: {e}", linear.module) })?;
        }
    }
    Ok(LayerResult { tensors: tensors.into_iter().map(|(name, t)| (hf_name(&name).unwrap_or(name), t)).collect(), searched })
}

/// GPTQ's act order: features sorted by decreasing input energy, grouped in that order.
fn act_order_groups(energy: &[f64], group: usize) -> Vec<u32> {
    let mut order: Vec<usize> = (0..energy.len()).collect();
    order.sort_by(|&a, &b| energy[b].total_cmp(&energy[a]));
    let mut groups = vec![0u32; energy.len()];
    for (rank, &feature) in order.iter().enumerate() {
        groups[feature] = (rank / group) as u32;
    }
    groups
}

fn write_linear(li: usize, linear: &FloatLinear, groups: &[u32], opts: &QuantizeOptions, out: &mut Vec<(String, OutTensor)>) -> Result<(), String> {
    let prefix = format!("blk.{li}.{}", linear.module);
    let (format, zero) = match opts.method {
        Method::Rtn | Method::Awq => (Int4Format::Awq, Zero::Asymmetric),
        Method::Gptq => (Int4Format::Gptq { zero_offset: 1 }, if opts.symmetric { Zero::Symmetric } else { Zero::AsymmetricNonzero }),
    };
    let codes = rtn::quantize(&linear.w, linear.rows, linear.cols, groups, zero);
    let PackedTensors { qweight, qzeros, scales } = codes.pack(format);
    out.push((format!("{prefix}.qweight"), OutTensor::i32(qweight)));
    out.push((format!("{prefix}.qzeros"), OutTensor::i32(qzeros)));
    out.push((format!("{prefix}.scales"), OutTensor { dtype: safetensors::Dtype::F16, shape: scales.0, data: scales.1 }));
    if matches!(format, Int4Format::Gptq { .. }) {
        let g_idx = groups.iter().flat_map(|g| g.to_le_bytes()).collect();
        out.push((format!("{prefix}.g_idx"), OutTensor::i32((vec![groups.len()], g_idx))));
    }
    if let Some(bias) = &linear.bias {
        out.push((format!("{prefix}.bias"), OutTensor::f16(vec![bias.len()], bias)?));
    }
    Ok(())
}

