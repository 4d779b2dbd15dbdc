//! Calibration: runs text through the model and keeps, for every linear layer's input, the
//! mean magnitude and energy of each feature over all tokens and an even sample of rows.

use hearth_model::{LinearInputObserver, LinearSite, Model, ModelError};

/// Statistics of one input site of one layer.
#[derive(Default, Clone)]
pub struct SiteStats {
    pub width: usize,
    /// Sum over tokens of |x| per feature.
    abs_sum: Vec<f64>,
    /// Sum over tokens of x^2 per feature (the diagonal of GPTQ's Hessian, up to a factor).
    square_sum: Vec<f64>,
    tokens: usize,
    /// Every `stride`-th row, row-major.
    pub sample: Vec<f32>,
}

impl SiteStats {
    pub fn mean_abs(&self) -> Vec<f32> {
        self.abs_sum.iter().map(|&s| (s / self.tokens.max(1) as f64) as f32).collect()
    }

    pub fn square_sum(&self) -> &[f64] {
        &self.square_sum
    }

    pub fn sample_rows(&self) -> usize {
        self.sample.len() / self.width.max(1)
    }

    fn add(&mut self, rows: &[f32], width: usize, stride: usize) {
        if self.width == 0 {
            *self = SiteStats { width, abs_sum: vec![0.0; width], square_sum: vec![0.0; width], ..SiteStats::default() };
        }
        for row in rows.chunks_exact(width) {
            for ((a, q), &x) in self.abs_sum.iter_mut().zip(self.square_sum.iter_mut()).zip(row) {
                *a += x.abs() as f64;
                *q += (x as f64) * (x as f64);
            }
            if self.tokens.is_multiple_of(stride) {
                self.sample.extend_from_slice(row);
            }
            self.tokens += 1;
        }
    }
}

/// The four input sites of every layer.
pub struct Calibration {
    stride: usize,
    widths: [usize; 4],
    layers: Vec<[SiteStats; 4]>,
}

fn site_index(site: LinearSite) -> usize {
    match site {
        LinearSite::Attention => 0,
        LinearSite::AttentionOutput => 1,
        LinearSite::Mlp => 2,
        LinearSite::MlpDown => 3,
    }
}

impl LinearInputObserver for Calibration {
    fn observe(&mut self, layer: usize, site: LinearSite, rows: &[f32]) {
        let i = site_index(site);
        let width = self.widths[i];
        self.layers[layer][i].add(rows, width, self.stride);
    }
}

impl Calibration {
    pub fn site(&self, layer: usize, site: LinearSite) -> &SiteStats {
        &self.layers[layer][site_index(site)]
    }
}

/// Runs `tokens` through `model` in sequences of `chunk` tokens, keeping about `sample_rows`
/// rows of every site.
pub fn calibrate(model: &Model, tokens: &[u32], chunk: usize, sample_rows: usize) -> Result<Calibration, ModelError> {
    let c = model.config();
    let widths = [c.hidden, c.n_heads * c.head_dim, c.hidden, c.ffn_hidden];
    let stride = (tokens.len() / sample_rows.max(1)).max(1);
    let mut calibration = Calibration { stride, widths, layers: vec![Default::default(); c.n_layers] };
    for piece in tokens.chunks(chunk.max(1)) {
        model.observe_linear_inputs(piece, &mut calibration)?;
    }
    Ok(calibration)
}
