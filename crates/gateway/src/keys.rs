//! Virtual API keys (SQLite by default, Postgres by URL): creation (the key is shown once, only its SHA-256 is stored),
//! lookup, per-key limits (requests and tokens per minute, a token budget), and the usage table
//! the writer thread fills.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::keys_db::{KeyDb, UsageRow};
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

/// The key and usage store (SQLite file or Postgres URL) plus the limits of keys seen so far.
pub struct KeyStore {
    db: KeyDb,
    location: String,
    limits: Mutex<HashMap<String, Arc<KeyLimits>>>,
    /// Whether any key exists, and when that was last asked (keys may be created elsewhere).
    any_key: Mutex<Option<(bool, Instant)>>,
}

/// How long "does any key exist" is trusted before asking the database again.
const ANY_KEY_TTL: Duration = Duration::from_secs(1);

pub fn hash_key(key: &str) -> String {
    Sha256::digest(key.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

impl KeyStore {
    /// A `postgres://` or `postgresql://` URL, or a SQLite file path.
    pub async fn open(location: &str) -> Result<Self, KeyStoreError> {
        let fail = |message: String| KeyStoreError { path: location.to_string(), message };
        let db = if location.starts_with("postgres://") || location.starts_with("postgresql://") {
            KeyDb::open_postgres(location).await.map_err(fail)?
        } else {
            KeyDb::open_sqlite(Path::new(location)).map_err(fail)?
        };
        Ok(KeyStore { db, location: location.to_string(), limits: Mutex::new(HashMap::new()), any_key: Mutex::new(None) })
    }

    fn fail(&self, message: String) -> KeyStoreError {
        KeyStoreError { path: self.location.clone(), message }
    }

    /// Creates a key and returns it (shown once; only its hash is stored).
    pub async fn create(&self, policy: &KeyPolicy) -> Result<String, KeyStoreError> {
        let key = format!("sk-hearth-{:032x}", rand::random::<u128>());
        self.db.insert_key(&hash_key(&key), policy, crate::unix_now()).await.map_err(|e| self.fail(e))?;
        *self.any_key.lock().expect("key cache lock") = Some((true, Instant::now()));
        Ok(key)
    }

    /// True when any key exists (then every API request needs one).
    pub async fn has_keys(&self) -> bool {
        if let Some((known, at)) = *self.any_key.lock().expect("key cache lock") {
            if known || at.elapsed() < ANY_KEY_TTL {
                return known;
            }
        }
        let known = self.db.any_key().await.unwrap_or_else(|e| {
            tracing::error!("key store {}: {e}", self.location);
            true // fail closed: demand a key rather than let everyone in
        });
        *self.any_key.lock().expect("key cache lock") = Some((known, Instant::now()));
        known
    }

    /// The limits of `key`, or None if it is not a key.
    pub async fn lookup(&self, key: &str) -> Option<(String, Arc<KeyLimits>)> {
        let hash = hash_key(key);
        if let Some(limits) = self.limits.lock().expect("limits lock").get(&hash) {
            return Some((hash, limits.clone()));
        }
        let (policy, spent) = match self.db.policy(&hash).await {
            Ok(found) => found?,
            Err(e) => {
                tracing::error!("key store {}: {e}", self.location);
                return None;
            }
        };
        let limits = Arc::new(KeyLimits::new(policy, spent));
        self.limits.lock().expect("limits lock").insert(hash.clone(), limits.clone());
        Some((hash, limits))
    }

    /// Token totals per (key name, model, backend).
    pub async fn usage_summary(&self) -> Result<Vec<UsageRow>, KeyStoreError> {
        self.db.usage_summary().await.map_err(|e| self.fail(e))
    }

    pub async fn insert_usage(&self, records: &[UsageRecord]) -> Result<(), KeyStoreError> {
        self.db.insert_usage(records, crate::unix_now()).await.map_err(|e| self.fail(e))
    }
}

/// The writer: stores usage records as they come, in batches, until the channel closes.
pub async fn write_usage(store: Arc<KeyStore>, mut rx: UnboundedReceiver<UsageRecord>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
        }
        if let Err(e) = store.insert_usage(&batch).await {
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn keys_are_stored_hashed_and_usage_is_summed() {
        let path = std::env::temp_dir().join(format!("hearth-keys-{}.db", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let store = KeyStore::open(path.to_str().unwrap()).await.unwrap();
        check_store(&store).await;
        let text = std::fs::read(&path).unwrap();
        assert!(!String::from_utf8_lossy(&text).contains("sk-hearth-"), "keys themselves are not stored");
        let _ = std::fs::remove_file(&path);
    }

    /// Runs against a real Postgres when `HEARTH_TEST_POSTGRES_URL` names one (`.ci/run` starts
    /// one); without it there is nothing to connect to and the test says so.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn keys_in_postgres() {
        let Some(url) = std::env::var("HEARTH_TEST_POSTGRES_URL").ok().filter(|url| !url.is_empty()) else {
            eprintln!("HEARTH_TEST_POSTGRES_URL is not set: the Postgres key store is not exercised here");
            return;
        };
        let store = KeyStore::open(&url).await.unwrap();
        if let KeyDb::Postgres(client) = &store.db {
            client.batch_execute("DELETE FROM usage; DELETE FROM keys;").await.unwrap();
        }
        check_store(&store).await;
    }

    /// The same checks on any store: creation, hashed lookup, usage sums.
    pub async fn check_store(store: &KeyStore) {
        assert!(!store.has_keys().await);
        let key = store.create(&KeyPolicy { name: "team-a".into(), rpm: Some(10), ..Default::default() }).await.unwrap();
        assert!(key.starts_with("sk-hearth-") && store.has_keys().await);
        let (hash, limits) = store.lookup(&key).await.unwrap();
        assert_eq!(limits.policy.rpm, Some(10));
        assert!(store.lookup("sk-hearth-wrong").await.is_none());
        let record = UsageRecord { key_hash: Some(hash), model: "m".into(), backend: "b".into(), prompt_tokens: 3, completion_tokens: 4 };
        store.insert_usage(&[record.clone(), record]).await.unwrap();
        assert_eq!(store.usage_summary().await.unwrap(), vec![(Some("team-a".into()), "m".into(), "b".into(), 6, 8)]);
    }
}
