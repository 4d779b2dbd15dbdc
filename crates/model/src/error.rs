//! Error types for model files: each names the file, the byte offset and what is wrong.

use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq)]
pub enum GgufErrorKind {
    Io(String),
    BadMagic(u32),
    UnsupportedVersion(u32),
    Truncated(String),
    UnknownTensorType { tensor: String, type_id: u32 },
    MissingKey(String),
    Invalid(String),
}

impl std::fmt::Display for GgufErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GgufErrorKind::Io(e) => write!(f, "cannot read file: {e}"),
            GgufErrorKind::BadMagic(m) => {
                write!(f, "not a GGUF file: wrong magic {:?} (expected \"GGUF\")", String::from_utf8_lossy(&m.to_le_bytes()))
            }
            GgufErrorKind::UnsupportedVersion(v) => write!(f, "unsupported GGUF version {v} (supported: 2, 3)"),
            GgufErrorKind::Truncated(what) => write!(f, "file is truncated: {what}"),
            GgufErrorKind::UnknownTensorType { tensor, type_id } => {
                write!(f, "tensor `{tensor}` has unknown tensor type id {type_id}")
            }
            GgufErrorKind::MissingKey(k) => write!(f, "missing metadata key `{k}`"),
            GgufErrorKind::Invalid(msg) => write!(f, "{msg}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{path}: at byte {offset}: {kind}")]
pub struct GgufError {
    pub path: PathBuf,
    pub offset: u64,
    pub kind: GgufErrorKind,
}

impl GgufError {
    pub fn new(path: &Path, offset: u64, kind: GgufErrorKind) -> Self {
        GgufError { path: path.to_path_buf(), offset, kind }
    }
}

/// Errors while building a model from a parsed file.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(transparent)]
    Gguf(#[from] GgufError),
    #[error("{path}: unsupported architecture `{arch}` (supported: {})", crate::config::supported_architectures())]
    UnsupportedArchitecture { path: PathBuf, arch: String },
    #[error("{path}: tensor `{name}` is missing")]
    MissingTensor { path: PathBuf, name: String },
    #[error("{path}: tensor `{name}` has shape {found:?}, expected {expected:?}")]
    BadShape { path: PathBuf, name: String, found: Vec<u64>, expected: Vec<u64> },
    #[error("{path}: tensor `{name}` has type {dtype}, which cannot be used for {role}")]
    UnsupportedType { path: PathBuf, name: String, dtype: String, role: &'static str },
    #[error("{path}: {message}")]
    Config { path: PathBuf, message: String },
}
