//! Typed views of a model's tensors: quantized matrices left in place, small vectors as f32.

use std::path::Path;

use crate::error::ModelError;
use crate::storage::TensorBytes;
use crate::tensors::{TensorEntry, TensorTable};
use hearth_kernels::{QMatrix, QuantType};

/// A weight matrix `rows x cols` kept in its stored (usually quantized) form.
#[derive(Clone)]
pub struct Weight {
    bytes: TensorBytes,
    dtype: QuantType,
    rows: usize,
    cols: usize,
}

impl Weight {
    pub fn matrix(&self) -> QMatrix<'_> {
        QMatrix::new(self.dtype, self.rows, self.cols, self.bytes.as_slice()).expect("validated at load")
    }

    pub fn dtype(&self) -> QuantType {
        self.dtype
    }

    pub fn n_bytes(&self) -> usize {
        self.bytes.as_slice().len()
    }
}

/// A linear layer: weight plus optional bias.
#[derive(Clone)]
pub struct Linear {
    pub weight: Weight,
    pub bias: Option<Vec<f32>>,
}

impl Linear {
    /// `out = x W^T (+ b)` for `m` rows of input.
    pub fn forward(&self, x: &[f32], m: usize, out: &mut Vec<f32>) {
        Linear::forward_many(&[self], x, m, &mut [out]);
    }

    /// Several layers over the same input, computed in one parallel region.
    pub fn forward_many(layers: &[&Linear], x: &[f32], m: usize, outs: &mut [&mut Vec<f32>]) {
        let mats: Vec<_> = layers.iter().map(|l| l.weight.matrix()).collect();
        for (w, out) in mats.iter().zip(outs.iter_mut()) {
            out.resize(m * w.rows(), 0.0);
        }
        let mut slices: Vec<&mut [f32]> = outs.iter_mut().map(|o| o.as_mut_slice()).collect();
        hearth_kernels::matmul_many(&mats, x, m, &mut slices);
        for (layer, out) in layers.iter().zip(outs.iter_mut()) {
            if let Some(bias) = &layer.bias {
                for row in out.chunks_exact_mut(bias.len()) {
                    hearth_kernels::ops::add_in_place(row, bias);
                }
            }
        }
    }

    pub fn out_features(&self) -> usize {
        self.weight.rows
    }
}

/// Loads tensors from a model's tensor table with shape checks and errors naming the tensor.
pub struct WeightLoader<'a> {
    table: &'a TensorTable,
}

impl<'a> WeightLoader<'a> {
    pub fn new(table: &'a TensorTable) -> Self {
        WeightLoader { table }
    }

    fn path(&self) -> &Path {
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
        Ok(Weight { bytes, dtype: info.dtype, rows, cols })
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

    pub fn linear(&self, prefix: &str, rows: usize, cols: usize, with_bias: bool) -> Result<Linear, ModelError> {
        let weight = self.matrix(&format!("{prefix}.weight"), rows, cols)?;
        let bias = if with_bias { Some(self.vector(&format!("{prefix}.bias"), rows)?) } else { None };
        Ok(Linear { weight, bias })
    }
}
