//! The gateway's integration tests, one binary (one link of the dependency graph instead of
//! one per file); `leaks.rs` stays a binary of its own because it counts the process's open
//! files and tasks.

#[path = "../support/mod.rs"]
mod support;

mod affinity;
mod config;
mod hardening;
mod hearth_failover;
mod replicas;
mod routing;
mod status;
mod trial;
mod typed_apis;
