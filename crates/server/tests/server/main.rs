//! The server's integration tests, one binary (one link of the dependency graph instead of
//! one per file). `hardening.rs` and `load.rs` stay binaries of their own: they judge how fast
//! the server answers under load, which other tests' inference in the same process would skew.

#[path = "../support/mod.rs"]
mod support;

mod acceptance_qwen;
mod agent_fixtures;
mod api;
mod context_end;
mod errors;
mod fim_qwen;
mod messages;
mod ollama;
mod openai_sdk;
mod responses;
mod qwen3_formats;
mod speculative;
mod stream_fixtures;
mod tools_qwen;
mod ui;
