//! Where a batch keeps its keys and values: the `KvStore` contract, and a contiguous
//! per-sequence cache (the engine's paged cache is the other implementation).

use half::f16;
use half::slice::HalfFloatSliceExt;

use hearth_kernels::attention::{ContiguousRows, KvRows};

use crate::config::ModelConfig;

/// Storage of keys and values for the sequences of one batch (indexed by their position in
/// the batch).
pub trait KvStore {
    type Rows<'a>: KvRows
    where
        Self: 'a;

    /// Stores key and value rows (f32, rounded to the storage type) for positions
    /// `start .. start + n` of batch sequence `seq` in `layer`.
    fn store(&mut self, layer: usize, seq: usize, start: usize, keys: &[f32], values: &[f32]);

    /// The stored rows of batch sequence `seq` in `layer`.
    fn rows(&self, layer: usize, seq: usize) -> Self::Rows<'_>;
}

/// The contiguous caches of a batch of sequences.
pub struct ContiguousBatch<'a, 'b>(pub &'a mut [&'b mut KvCache]);

impl KvStore for ContiguousBatch<'_, '_> {
    type Rows<'r>
        = ContiguousRows<'r>
    where
        Self: 'r;

    fn store(&mut self, layer: usize, seq: usize, start: usize, keys: &[f32], values: &[f32]) {
        let cache = &mut self.0[seq];
        debug_assert_eq!(start, cache.len());
        cache.layers[layer].append(keys, values);
    }

    fn rows(&self, layer: usize, seq: usize) -> ContiguousRows<'_> {
        let cache = &self.0[seq];
        let l = &cache.layers[layer];
        ContiguousRows { keys: &l.keys, values: &l.values, width: cache.kv_width }
    }
}

/// Keys and values of one layer, `len * kv_width` f16 values each (as vLLM and llama.cpp keep
/// them by default: half the memory of f32, and the reference numerics).
#[derive(Debug, Default, Clone)]
pub struct LayerKv {
    pub keys: Vec<f16>,
    pub values: Vec<f16>,
}

impl LayerKv {
    /// Appends rows of f32 keys and values, rounding them to f16.
    pub fn append(&mut self, keys: &[f32], values: &[f32]) {
        let (k0, v0) = (self.keys.len(), self.values.len());
        self.keys.resize(k0 + keys.len(), f16::ZERO);
        self.values.resize(v0 + values.len(), f16::ZERO);
        self.keys[k0..].convert_from_f32_slice(keys);
        self.values[v0..].convert_from_f32_slice(values);
    }
}

/// The cache of one sequence: every layer's keys and values for positions `0..len`.
#[derive(Debug, Clone)]
pub struct KvCache {
    layers: Vec<LayerKv>,
    kv_width: usize,
    len: usize,
}

impl KvCache {
    pub fn new(config: &ModelConfig) -> Self {
        KvCache { layers: vec![LayerKv::default(); config.n_layers], kv_width: config.kv_width(), len: 0 }
    }

    /// Number of positions stored.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn advance(&mut self, n: usize) {
        self.len += n;
        debug_assert!(self.layers.iter().all(|l| l.keys.len() == self.len * self.kv_width));
    }

    /// Bytes held by the cache.
    pub fn bytes(&self) -> usize {
        self.layers.iter().map(|l| (l.keys.capacity() + l.values.capacity()) * 2).sum()
    }
}
