//! Read-only byte sources for weights: a memory-mapped file or an owned buffer.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use memmap2::Mmap;

/// Bytes that weights are read from; tensors borrow slices of it without copying.
pub enum ByteSource {
    Mapped(Mmap),
    Owned(Vec<u8>),
}

impl ByteSource {
    pub fn map_file(path: &Path) -> std::io::Result<Self> {
        let file = File::open(path)?;
        // SAFETY: the file is opened read-only and mapped private; model files are not
        // modified while being served (the same contract as llama.cpp and safetensors users).
        let map = unsafe { Mmap::map(&file)? };
        Ok(ByteSource::Mapped(map))
    }

    pub fn bytes(&self) -> &[u8] {
        match self {
            ByteSource::Mapped(m) => m,
            ByteSource::Owned(v) => v,
        }
    }
}

/// A tensor's bytes: a window into a shared source.
#[derive(Clone)]
pub struct TensorBytes {
    source: Arc<ByteSource>,
    offset: usize,
    len: usize,
}

impl TensorBytes {
    pub(crate) fn new(source: Arc<ByteSource>, offset: usize, len: usize) -> Self {
        debug_assert!(offset + len <= source.bytes().len());
        TensorBytes { source, offset, len }
    }

    /// Bytes made at load (a repacked weight), owned by the tensor alone.
    pub fn owned(bytes: Vec<u8>) -> Self {
        let len = bytes.len();
        TensorBytes { source: Arc::new(ByteSource::Owned(bytes)), offset: 0, len }
    }

    /// Bytes `range` of this tensor, as a tensor of their own (one expert of a stacked tensor).
    pub fn slice(&self, range: std::ops::Range<usize>) -> Self {
        assert!(range.end <= self.len, "a slice inside the tensor");
        TensorBytes { source: self.source.clone(), offset: self.offset + range.start, len: range.len() }
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.source.bytes()[self.offset..self.offset + self.len]
    }

    /// Tells the kernel the mapped pages wholly inside this tensor will not be read again
    /// (after it was repacked into its own buffer), so they stop counting as resident.
    pub fn release_pages(&self) {
        self.release_range(0..self.len);
    }

    /// `release_pages` for bytes `range` of this tensor only (pages wholly inside it).
    pub fn release_range(&self, range: std::ops::Range<usize>) {
        const PAGE: usize = 4096;
        debug_assert!(range.end <= self.len);
        if let ByteSource::Mapped(map) = &*self.source {
            let start = (self.offset + range.start).div_ceil(PAGE) * PAGE;
            let end = (self.offset + range.end) / PAGE * PAGE;
            if end > start {
                // SAFETY: the mapping is private and read-only, so dropping its pages loses
                // nothing (a later read would fault them in again from the file); the range
                // lies inside the mapping. An error (e.g. larger pages) only leaves them resident.
                let _ = unsafe { map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, start, end - start) };
            }
        }
    }
}
