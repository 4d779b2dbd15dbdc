//! Typed views of a model's tensors: quantized matrices left in place, small vectors as f32.

use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;

use crate::error::ModelError;
use crate::int4::{input_order, Int4Format, PackedInt4};
use crate::storage::TensorBytes;
use crate::tensors::{TensorEntry, TensorTable};
use hearth_kernels::interleaved::{self, GROUP_ROWS};
use hearth_kernels::{QMatrix, QuantType};

/// A weight matrix `rows x cols` kept in its stored (usually quantized) form.
#[derive(Clone)]
pub struct Weight {
    bytes: TensorBytes,
    dtype: QuantType,
    rows: usize,
    cols: usize,
    /// Stored as `hearth_kernels::interleaved` (16 rows side by side), repacked at load.
    interleaved: bool,
}

impl Weight {
    /// A weight in its stored layout; types with an interleaved form (Q4_0, Q4_1, Q8_0, Q4_K, Q6_K)
    /// are repacked once into it (the layout their fastest kernels read), and the mapped pages
    /// of the original are released, so the model holds one copy.
    fn new(bytes: TensorBytes, dtype: QuantType, rows: usize, cols: usize) -> Self {
        if !interleaved::interleavable(dtype) || !cols.is_multiple_of(dtype.block_len()) {
            return Weight { bytes, dtype, rows, cols, interleaved: false };
        }
        // piece by piece, each piece's source pages released at once, so that a large matrix
        // (Qwen's 191 MB output) is not resident twice while it is repacked
        const PIECE_BYTES: usize = 16 << 20;
        let mut packed = vec![0u8; interleaved::interleaved_len(dtype, rows, cols)];
        let (group_bytes, row_bytes) = (interleaved::group_len(dtype, cols), dtype.bytes_for(cols));
        let groups_per_piece = (PIECE_BYTES / group_bytes).max(1);
        for (piece, out) in packed.chunks_mut(groups_per_piece * group_bytes).enumerate() {
            let first_group = piece * groups_per_piece;
            interleaved::interleave_groups(dtype, rows, cols, bytes.as_slice(), first_group, out);
            let source_rows = first_group * GROUP_ROWS..((first_group + out.len() / group_bytes) * GROUP_ROWS).min(rows);
            bytes.release_range(source_rows.start * row_bytes..source_rows.end * row_bytes);
        }
        bytes.release_pages(); // the pages the pieces shared at their edges
        Weight { bytes: TensorBytes::owned(packed), dtype, rows, cols, interleaved: true }
    }

    pub fn matrix(&self) -> QMatrix<'_> {
        let (dtype, rows, cols, data) = (self.dtype, self.rows, self.cols, self.bytes.as_slice());
        let matrix = if self.interleaved { QMatrix::interleaved(dtype, rows, cols, data) } else { QMatrix::new(dtype, rows, cols, data) };
        matrix.expect("validated at load")
    }

    pub fn dtype(&self) -> QuantType {
        self.dtype
    }

    pub fn n_bytes(&self) -> usize {
        self.bytes.as_slice().len()
    }

    /// The whole matrix as f32, row-major.
    pub fn dequantize(&self) -> Vec<f32> {
        let matrix = self.matrix();
        let mut values = vec![0f32; self.rows * self.cols];
        for (r, row) in values.chunks_exact_mut(self.cols).enumerate() {
            matrix.dequantize_row(r, row);
        }
        values
    }
}

/// A linear layer: weight plus optional bias.
#[derive(Clone)]
pub struct Linear {
    pub weight: Weight,
    pub bias: Option<Vec<f32>>,
    /// The order in which the weight's columns take the input features, when it is not the
    /// natural one (GPTQ act-order checkpoints, regrouped at load): column `j` reads input
    /// feature `input_order[j]`.
    pub input_order: InputOrder,
}

/// Which input feature each weight column reads (`None`: the natural order).
pub type InputOrder = Option<Arc<[u32]>>;

