//! The inference engine: sampling and generation over a loaded model.

pub mod bundle;
pub mod config;
pub mod core;
pub mod decode;
pub mod generate;
pub mod handle;
pub mod kv;
pub mod metrics;
pub mod request;
pub mod sched;
pub mod sample;

pub use bundle::{ChatMessage, LoadError, ModelBundle};
pub use generate::{budget, generate, FinishReason, GenerateError, Generation, StopConditions, TokenEvent};
pub use sample::{Sampled, Sampler, SamplingParams};
pub use config::{EngineConfig, KvPlan};
pub use handle::{EngineHandle, EngineInfo, RequestStream};
pub use metrics::EngineMetrics;
pub use request::{EngineEvent, EngineRequest, Finished};
