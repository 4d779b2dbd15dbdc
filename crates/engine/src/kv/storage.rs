//! The paged KV storage: one preallocated f16 region of fixed-size blocks per layer, read
//! and written through each sequence's block table.

use half::f16;
use half::slice::{HalfBitsSliceExt, HalfFloatSliceExt};
use hearth_kernels::attention::KvRows;
use hearth_model::{KvStore, ModelConfig};

use super::BlockId;

/// Keys and values of every block, layer-major: `[layer][block][slot][kv_width]`, as f16
/// bit patterns (allocated zeroed by the OS, so untouched blocks cost no resident memory and
/// startup does not write gigabytes).
pub struct PagedKv {
    n_blocks: usize,
    block_size: usize,
    kv_width: usize,
    keys: Vec<u16>,
    values: Vec<u16>,
}

impl PagedKv {
    /// Bytes one block takes (keys and values of all layers).
    pub fn bytes_per_block(config: &ModelConfig, block_size: usize) -> usize {
        config.kv_bytes_per_token() * block_size
    }

    pub fn new(config: &ModelConfig, n_blocks: usize, block_size: usize) -> Self {
        let len = config.n_layers * n_blocks * block_size * config.kv_width();
        PagedKv { n_blocks, block_size, kv_width: config.kv_width(), keys: vec![0u16; len], values: vec![0u16; len] }
    }

    fn offset(&self, layer: usize, table: &[BlockId], pos: usize) -> usize {
        let block = table[pos / self.block_size] as usize;
        debug_assert!(block < self.n_blocks);
        ((layer * self.n_blocks + block) * self.block_size + pos % self.block_size) * self.kv_width
    }
}

/// The block tables of one batch, in batch order, over the shared storage.
pub struct PagedBatch<'a> {
    pub kv: &'a mut PagedKv,
    pub tables: Vec<&'a [BlockId]>,
}

/// One sequence's rows in one layer.
pub struct PagedRows<'a> {
    kv: &'a PagedKv,
    layer: usize,
    table: &'a [BlockId],
}

impl KvRows for PagedRows<'_> {
    fn key_row(&self, pos: usize) -> &[f16] {
        let at = self.kv.offset(self.layer, self.table, pos);
        self.kv.keys[at..at + self.kv.kv_width].reinterpret_cast()
    }
    fn value_row(&self, pos: usize) -> &[f16] {
        let at = self.kv.offset(self.layer, self.table, pos);
        self.kv.values[at..at + self.kv.kv_width].reinterpret_cast()
    }
}

impl KvStore for PagedBatch<'_> {
    type Rows<'r>
        = PagedRows<'r>
    where
        Self: 'r;

    fn store(&mut self, layer: usize, seq: usize, start: usize, keys: &[f32], values: &[f32]) {
        let width = self.kv.kv_width;
        let table = self.tables[seq];
        for (i, (k, v)) in keys.chunks_exact(width).zip(values.chunks_exact(width)).enumerate() {
            let at = self.kv.offset(layer, table, start + i);
            self.kv.keys[at..at + width].reinterpret_cast_mut::<f16>().convert_from_f32_slice(k);
            self.kv.values[at..at + width].reinterpret_cast_mut::<f16>().convert_from_f32_slice(v);
        }
    }

    fn rows(&self, layer: usize, seq: usize) -> PagedRows<'_> {
        PagedRows { kv: self.kv, layer, table: self.tables[seq] }
    }
}
