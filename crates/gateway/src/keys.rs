//! Virtual API keys in SQLite: creation (the key is shown once, only its SHA-256 is stored),
//! lookup, per-key limits (requests and tokens per minute, a token budget), and the usage table
//! the writer thread fills.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::{params, Connection, OptionalExtension};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::usage::UsageRecord;

pub const DB_FILE: &str = "gateway.db";

#[derive(Debug, thiserror::Error)]
#[error("key store {path}: {message}")]
pub struct KeyStoreError {
    pub path: String,
    pub message: String,
}

/// What a key may do. None: unlimited.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KeyPolicy {
    pub name: String,
    /// Total tokens (prompt + completion) the key may use.
    pub budget_tokens: Option<u64>,
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
}

/// A key's policy with its live counters.
pub struct KeyLimits {
    pub policy: KeyPolicy,
    state: Mutex<LimitState>,
}

struct LimitState {
    requests: VecDeque<Instant>,
    tokens: VecDeque<(Instant, u64)>,
    spent: u64,
}

/// Why a key may not send a request now.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    RateLimited(String),
    BudgetExceeded(String),
}

const MINUTE: Duration = Duration::from_secs(60);

impl KeyLimits {
    fn new(policy: KeyPolicy, spent: u64) -> Self {
        KeyLimits { policy, state: Mutex::new(LimitState { requests: VecDeque::new(), tokens: VecDeque::new(), spent }) }
    }

    /// Admits one request now, or says which limit it hits.
    pub fn admit(&self, now: Instant) -> Result<(), Refusal> {
        let mut s = self.state.lock().expect("limit lock");
        while s.requests.front().is_some_and(|&t| now.duration_since(t) >= MINUTE) {
            s.requests.pop_front();
        }
        while s.tokens.front().is_some_and(|&(t, _)| now.duration_since(t) >= MINUTE) {
            s.tokens.pop_front();
        }
        let p = &self.policy;
        if let Some(budget) = p.budget_tokens.filter(|&b| s.spent >= b) {
            return Err(Refusal::BudgetExceeded(format!("key `{}` has used its budget of {budget} tokens", p.name)));
        }
        if let Some(rpm) = p.rpm.filter(|&r| s.requests.len() as u64 >= r) {
            return Err(Refusal::RateLimited(format!("key `{}` is limited to {rpm} requests per minute", p.name)));
        }
        let recent: u64 = s.tokens.iter().map(|(_, n)| n).sum();
        if let Some(tpm) = p.tpm.filter(|&t| recent >= t) {
            return Err(Refusal::RateLimited(format!("key `{}` is limited to {tpm} tokens per minute", p.name)));
        }
        s.requests.push_back(now);
        Ok(())
    }

    pub fn add_tokens(&self, tokens: u64, now: Instant) {
        let mut s = self.state.lock().expect("limit lock");
        s.tokens.push_back((now, tokens));
        s.spent += tokens;
    }
}

/// The SQLite key and usage store, plus the limits of keys seen so far.
pub struct KeyStore {
    conn: Mutex<Connection>,
    path: String,
    limits: Mutex<HashMap<String, Arc<KeyLimits>>>,
}

