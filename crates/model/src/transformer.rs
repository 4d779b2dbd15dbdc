//! The decoder forward pass shared by llama, qwen2 and qwen3, over a flattened batch of token spans.

use std::path::Path;
use std::sync::Arc;

use hearth_kernels::attention::{attention_batch, AttentionItem, HeadShape};
use hearth_kernels::ops::{add_in_place, rms_norm_rows, Rope};

use crate::config::ModelConfig;
use crate::error::ModelError;
use crate::gguf::GgufFile;
use crate::kv::{ContiguousBatch, KvCache, KvStore};
use crate::moe::{DenseFfn, FeedForward, FfnScratch, MoeFfn};
use crate::tensors::TensorTable;
use crate::weights::{Linear, Weight, WeightLoader};

struct Layer {
    attn_norm: Vec<f32>,
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    /// Per-head RMSNorm weights of q and k, applied before RoPE (qwen3), where the file has them.
    q_norm: Option<Vec<f32>>,
    k_norm: Option<Vec<f32>>,
    ffn_norm: Vec<f32>,
    /// Dense or a mixture of experts, as the file says.
    ffn: Box<dyn FeedForward>,
}

/// Which logits a span wants back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogitsWanted {
    /// None (a prefill chunk that is not the last).
    None,
    /// The last token's only (decoding).
    Last,
    /// Every token's (scoring, perplexity).
    All,
}

/// One sequence's share of a batch: new tokens, appended after what its cache holds.
pub struct SeqSpan<'a> {
    pub tokens: &'a [u32],
    pub cache: &'a mut KvCache,
    pub logits: LogitsWanted,
}

/// One sequence's share of a batch over any `KvStore`: `tokens` go at positions
/// `start .. start + tokens.len()`.
#[derive(Debug, Clone, Copy)]
pub struct BatchSpan<'a> {
    pub tokens: &'a [u32],
    pub start: usize,
    pub logits: LogitsWanted,
}

/// Where a linear layer's input is taken, for calibration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinearSite {
    /// The normed residual read by q, k and v.
    Attention,
    /// The attention output read by o.
    AttentionOutput,
    /// The normed residual read by gate and up.
    Mlp,
    /// `silu(gate) * up`, read by down.
    MlpDown,
}

/// Receives the input rows of every linear layer during a forward pass (quantization
/// calibration): `rows` holds whole rows of the site's width.
pub trait LinearInputObserver: Send {
    fn observe(&mut self, layer: usize, site: LinearSite, rows: &[f32]);

    /// A mixture-of-experts layer's choices: each token's experts, best first.
    fn routed(&mut self, _layer: usize, _experts: &[Vec<u32>]) {}
}