impl Linear {
    /// An f32 layer from row-major values (unit tests).
    #[cfg(test)]
    pub(crate) fn f32_for_tests(rows: usize, cols: usize, values: Vec<f32>) -> Self {
        let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        Linear { weight: Weight::new(TensorBytes::owned(bytes), QuantType::F32, rows, cols), bias: None, input_order: None }
    }

    /// `out = x W^T (+ b)` for `m` rows of input.
    pub fn forward(&self, x: &[f32], m: usize, out: &mut Vec<f32>) {
        Linear::forward_many(&[self], x, m, &mut [out]);
    }

    /// Several layers over the same input; layers that read it in the same order are
    /// computed in one parallel region.
    pub fn forward_many(layers: &[&Linear], x: &[f32], m: usize, outs: &mut [&mut Vec<f32>]) {
        let mut start = 0;
        while start < layers.len() {
            let order = layers[start].input_order.as_deref();
            let same = layers[start..].iter().take_while(|l| l.input_order.as_deref() == order).count();
            let input = match order {
                None => Cow::Borrowed(x),
                Some(order) => Cow::Owned(gather_columns(x, m, order)),
            };
            Linear::forward_same_order(&layers[start..start + same], &input, m, &mut outs[start..start + same]);
            start += same;
        }
    }

    /// Layers over different inputs in one parallel region: `outs[i]` (sized by the caller) =
    /// `inputs[input_of[i]]` (`(x, m)`: m rows) through `layers[i]`. The layers read their
    /// input in the natural order (GGUF layers; a regrouped layer is gathered first).
    pub fn forward_inputs(layers: &[&Linear], inputs: &[(&[f32], usize)], input_of: &[usize], outs: &mut [&mut [f32]]) {
        let gathered: Vec<Option<Vec<f32>>> = layers
            .iter()
            .zip(input_of)
            .map(|(l, &i)| l.input_order.as_deref().map(|order| gather_columns(inputs[i].0, inputs[i].1, order)))
            .collect();
        if gathered.iter().any(Option::is_some) {
            // rare (act-order GPTQ experts): one region per layer, each over its own gathered input
            for (((layer, &i), own), out) in layers.iter().zip(input_of).zip(&gathered).zip(outs.iter_mut()) {
                let x = own.as_deref().unwrap_or(inputs[i].0);
                hearth_kernels::matmul_many(&[layer.weight.matrix()], x, inputs[i].1, &mut [&mut **out]);
                add_bias(layer, out);
            }
            return;
        }
        let mats: Vec<_> = layers.iter().map(|l| l.weight.matrix()).collect();
        hearth_kernels::matmul_inputs(inputs, &mats, input_of, outs);
        for (layer, out) in layers.iter().zip(outs.iter_mut()) {
            add_bias(layer, out);
        }
    }

    fn forward_same_order(layers: &[&Linear], x: &[f32], m: usize, outs: &mut [&mut Vec<f32>]) {
        let mats: Vec<_> = layers.iter().map(|l| l.weight.matrix()).collect();
        for (w, out) in mats.iter().zip(outs.iter_mut()) {
            out.resize(m * w.rows(), 0.0);
        }
        let mut slices: Vec<&mut [f32]> = outs.iter_mut().map(|o| o.as_mut_slice()).collect();
        hearth_kernels::matmul_many(&mats, x, m, &mut slices);
        for (layer, out) in layers.iter().zip(outs.iter_mut()) {
            add_bias(layer, out);
        }
    }

    pub fn out_features(&self) -> usize {
        self.weight.rows
    }
}

/// Adds the layer's bias (if any) to every output row.
fn add_bias(layer: &Linear, out: &mut [f32]) {
    if let Some(bias) = &layer.bias {
        for row in out.chunks_exact_mut(bias.len()) {
            hearth_kernels::ops::add_in_place(row, bias);
        }
    }
}

/// `m` rows of `x`, each with its features taken in `order`.
fn gather_columns(x: &[f32], m: usize, order: &[u32]) -> Vec<f32> {
    let cols = order.len();
    let mut out = Vec::with_capacity(m * cols);
    for row in x.chunks_exact(cols) {
        out.extend(order.iter().map(|&i| row[i as usize]));
    }
    out
}

