//! The inference engine: sampling, single-sequence generation, and the continuous-batching
//! engine (paged KV cache with prefix caching, scheduler, core thread, request streams).

pub mod bundle;
pub mod config;
pub mod constrain;
pub mod convert;
pub mod core;
pub mod decode;
pub mod generate;
pub mod handle;
pub mod kv;
pub mod metrics;
pub mod pace;
pub mod request;
pub mod sched;
pub mod quantize;
pub mod sample;
pub mod spec;
mod tensor_out;

pub use bundle::{ChatMessage, GenerationDefaults, LoadError, ModelBundle};
pub use generate::{budget, generate, Budget, MaxTokensPolicy, FinishReason, GenerateError, Generation, StopConditions, TokenEvent};
pub use sample::{Sampled, Sampler, SamplingParams};
pub use config::{EngineConfig, KvPlan};
pub use spec::SpecConfig;
pub use constrain::{Grammar, GrammarCompiler, GrammarError, TokenConstraint, Trigger};
pub use handle::{EngineHandle, EngineInfo, RequestStream};
pub use metrics::EngineMetrics;
pub use request::{EngineEvent, EngineRequest, Finished};
