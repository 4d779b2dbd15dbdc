//! Where keys and usage rows live: SQLite (a file, the default) or Postgres (by URL). Same
//! tables and queries on both; only the key's SHA-256 is ever stored.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension};

use crate::keys::KeyPolicy;
use crate::usage::UsageRecord;

/// Token totals of one (key name, model, backend).
pub type UsageRow = (Option<String>, String, String, u64, u64);

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS keys (key_hash TEXT PRIMARY KEY, name TEXT NOT NULL, budget_tokens BIGINT,
        rpm BIGINT, tpm BIGINT, created BIGINT NOT NULL);
    CREATE TABLE IF NOT EXISTS usage (ts BIGINT NOT NULL, key_hash TEXT, model TEXT NOT NULL, backend TEXT NOT NULL,
        prompt_tokens BIGINT NOT NULL, completion_tokens BIGINT NOT NULL);
    CREATE INDEX IF NOT EXISTS usage_by_key ON usage(key_hash);";

const SUMMARY: &str = "SELECT k.name, u.model, u.backend, SUM(u.prompt_tokens), SUM(u.completion_tokens)
    FROM usage u LEFT JOIN keys k ON k.key_hash = u.key_hash GROUP BY 1, 2, 3 ORDER BY 1, 2, 3";

pub enum KeyDb {
    Sqlite(Mutex<Connection>),
    Postgres(tokio_postgres::Client),
}

fn text(e: impl std::fmt::Display) -> String {
    e.to_string()
}

impl KeyDb {
    pub fn open_sqlite(path: &Path) -> Result<Self, String> {
        let conn = Connection::open(path).map_err(text)?;
        conn.execute_batch(&format!("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; {SCHEMA}")).map_err(text)?;
        Ok(KeyDb::Sqlite(Mutex::new(conn)))
    }

