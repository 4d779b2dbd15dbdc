//! The inference engine: sampling and generation over a loaded model.

pub mod bundle;
pub mod generate;
pub mod kv;
pub mod sched;
pub mod sample;

pub use bundle::{ChatMessage, LoadError, ModelBundle};
pub use generate::{budget, generate, FinishReason, GenerateError, Generation, StopConditions, TokenEvent};
pub use sample::{Sampled, Sampler, SamplingParams};