pub fn hash_key(key: &str) -> String {
    Sha256::digest(key.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

impl KeyStore {
    pub fn open(path: &Path) -> Result<Self, KeyStoreError> {
        let shown = path.display().to_string();
        let err = |e: rusqlite::Error| KeyStoreError { path: shown.clone(), message: e.to_string() };
        let conn = Connection::open(path).map_err(err)?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL;
             CREATE TABLE IF NOT EXISTS keys (key_hash TEXT PRIMARY KEY, name TEXT NOT NULL, budget_tokens INTEGER,
                 rpm INTEGER, tpm INTEGER, created INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS usage (ts INTEGER NOT NULL, key_hash TEXT, model TEXT NOT NULL, backend TEXT NOT NULL,
                 prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL);
             CREATE INDEX IF NOT EXISTS usage_by_key ON usage(key_hash);",
        )
        .map_err(err)?;
        Ok(KeyStore { conn: Mutex::new(conn), path: shown, limits: Mutex::new(HashMap::new()) })
    }

    fn fail(&self, e: rusqlite::Error) -> KeyStoreError {
        KeyStoreError { path: self.path.clone(), message: e.to_string() }
    }

    /// Creates a key and returns it (shown once; only its hash is stored).
    pub fn create(&self, policy: &KeyPolicy) -> Result<String, KeyStoreError> {
        let key = format!("sk-hearth-{:032x}", rand::random::<u128>());
        let conn = self.conn.lock().expect("db lock");
        conn.execute(
            "INSERT INTO keys (key_hash, name, budget_tokens, rpm, tpm, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![hash_key(&key), policy.name, policy.budget_tokens, policy.rpm, policy.tpm, crate::unix_now()],
        )
        .map_err(|e| self.fail(e))?;
        Ok(key)
    }

    /// True when any key exists (then every API request needs one).
    pub fn has_keys(&self) -> bool {
        let conn = self.conn.lock().expect("db lock");
        conn.query_row("SELECT EXISTS(SELECT 1 FROM keys)", [], |r| r.get::<_, bool>(0)).unwrap_or(false)
    }

    /// The limits of `key`, or None if it is not a key.
    pub fn lookup(&self, key: &str) -> Option<(String, Arc<KeyLimits>)> {
        let hash = hash_key(key);
        if let Some(limits) = self.limits.lock().expect("limits lock").get(&hash) {
            return Some((hash, limits.clone()));
        }
        let conn = self.conn.lock().expect("db lock");
        let policy = conn
            .query_row("SELECT name, budget_tokens, rpm, tpm FROM keys WHERE key_hash = ?1", params![hash], |r| {
                Ok(KeyPolicy { name: r.get(0)?, budget_tokens: r.get(1)?, rpm: r.get(2)?, tpm: r.get(3)? })
            })
            .optional()
            .ok()??;
        let spent: u64 = conn
            .query_row("SELECT COALESCE(SUM(prompt_tokens + completion_tokens), 0) FROM usage WHERE key_hash = ?1", params![hash], |r| r.get(0))
            .unwrap_or(0);
        drop(conn);
        let limits = Arc::new(KeyLimits::new(policy, spent));
        self.limits.lock().expect("limits lock").insert(hash.clone(), limits.clone());
        Some((hash, limits))
    }

    /// Token totals per (key name, model, backend).
    pub fn usage_summary(&self) -> Result<Vec<(Option<String>, String, String, u64, u64)>, KeyStoreError> {
        let conn = self.conn.lock().expect("db lock");
        let mut stmt = conn
            .prepare(
                "SELECT k.name, u.model, u.backend, SUM(u.prompt_tokens), SUM(u.completion_tokens)
                 FROM usage u LEFT JOIN keys k ON k.key_hash = u.key_hash GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
            )
            .map_err(|e| self.fail(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
            .map_err(|e| self.fail(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.fail(e))
    }

    fn insert_usage(&self, records: &[UsageRecord]) -> Result<(), rusqlite::Error> {
        let mut conn = self.conn.lock().expect("db lock");
        let tx = conn.transaction()?;
        for r in records {
            tx.execute(
                "INSERT INTO usage (ts, key_hash, model, backend, prompt_tokens, completion_tokens) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![crate::unix_now(), r.key_hash, r.model, r.backend, r.prompt_tokens, r.completion_tokens],
            )?;
        }
        tx.commit()
    }
}

/// The writer: stores usage records as they come, in batches, until the channel closes.
pub async fn write_usage(store: Arc<KeyStore>, mut rx: UnboundedReceiver<UsageRecord>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
        }
        let store = store.clone();
        let result = tokio::task::spawn_blocking(move || store.insert_usage(&batch)).await;
        if let Ok(Err(e)) = result {
            tracing::error!("cannot record usage: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_count_requests_tokens_and_budget() {
        let limits = KeyLimits::new(KeyPolicy { name: "k".into(), budget_tokens: Some(100), rpm: Some(2), tpm: Some(50) }, 0);
        let t0 = Instant::now();
        assert!(limits.admit(t0).is_ok());
        assert!(limits.admit(t0).is_ok());
        assert!(matches!(limits.admit(t0), Err(Refusal::RateLimited(_))), "third request in the minute");
        assert!(limits.admit(t0 + Duration::from_secs(61)).is_ok(), "a new minute");
        limits.add_tokens(60, t0 + Duration::from_secs(61));
        assert!(matches!(limits.admit(t0 + Duration::from_secs(62)), Err(Refusal::RateLimited(m)) if m.contains("tokens")));
        limits.add_tokens(50, t0 + Duration::from_secs(100));
        assert!(matches!(limits.admit(t0 + Duration::from_secs(200)), Err(Refusal::BudgetExceeded(_))));
    }

    #[test]
    fn keys_are_stored_hashed_and_usage_is_summed() {
        let path = std::env::temp_dir().join(format!("hearth-keys-{}.db", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let store = KeyStore::open(&path).unwrap();
        assert!(!store.has_keys());
        let key = store.create(&KeyPolicy { name: "team-a".into(), rpm: Some(10), ..Default::default() }).unwrap();
        assert!(key.starts_with("sk-hearth-") && store.has_keys());
        let (hash, limits) = store.lookup(&key).unwrap();
        assert_eq!(limits.policy.rpm, Some(10));
        assert!(store.lookup("sk-hearth-wrong").is_none());
        let record = UsageRecord { key_hash: Some(hash), model: "m".into(), backend: "b".into(), prompt_tokens: 3, completion_tokens: 4 };
        store.insert_usage(&[record.clone(), record]).unwrap();
        assert_eq!(store.usage_summary().unwrap(), vec![(Some("team-a".into()), "m".into(), "b".into(), 6, 8)]);
        let text = std::fs::read(&path).unwrap();
        assert!(!String::from_utf8_lossy(&text).contains(&key), "the key itself is not stored");
        let _ = std::fs::remove_file(&path);
    }
}
