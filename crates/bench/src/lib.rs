//! A serving benchmark for any OpenAI-compatible endpoint (like `vllm bench serve`): seeded
//! random prompts, fixed concurrency or Poisson arrivals, streaming requests, latency and
//! throughput statistics.

pub mod client;
pub mod dataset;
pub mod plot;
pub mod run;
pub mod soak;
pub mod soak_verdict;
pub mod spec_decode;
pub mod stats;
pub mod workloads;

pub use client::{RequestOutcome, StreamingClient};
pub use dataset::{load_jsonl, random_token_prompts, BenchPrompt, DatasetError, PromptBody};
pub use run::{run_benchmark, BenchConfig, Load};
pub use stats::{BenchReport, Percentiles};