    /// Connects (the connection is driven by a task on the current runtime).
    pub async fn open_postgres(url: &str) -> Result<Self, String> {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.map_err(text)?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::error!("key database connection ended: {e}");
            }
        });
        client.batch_execute(SCHEMA).await.map_err(text)?;
        Ok(KeyDb::Postgres(client))
    }

    pub async fn insert_key(&self, hash: &str, p: &KeyPolicy, created: u64) -> Result<(), String> {
        let (budget, rpm, tpm) = (p.budget_tokens.map(|v| v as i64), p.rpm.map(|v| v as i64), p.tpm.map(|v| v as i64));
        match self {
            KeyDb::Sqlite(conn) => conn
                .lock()
                .expect("db lock")
                .execute(
                    "INSERT INTO keys (key_hash, name, budget_tokens, rpm, tpm, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![hash, p.name, budget, rpm, tpm, created as i64],
                )
                .map(|_| ())
                .map_err(text),
            KeyDb::Postgres(client) => client
                .execute(
                    "INSERT INTO keys (key_hash, name, budget_tokens, rpm, tpm, created) VALUES ($1, $2, $3, $4, $5, $6)",
                    &[&hash, &p.name, &budget, &rpm, &tpm, &(created as i64)],
                )
                .await
                .map(|_| ())
                .map_err(text),
        }
    }

    pub async fn any_key(&self) -> Result<bool, String> {
        const Q: &str = "SELECT EXISTS(SELECT 1 FROM keys)";
        match self {
            KeyDb::Sqlite(conn) => conn.lock().expect("db lock").query_row(Q, [], |r| r.get(0)).map_err(text),
            KeyDb::Postgres(client) => client.query_one(Q, &[]).await.map(|r| r.get(0)).map_err(text),
        }
    }

    /// The key's policy and the tokens it has used so far.
    pub async fn policy(&self, hash: &str) -> Result<Option<(KeyPolicy, u64)>, String> {
        let as_u64 = |v: Option<i64>| v.map(|v| v.max(0) as u64);
        match self {
            KeyDb::Sqlite(conn) => {
                let conn = conn.lock().expect("db lock");
                let row = conn
                    .query_row("SELECT name, budget_tokens, rpm, tpm FROM keys WHERE key_hash = ?1", params![hash], |r| {
                        Ok(KeyPolicy { name: r.get(0)?, budget_tokens: as_u64(r.get(1)?), rpm: as_u64(r.get(2)?), tpm: as_u64(r.get(3)?) })
                    })
                    .optional()
                    .map_err(text)?;
                let Some(policy) = row else { return Ok(None) };
                let spent: i64 = conn
                    .query_row("SELECT COALESCE(SUM(prompt_tokens + completion_tokens), 0) FROM usage WHERE key_hash = ?1", params![hash], |r| r.get(0))
                    .map_err(text)?;
                Ok(Some((policy, spent.max(0) as u64)))
            }
            KeyDb::Postgres(client) => {
                let row = client.query_opt("SELECT name, budget_tokens, rpm, tpm FROM keys WHERE key_hash = $1", &[&hash]).await.map_err(text)?;
                let Some(r) = row else { return Ok(None) };
                let policy = KeyPolicy { name: r.get(0), budget_tokens: as_u64(r.get(1)), rpm: as_u64(r.get(2)), tpm: as_u64(r.get(3)) };
                let spent: i64 = client
                    .query_one("SELECT COALESCE(SUM(prompt_tokens + completion_tokens), 0)::BIGINT FROM usage WHERE key_hash = $1", &[&hash])
                    .await
                    .map(|r| r.get(0))
                    .map_err(text)?;
                Ok(Some((policy, spent.max(0) as u64)))
            }
        }
    }

    pub async fn insert_usage(&self, records: &[UsageRecord], now: u64) -> Result<(), String> {
        let rows = records.iter().map(|r| (r.key_hash.as_deref(), r.model.as_str(), r.backend.as_str(), r.prompt_tokens as i64, r.completion_tokens as i64));
        match self {
            KeyDb::Sqlite(conn) => tokio::task::block_in_place(|| {
                let mut conn = conn.lock().expect("db lock");
                let tx = conn.transaction().map_err(text)?;
                for (key, model, backend, p, c) in rows {
                    tx.execute(
                        "INSERT INTO usage (ts, key_hash, model, backend, prompt_tokens, completion_tokens) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                        params![now as i64, key, model, backend, p, c],
                    )
                    .map_err(text)?;
                }
                tx.commit().map_err(text)
            }),
            KeyDb::Postgres(client) => {
                for (key, model, backend, p, c) in rows {
                    client
                        .execute(
                            "INSERT INTO usage (ts, key_hash, model, backend, prompt_tokens, completion_tokens) VALUES ($1, $2, $3, $4, $5, $6)",
                            &[&(now as i64), &key, &model, &backend, &p, &c],
                        )
                        .await
                        .map_err(text)?;
                }
                Ok(())
            }
        }
    }

    pub async fn usage_summary(&self) -> Result<Vec<UsageRow>, String> {
        let to_u64 = |v: i64| v.max(0) as u64;
        match self {
            KeyDb::Sqlite(conn) => {
                let conn = conn.lock().expect("db lock");
                let mut stmt = conn.prepare(SUMMARY).map_err(text)?;
                let rows = stmt
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, to_u64(r.get(3)?), to_u64(r.get(4)?))))
                    .map_err(text)?;
                rows.collect::<Result<_, _>>().map_err(text)
            }
            KeyDb::Postgres(client) => {
                let q = SUMMARY.replace("SUM(u.prompt_tokens), SUM(u.completion_tokens)", "SUM(u.prompt_tokens)::BIGINT, SUM(u.completion_tokens)::BIGINT");
                let rows = client.query(q.as_str(), &[]).await.map_err(text)?;
                Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), to_u64(r.get(3)), to_u64(r.get(4)))).collect())
            }
        }
    }
}
