//! Usage recording off the request path: each finished request sends one record (key, public
//! model, backend, tokens) down a channel; a writer thread stores them and the key limits see
//! the tokens at once.

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::mpsc::UnboundedSender;

use crate::keys::KeyLimits;

/// One finished request's token counts.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageRecord {
    pub key_hash: Option<String>,
    pub model: String,
    pub backend: String,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

/// Where one request reports its usage.
#[derive(Clone, Default)]
pub struct UsageSink {
    tx: Option<UnboundedSender<UsageRecord>>,
    key: Option<(String, Arc<KeyLimits>)>,
}

impl UsageSink {
    pub fn none() -> Self {
        UsageSink::default()
    }

    pub fn new(tx: Option<UnboundedSender<UsageRecord>>, key: Option<(String, Arc<KeyLimits>)>) -> Self {
        UsageSink { tx, key }
    }

    /// Records a `usage` object: Chat Completions' (`prompt_tokens`, `completion_tokens`) or
    /// the Responses and Messages APIs' (`input_tokens`, `output_tokens`); ignored when absent.
    pub fn record(&self, model: &str, backend: &str, usage: &Value) {
        let count = |openai: &str, typed: &str| usage[openai].as_u64().or_else(|| usage[typed].as_u64());
        let (Some(prompt), Some(completion)) = (count("prompt_tokens", "input_tokens"), count("completion_tokens", "output_tokens")) else {
            return;
        };
        if let Some((_, limits)) = &self.key {
            limits.add_tokens(prompt + completion, std::time::Instant::now());
        }
        if let Some(tx) = &self.tx {
            let key_hash = self.key.as_ref().map(|(hash, _)| hash.clone());
            let record = UsageRecord { key_hash, model: model.into(), backend: backend.into(), prompt_tokens: prompt, completion_tokens: completion };
            let _ = tx.send(record);
        }
    }
}
