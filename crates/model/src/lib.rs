//! Model files and forward passes: GGUF reading, weights in place, llama, qwen2 and qwen3 decoders.

pub mod config;
pub mod error;
pub mod gguf;
pub mod hf;
pub mod hf_cache;
pub mod int4;
pub mod kv;
pub mod llama;
pub mod moe;
pub mod qwen2;
pub mod qwen3;
pub mod storage;
pub mod tensors;
pub mod transformer;
pub mod weights;

pub use config::ModelConfig;
pub use error::{GgufError, GgufErrorKind, ModelError};
pub use gguf::{GgufFile, MetaValue, TensorInfo};
pub use kv::{ContiguousBatch, KvCache, KvStore};
pub use transformer::{BatchSpan, LinearInputObserver, LinearSite, LogitsWanted, Model, SeqSpan};