/// Loads tensors from a model's tensor table with shape checks and errors naming the tensor.
pub struct WeightLoader<'a> {
    table: &'a TensorTable,
}

impl<'a> WeightLoader<'a> {
    pub fn new(table: &'a TensorTable) -> Self {
        WeightLoader { table }
    }

    pub fn path(&self) -> &Path {
        self.table.path()
    }

    pub fn has(&self, name: &str) -> bool {
        self.table.get(name).is_some()
    }

    fn info(&self, name: &str) -> Result<&'a TensorEntry, ModelError> {
        self.table.get(name).ok_or_else(|| ModelError::MissingTensor { path: self.path().into(), name: self.table.display_name(name) })
    }

    fn check_shape(&self, name: &str, info: &TensorEntry, expected: &[u64]) -> Result<(), ModelError> {
        if info.dims != expected {
            return Err(ModelError::BadShape {
                path: self.path().into(),
                name: self.table.display_name(name),
                found: info.dims.clone(),
                expected: expected.to_vec(),
            });
        }
        Ok(())
    }

    /// A matrix with `rows` output features over `cols` inputs (GGUF dims `[cols, rows]`).
    pub fn matrix(&self, name: &str, rows: usize, cols: usize) -> Result<Weight, ModelError> {
        let info = self.info(name)?;
        self.check_shape(name, info, &[cols as u64, rows as u64])?;
        let bytes = info.bytes.clone();
        QMatrix::new(info.dtype, rows, cols, bytes.as_slice()).map_err(|e| ModelError::UnsupportedType {
            path: self.path().into(),
            name: self.table.display_name(name),
            dtype: format!("{} ({e})", info.dtype),
            role: "a matrix product",
        })?;
        Ok(Weight::new(bytes, info.dtype, rows, cols))
    }

    /// The `count` matrices of a stacked tensor (GGUF dims `[cols, rows, count]`, one expert
    /// per outermost index), each `rows x cols` and repacked on its own as `matrix` does.
    pub fn stacked_matrices(&self, name: &str, count: usize, rows: usize, cols: usize) -> Result<Vec<Linear>, ModelError> {
        let info = self.info(name)?;
        self.check_shape(name, info, &[cols as u64, rows as u64, count as u64])?;
        let per_matrix = info.dtype.bytes_for(cols) * rows;
        let unsupported = |e: String| ModelError::UnsupportedType {
            path: self.path().into(),
            name: self.table.display_name(name),
            dtype: format!("{} ({e})", info.dtype),
            role: "a matrix product",
        };
        (0..count)
            .map(|i| {
                let bytes = info.bytes.slice(i * per_matrix..(i + 1) * per_matrix);
                QMatrix::new(info.dtype, rows, cols, bytes.as_slice()).map_err(|e| unsupported(e.to_string()))?;
                Ok(Linear { weight: Weight::new(bytes, info.dtype, rows, cols), bias: None, input_order: None })
            })
            .collect()
    }

    /// A vector the file may or may not have (None when absent; a wrong shape is an error).
    pub fn optional_vector(&self, name: &str, len: usize) -> Result<Option<Vec<f32>>, ModelError> {
        if self.has(name) { self.vector(name, len).map(Some) } else { Ok(None) }
    }

    /// A 1-D tensor of `len` values converted to f32 (norm weights, biases).
    pub fn vector(&self, name: &str, len: usize) -> Result<Vec<f32>, ModelError> {
        let info = self.info(name)?;
        self.check_shape(name, info, &[len as u64])?;
        let bytes = info.bytes.clone();
        let view = QMatrix::new(info.dtype, 1, len, bytes.as_slice()).map_err(|e| ModelError::UnsupportedType {
            path: self.path().into(),
            name: self.table.display_name(name),
            dtype: format!("{} ({e})", info.dtype),
            role: "a vector",
        })?;
        let mut out = vec![0f32; len];
        view.dequantize_row(0, &mut out);
        Ok(out)
    }

    /// A linear layer `prefix`: a plain `.weight`, or AWQ/GPTQ packed tensors (`.qweight`).
    pub fn linear(&self, prefix: &str, rows: usize, cols: usize, with_bias: bool) -> Result<Linear, ModelError> {
        let (weight, input_order) = if self.has(&format!("{prefix}.qweight")) {
            self.int4_matrix(prefix, rows, cols)?
        } else {
            (self.matrix(&format!("{prefix}.weight"), rows, cols)?, None)
        };
        let bias = if with_bias { Some(self.vector(&format!("{prefix}.bias"), rows)?) } else { None };
        Ok(Linear { weight, bias, input_order })
    }

    /// A raw tensor of `dtype` with dims (innermost first) checked.
    fn raw(&self, name: &str, dtype: QuantType, dims: &[usize]) -> Result<&'a [u8], ModelError> {
        let info = self.info(name)?;
        self.check_shape(name, info, &dims.iter().map(|&d| d as u64).collect::<Vec<_>>())?;
        if info.dtype != dtype {
            let role = if dtype == QuantType::I32 { "packed int4 codes (I32 expected)" } else { "int4 scales (F16 expected)" };
            return Err(ModelError::UnsupportedType { path: self.path().into(), name: self.table.display_name(name), dtype: info.dtype.to_string(), role });
        }
        Ok(info.bytes.as_slice())
    }

    /// An AWQ/GPTQ layer, repacked once into Q4_1 rows (see `int4`), with the input order
    /// it needs when its groups are scattered (act order).
    fn int4_matrix(&self, prefix: &str, rows: usize, cols: usize) -> Result<(Weight, InputOrder), ModelError> {
        let bad = |message: String| ModelError::Config { path: self.path().into(), message: format!("`{}`: {message}", self.table.display_name(&format!("{prefix}.qweight"))) };
        let scheme = self.table.int4().ok_or_else(|| bad("packed int4 weights, but config.json has no AWQ/GPTQ quantization_config".into()))?;
        if !rows.is_multiple_of(8) || !cols.is_multiple_of(32) {
            return Err(bad(format!("a {rows}x{cols} layer cannot be int4 (outputs must be a multiple of 8, inputs of 32)")));
        }
        let group = scheme.group_size.unwrap_or(cols);
        let n_groups = cols.div_ceil(group);
        let qweight_dims = match scheme.format {
            Int4Format::Awq => [rows / 8, cols],
            Int4Format::Gptq { .. } => [rows, cols / 8],
        };
        let qweight = self.raw(&format!("{prefix}.qweight"), QuantType::I32, &qweight_dims)?;
        let qzeros = self.raw(&format!("{prefix}.qzeros"), QuantType::I32, &[rows / 8, n_groups])?;
        let scales = self.raw(&format!("{prefix}.scales"), QuantType::F16, &[rows, n_groups])?;
        let g_idx = format!("{prefix}.g_idx");
        let groups: Vec<u32> = if matches!(scheme.format, Int4Format::Gptq { .. }) && self.has(&g_idx) {
            let bytes = self.raw(&g_idx, QuantType::I32, &[cols])?;
            let groups: Vec<u32> = bytes.chunks_exact(4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
            if let Some(g) = groups.iter().find(|&&g| g as usize >= n_groups) {
                return Err(bad(format!("g_idx names group {} but the layer has {n_groups}", *g as i32)));
            }
            groups
        } else {
            (0..cols).map(|i| (i / group) as u32).collect()
        };
        let order = input_order(&groups).map_err(|e| bad(format!("cannot be regrouped into blocks of 32: {e}")))?;
        let packed = PackedInt4 { format: scheme.format, rows, cols, qweight, qzeros, scales, groups: &groups };
        let weight = Weight::new(TensorBytes::owned(packed.to_q4_1(order.as_deref())), QuantType::Q4_1, rows, cols);
        for name in ["qweight", "qzeros", "scales"] {
            self.info(&format!("{prefix}.{name}"))?.bytes.release_pages();
        }
        Ok((weight, order.map(Arc::from)))
    }
}
