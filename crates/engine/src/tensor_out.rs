//! Tensors to be written to a safetensors file: a dtype, a shape and little-endian bytes.

use std::borrow::Cow;

use half::f16;

pub struct OutTensor {
    pub dtype: safetensors::Dtype,
    pub shape: Vec<usize>,
    pub data: Vec<u8>,
}

impl OutTensor {
    /// `values` as f16; a value that f16 cannot hold is an error (never silently clamped).
    pub fn f16(shape: Vec<usize>, values: &[f32]) -> Result<Self, String> {
        if let Some(v) = values.iter().find(|v| !v.is_finite() || v.abs() > f16::MAX.to_f32()) {
            return Err(format!("value {v} does not fit in f16"));
        }
        Ok(OutTensor { dtype: safetensors::Dtype::F16, shape, data: values.iter().flat_map(|&v| f16::from_f32(v).to_le_bytes()).collect() })
    }

    pub fn i32((shape, data): (Vec<usize>, Vec<u8>)) -> Self {
        OutTensor { dtype: safetensors::Dtype::I32, shape, data }
    }
}

impl safetensors::View for &OutTensor {
    fn dtype(&self) -> safetensors::Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}
