//! A model's tensors by GGUF-style name, whatever file format they came from: each entry is a
//! dtype, dims (GGUF order: innermost first) and a window of mapped bytes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use hearth_kernels::QuantType;

use crate::gguf::GgufFile;
use crate::int4::Int4Scheme;
use crate::storage::TensorBytes;

/// One tensor: type, dims (innermost first), bytes.
#[derive(Clone)]
pub struct TensorEntry {
    pub dtype: QuantType,
    pub dims: Vec<u64>,
    pub bytes: TensorBytes,
}

/// Every tensor of a model, by GGUF name; `path` names the source in errors, and
/// `source_name` gives a tensor's name as its own file spells it.
pub struct TensorTable {
    path: PathBuf,
    tensors: HashMap<String, TensorEntry>,
    source_name: fn(&str) -> Option<String>,
    /// How packed int4 layers (`*.qweight`) are to be read, for AWQ/GPTQ checkpoints.
    int4: Option<Int4Scheme>,
}

impl TensorTable {
    pub fn new(path: PathBuf, tensors: HashMap<String, TensorEntry>, source_name: fn(&str) -> Option<String>) -> Self {
        TensorTable { path, tensors, source_name, int4: None }
    }

    /// The name to show in errors: the file's own name for the tensor.
    pub fn display_name(&self, gguf_name: &str) -> String {
        (self.source_name)(gguf_name).unwrap_or_else(|| gguf_name.to_string())
    }

    /// The tensors of a GGUF file (borrowing its mapping).
    pub fn from_gguf(file: &GgufFile) -> Self {
        let tensors = file
            .tensors()
            .map(|info| (info.name.clone(), TensorEntry { dtype: info.dtype, dims: info.dims.clone(), bytes: file.tensor_bytes(info) }))
            .collect();
        TensorTable { path: file.path().to_path_buf(), tensors, source_name: |_| None, int4: None }
    }

    /// The same table, its packed int4 layers read with `scheme`.
    pub fn with_int4(self, scheme: Option<Int4Scheme>) -> Self {
        TensorTable { int4: scheme, ..self }
    }

    pub fn int4(&self) -> Option<Int4Scheme> {
        self.int4
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn get(&self, name: &str) -> Option<&TensorEntry> {
        self.tensors.get(name)
    }
}