type Observer<'o> = Option<&'o mut (dyn LinearInputObserver + 'static)>;

/// A loaded model: weights borrowed from the mapped file.
pub struct Model {
    config: ModelConfig,
    file: Option<Arc<GgufFile>>,
    /// Where the weights came from (for error messages).
    path: std::path::PathBuf,
    embed: Weight,
    layers: Vec<Layer>,
    output_norm: Vec<f32>,
    /// `None` when the output projection is tied to the embedding.
    output: Option<Linear>,
    rope: Rope,
    /// Activation buffers kept between passes, so steady-state steps allocate (and fault in)
    /// no fresh pages.
    scratch: std::sync::Mutex<Scratch>,
}

impl Model {
    /// Opens a GGUF file and builds the model over its mapping.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ModelError> {
        let file = Arc::new(GgufFile::open(path)?);
        Self::from_gguf(file)
    }

    /// Opens a Hugging Face directory (config.json and bf16/f16/f32 safetensors, mapped).
    pub fn load_dir(dir: impl AsRef<Path>) -> Result<Self, ModelError> {
        let dir = dir.as_ref();
        let (config, int4) = crate::hf::read_config(dir)?;
        let table = crate::hf::read_tensors(dir)?.with_int4(int4);
        Self::from_table(config, &table, None)
    }

    pub fn from_gguf(file: Arc<GgufFile>) -> Result<Self, ModelError> {
        let config = ModelConfig::from_gguf(&file)?;
        let table = TensorTable::from_gguf(&file);
        Self::from_table(config, &table, Some(file))
    }

    /// Builds the model from tensors with GGUF names (from any file format).
    pub fn from_table(config: ModelConfig, table: &TensorTable, file: Option<Arc<GgufFile>>) -> Result<Self, ModelError> {
        let w = WeightLoader::new(table);
        let (h, kvw, qw) = (config.hidden, config.kv_width(), config.n_heads * config.head_dim);
        let bias = config.arch.qkv_bias;
        let layers = (0..config.n_layers)
            .map(|i| {
                let p = format!("blk.{i}");
                let q_norm = w.optional_vector(&format!("{p}.attn_q_norm.weight"), config.head_dim)?;
                let k_norm = w.optional_vector(&format!("{p}.attn_k_norm.weight"), config.head_dim)?;
                if q_norm.is_some() != k_norm.is_some() {
                    let message = format!("layer {i} has a norm for only one of q and k (attn_q_norm, attn_k_norm)");
                    return Err(ModelError::Config { path: table.path().to_path_buf(), message });
                }
                Ok(Layer {
                    attn_norm: w.vector(&format!("{p}.attn_norm.weight"), h)?,
                    q: w.linear(&format!("{p}.attn_q"), qw, h, bias)?,
                    k: w.linear(&format!("{p}.attn_k"), kvw, h, bias)?,
                    v: w.linear(&format!("{p}.attn_v"), kvw, h, bias)?,
                    o: w.linear(&format!("{p}.attn_output"), h, qw, false)?,
                    q_norm,
                    k_norm,
                    ffn_norm: w.vector(&format!("{p}.ffn_norm.weight"), h)?,
                    ffn: feed_forward(&w, &config, &p)?,
                })
            })
            .collect::<Result<Vec<_>, ModelError>>()?;
        let output = if w.has("output.weight") { Some(w.linear("output", config.vocab_size, h, false)?) } else { None };
        let rope = match w.optional_vector("rope_freqs.weight", config.head_dim / 2)? {
            Some(factors) => config.rope().with_freq_factors(&factors),
            None => config.rope(),
        };
        Ok(Model {
            embed: w.matrix("token_embd.weight", config.vocab_size, h)?,
            output_norm: w.vector("output_norm.weight", h)?,
            layers,
            output,
            rope,
            config,
            file,
            path: table.path().to_path_buf(),
            scratch: std::sync::Mutex::new(Scratch::default()),
        })
    }

    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// Weight bytes a decode step reads for one token: every layer's attention matrices and
    /// active feed-forward weights, and the output projection (the embedding when tied).
    pub fn active_weight_bytes(&self) -> u64 {
        let layers: usize = self.layers.iter().map(|l| [&l.q, &l.k, &l.v, &l.o].iter().map(|m| m.weight.n_bytes()).sum::<usize>() + l.ffn.active_bytes()).sum();
        let output = self.output.as_ref().map_or(self.embed.n_bytes(), |o| o.weight.n_bytes());
        (layers + output) as u64
    }

    /// One line for the startup log: architecture, layers, experts, parameters.
    pub fn describe(&self) -> String {
        let c = &self.config;
        let (all, active) = c.parameter_counts(self.output.is_none());
        let billions = |n: u64| format!("{:.2}B", n as f64 / 1e9);
        let mut line = format!("architecture {}: {} layers, hidden {}, {} query / {} KV heads of {}", c.arch.name, c.n_layers, c.hidden, c.n_heads, c.n_kv_heads, c.head_dim);
        match c.moe {
            Some(m) => line.push_str(&format!(", {} experts ({} per token, width {}); {} parameters, {} active per token", m.experts, m.used, m.expert_ffn, billions(all), billions(active))),
            None => line.push_str(&format!("; {} parameters", billions(all))),
        }
        line
    }

    /// The GGUF file the model came from, if it came from one.
    pub fn gguf(&self) -> Option<&Arc<GgufFile>> {
        self.file.as_ref()
    }

    /// A fresh, empty cache for one sequence.
    pub fn new_cache(&self) -> KvCache {
        KvCache::new(&self.config)
    }

    /// Bytes of weights the model reads (quantized, as stored).
    pub fn weight_bytes(&self) -> usize {
        let linears = self.layers.iter().flat_map(|l| [&l.q, &l.k, &l.v, &l.o].into_iter().chain(l.ffn.linears()));
        linears.chain(self.output.as_ref()).map(|l| l.weight.n_bytes()).sum::<usize>() + self.embed.n_bytes()
    }

    /// Runs every span's new tokens through the model in one batch and appends their keys and
    /// values to the spans' caches. Returns, per span, the logits it asked for (row-major,
    /// `vocab_size` per row).
    pub fn forward(&self, spans: &mut [SeqSpan<'_>]) -> Result<Vec<Vec<f32>>, ModelError> {
        let batch: Vec<BatchSpan<'_>> =
            spans.iter().map(|s| BatchSpan { tokens: s.tokens, start: s.cache.len(), logits: s.logits }).collect();
        let mut caches: Vec<&mut KvCache> = spans.iter_mut().map(|s| &mut *s.cache).collect();
        let logits = self.forward_batch(&batch, &mut ContiguousBatch(&mut caches))?;
        for (cache, span) in caches.iter_mut().zip(&batch) {
            cache.advance(span.tokens.len());
        }
        Ok(logits)
    }

    /// The batched forward pass over any KV storage: every linear layer is one matrix
    /// product over all tokens of all spans; attention reads each span's own rows.
    pub fn forward_batch<S: KvStore + Send>(&self, spans: &[BatchSpan<'_>], kv: &mut S) -> Result<Vec<Vec<f32>>, ModelError> {
        self.forward_observed(spans, kv, None)
    }

    /// Runs `tokens` as one fresh sequence and shows `observer` every linear layer's input.
    pub fn observe_linear_inputs(&self, tokens: &[u32], observer: &mut (dyn LinearInputObserver + 'static)) -> Result<(), ModelError> {
        let mut cache = self.new_cache();
        let span = BatchSpan { tokens, start: 0, logits: LogitsWanted::None };
        self.forward_observed(&[span], &mut ContiguousBatch(&mut [&mut cache]), Some(observer))?;
        Ok(())
    }

    fn forward_observed<S: KvStore + Send>(&self, spans: &[BatchSpan<'_>], kv: &mut S, mut observer: Observer<'_>) -> Result<Vec<Vec<f32>>, ModelError> {
        self.check_tokens(spans)?;
        hearth_kernels::threads::install(|| {
            let c = &self.config;
            let total: usize = spans.iter().map(|s| s.tokens.len()).sum();
            let mut guard = self.scratch.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let scratch = &mut *guard;
            let mut x = std::mem::take(&mut scratch.x);
            x.resize(total * c.hidden, 0.0);
            let embed = self.embed.matrix();
            for (row, &tok) in x.chunks_exact_mut(c.hidden).zip(spans.iter().flat_map(|s| s.tokens)) {
                embed.dequantize_row(tok as usize, row);
            }
            for (li, layer) in self.layers.iter().enumerate() {
                self.attention_block(li, layer, &mut x, spans, kv, scratch, observer.as_deref_mut());
                self.ffn_block(li, layer, &mut x, total, scratch, observer.as_deref_mut());
            }
            let logits = self.logits(&x, spans);
            scratch.x = x;
            Ok(logits)
        })
    }

    fn check_tokens(&self, spans: &[BatchSpan<'_>]) -> Result<(), ModelError> {
        let vocab = self.config.vocab_size;
        match spans.iter().flat_map(|s| s.tokens).find(|&&t| t as usize >= vocab) {
            Some(bad) => Err(ModelError::Config {
                path: self.path.clone(),
                message: format!("token id {bad} is out of range (vocabulary has {vocab} tokens)"),
            }),
            None => Ok(()),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn attention_block<S: KvStore>(
        &self,
        li: usize,
        layer: &Layer,
        x: &mut [f32],
        spans: &[BatchSpan<'_>],
        kv: &mut S,
        s: &mut Scratch,
        mut observer: Observer<'_>,
    ) {
        let c = &self.config;
        let total = x.len() / c.hidden;
        let shape = HeadShape { n_heads: c.n_heads, n_kv_heads: c.n_kv_heads, head_dim: c.head_dim };
        let (qw, kvw) = (shape.q_width(), shape.kv_width());
        s.normed.clear();
        s.normed.extend_from_slice(x);
        rms_norm_rows(&mut s.normed, &layer.attn_norm, c.rms_eps);
        if let Some(o) = observer.as_deref_mut() {
            o.observe(li, LinearSite::Attention, &s.normed);
        }
        Linear::forward_many(&[&layer.q, &layer.k, &layer.v], &s.normed, total, &mut [&mut s.q, &mut s.k, &mut s.v]);
        if let (Some(q_norm), Some(k_norm)) = (&layer.q_norm, &layer.k_norm) {
            rms_norm_rows(&mut s.q[..total * qw], q_norm, c.rms_eps);
            rms_norm_rows(&mut s.k[..total * kvw], k_norm, c.rms_eps);
        }
        s.attn.resize(total * qw, 0.0);
        let mut row = 0;
        for (seq, span) in spans.iter().enumerate() {
            for i in 0..span.tokens.len() {
                let r = row + i;
                self.rope.apply(&mut s.q[r * qw..(r + 1) * qw], span.start + i, &mut s.cos_sin);
                self.rope.apply(&mut s.k[r * kvw..(r + 1) * kvw], span.start + i, &mut s.cos_sin);
            }
            let rows = row * kvw..(row + span.tokens.len()) * kvw;
            kv.store(li, seq, span.start, &s.k[rows.clone()], &s.v[rows]);
            row += span.tokens.len();
        }
        let all_rows: Vec<S::Rows<'_>> = (0..spans.len()).map(|seq| kv.rows(li, seq)).collect();
        let mut items = Vec::with_capacity(spans.len());
        let (mut q_rest, mut out_rest) = (&s.q[..], &mut s.attn[..]);
        for (span, rows) in spans.iter().zip(&all_rows) {
            let n = span.tokens.len() * qw;
            let (q, q_tail) = q_rest.split_at(n);
            let (out, out_tail) = std::mem::take(&mut out_rest).split_at_mut(n);
            (q_rest, out_rest) = (q_tail, out_tail);
            items.push(AttentionItem { q, kv: rows, start: span.start, out });
        }
        attention_batch(shape, &mut items);
        drop(items);
        if let Some(o) = observer {
            o.observe(li, LinearSite::AttentionOutput, &s.attn);
        }
        layer.o.forward(&s.attn, total, &mut s.out);
        add_in_place(x, &s.out);
    }

    fn ffn_block(&self, li: usize, layer: &Layer, x: &mut [f32], total: usize, s: &mut Scratch, observer: Observer<'_>) {
        s.normed.clear();
        s.normed.extend_from_slice(x);
        rms_norm_rows(&mut s.normed, &layer.ffn_norm, self.config.rms_eps);
        match (observer, layer.ffn.dense()) {
            (Some(o), Some(dense)) => {
                o.observe(li, LinearSite::Mlp, &s.normed);
                let hidden = dense.hidden_activations(&s.normed, total, &mut s.ffn);
                o.observe(li, LinearSite::MlpDown, hidden);
                dense.down.forward(hidden, total, &mut s.out);
            }
            (Some(o), None) => {
                let mut routes = Vec::with_capacity(total);
                layer.ffn.forward(&s.normed, total, &mut s.out, &mut s.ffn, Some(&mut routes));
                o.routed(li, &routes);
            }
            (None, _) => layer.ffn.forward(&s.normed, total, &mut s.out, &mut s.ffn, None),
        }
        add_in_place(x, &s.out);
    }

    /// Final norm and output projection, only for the rows that spans asked for.
    fn logits(&self, x: &[f32], spans: &[BatchSpan<'_>]) -> Vec<Vec<f32>> {
        let (h, vocab) = (self.config.hidden, self.config.vocab_size);
        // the wanted rows of every span, gathered for ONE product with the output matrix
        let mut row = 0;
        let mut counts = Vec::with_capacity(spans.len());
        let mut hidden = Vec::new();
        for span in spans {
            let n = span.tokens.len();
            let rows = match span.logits {
                LogitsWanted::None => row + n..row + n,
                LogitsWanted::Last => (row + n).saturating_sub(1).max(row)..row + n,
                LogitsWanted::All => row..row + n,
            };
            row += n;
            hidden.extend_from_slice(&x[rows.start * h..rows.end * h]);
            counts.push(rows.len());
        }
        let total: usize = counts.iter().sum();
        let mut logits = Vec::new();
        if total > 0 {
            rms_norm_rows(&mut hidden, &self.output_norm, self.config.rms_eps);
            match &self.output {
                Some(linear) => linear.forward(&hidden, total, &mut logits),
                None => {
                    logits.resize(total * vocab, 0.0);
                    self.embed.matrix().matmul(&hidden, total, &mut logits);
                }
            }
        }
        let mut rest = logits.as_slice();
        counts
            .into_iter()
            .map(|n| {
                let (mine, tail) = rest.split_at(n * vocab);
                rest = tail;
                mine.to_vec()
            })
            .collect()
    }
}

/// Activation buffers reused across the layers of one forward pass.
#[derive(Default)]
struct Scratch {
    x: Vec<f32>,
    normed: Vec<f32>,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    attn: Vec<f32>,
    out: Vec<f32>,
    ffn: FfnScratch,
    cos_sin: Vec<(f32, f32)>,
}

/// A layer's feed-forward: a mixture of experts where the config has one, else dense SwiGLU.
fn feed_forward(w: &WeightLoader<'_>, config: &ModelConfig, prefix: &str) -> Result<Box<dyn FeedForward>, ModelError> {
    let h = config.hidden;
    let Some(moe) = config.moe else {
        let (gate, up) = (w.linear(&format!("{prefix}.ffn_gate"), config.ffn_hidden, h, false)?, w.linear(&format!("{prefix}.ffn_up"), config.ffn_hidden, h, false)?);
        let down = w.linear(&format!("{prefix}.ffn_down"), h, config.ffn_hidden, false)?;
        return Ok(Box::new(DenseFfn { gate, up, down }));
    };
    let stacked = |name: &str, rows: usize, cols: usize| w.stacked_matrices(&format!("{prefix}.{name}.weight"), moe.experts, rows, cols);
    let gates = stacked("ffn_gate_exps", moe.expert_ffn, h)?;
    let ups = stacked("ffn_up_exps", moe.expert_ffn, h)?;
    let downs = stacked("ffn_down_exps", h, moe.expert_ffn)?;
    let experts = gates.into_iter().zip(ups).zip(downs).map(|((gate, up), down)| DenseFfn { gate, up, down }).collect();
    let router = w.linear(&format!("{prefix}.ffn_gate_inp"), moe.experts, h, false)?;
    Ok(Box::new(MoeFfn { router, experts, used: moe.used, normalize: moe.normalize }))
}
