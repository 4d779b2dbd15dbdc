//! Where stored responses live (`store: true`), for `GET /v1/responses/{id}` and for
//! `previous_response_id`: in memory by default, in SQLite with `--responses-store PATH` so
//! they survive a restart. Either way the newest `limit` responses are kept, older ones dropped.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use hearth_protocol::responses::{InputItem, ResponseObject};
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

/// A response with the conversation that led to it, outputs included (instructions are not
/// part of it: they apply to one response only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredResponse {
    pub response: ResponseObject,
    pub history: Vec<InputItem>,
}

#[derive(Debug, thiserror::Error)]
#[error("response store {path}: {message}")]
pub struct StoreError {
    path: String,
    message: String,
}

pub struct ResponseStore {
    backend: Backend,
    /// Most responses kept.
    limit: usize,
}

enum Backend {
    Memory(Mutex<MemoryResponses>),
    Sqlite { conn: Mutex<Connection>, path: PathBuf },
}

#[derive(Default)]
struct MemoryResponses {
    by_id: HashMap<String, StoredResponse>,
    /// Ids, oldest first.
    order: VecDeque<String>,
}

const SCHEMA: &str = "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;
    CREATE TABLE IF NOT EXISTS responses (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, body TEXT NOT NULL);";

impl ResponseStore {
    pub fn memory(limit: usize) -> Self {
        ResponseStore { backend: Backend::Memory(Mutex::default()), limit }
    }

    /// Opens (or creates) the SQLite file.
    pub fn sqlite(path: &Path, limit: usize) -> Result<Self, StoreError> {
        let error = |e: rusqlite::Error| StoreError { path: path.display().to_string(), message: e.to_string() };
        let conn = Connection::open(path).map_err(error)?;
        conn.execute_batch(SCHEMA).map_err(error)?;
        Ok(ResponseStore { backend: Backend::Sqlite { conn: Mutex::new(conn), path: path.to_path_buf() }, limit })
    }

    /// Keeps `stored` (replacing one with its id), dropping the oldest beyond the limit.
    pub fn put(&self, stored: &StoredResponse) -> Result<(), StoreError> {
        let id = stored.response.id.clone();
        match &self.backend {
            Backend::Memory(memory) => {
                let mut memory = memory.lock().unwrap_or_else(|e| e.into_inner());
                if memory.by_id.insert(id.clone(), stored.clone()).is_some() {
                    memory.order.retain(|known| known != &id);
                }
                memory.order.push_back(id);
                while memory.order.len() > self.limit {
                    if let Some(oldest) = memory.order.pop_front() {
                        memory.by_id.remove(&oldest);
                    }
                }
                Ok(())
            }
            Backend::Sqlite { conn, path } => {
                let body = serde_json::to_string(stored).map_err(|e| store_error(path, e))?;
                let conn = conn.lock().unwrap_or_else(|e| e.into_inner());
                conn.execute("INSERT OR REPLACE INTO responses (id, body) VALUES (?1, ?2)", params![id, body])
                    .map_err(|e| store_error(path, e))?;
                conn.execute("DELETE FROM responses WHERE seq <= (SELECT seq FROM responses ORDER BY seq DESC LIMIT 1 OFFSET ?1)", params![self.limit as i64])
                    .map_err(|e| store_error(path, e))?;
                Ok(())
            }
        }
    }

    pub fn get(&self, id: &str) -> Result<Option<StoredResponse>, StoreError> {
        match &self.backend {
            Backend::Memory(memory) => Ok(memory.lock().unwrap_or_else(|e| e.into_inner()).by_id.get(id).cloned()),
            Backend::Sqlite { conn, path } => {
                let conn = conn.lock().unwrap_or_else(|e| e.into_inner());
                let body: Option<String> = conn
                    .query_row("SELECT body FROM responses WHERE id = ?1", params![id], |row| row.get(0))
                    .optional()
                    .map_err(|e| store_error(path, e))?;
                let parse = |body: String| {
                    serde_json::from_str(&body).map_err(|e| store_error(path, format!("the stored response {id} is corrupt: {e}")))
                };
                body.map(parse).transpose()
            }
        }
    }

    /// Whether a response with this id was there.
    pub fn delete(&self, id: &str) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Memory(memory) => {
                let mut memory = memory.lock().unwrap_or_else(|e| e.into_inner());
                let found = memory.by_id.remove(id).is_some();
                if found {
                    memory.order.retain(|known| known != id);
                }
                Ok(found)
            }
            Backend::Sqlite { conn, path } => {
                let conn = conn.lock().unwrap_or_else(|e| e.into_inner());
                let removed = conn.execute("DELETE FROM responses WHERE id = ?1", params![id]).map_err(|e| store_error(path, e))?;
                Ok(removed > 0)
            }
        }
    }
}

fn store_error(path: &Path, message: impl std::fmt::Display) -> StoreError {
    StoreError { path: path.display().to_string(), message: message.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(id: &str) -> StoredResponse {
        let response: ResponseObject = serde_json::from_value(serde_json::json!({
            "id": id, "object": "response", "created_at": 1, "status": "completed", "completed_at": 2, "error": null,
            "incomplete_details": null, "instructions": null, "max_output_tokens": null, "model": "m", "output": [],
            "parallel_tool_calls": true, "previous_response_id": null, "reasoning": {}, "store": true, "temperature": null,
            "text": {}, "tool_choice": "auto", "tools": [], "top_p": null, "truncation": "disabled", "usage": null,
            "user": null, "metadata": {}}))
        .unwrap();
        StoredResponse { response, history: vec![InputItem::message("user", format!("question {id}"))] }
    }

    fn keeps_the_newest(store: &ResponseStore) {
        for i in 0..5 {
            store.put(&stored(&format!("resp_{i}"))).unwrap();
        }
        assert_eq!(store.get("resp_0").unwrap(), None, "beyond the limit of 3");
        assert_eq!(store.get("resp_1").unwrap(), None);
        assert_eq!(store.get("resp_4").unwrap(), Some(stored("resp_4")));
        assert!(store.delete("resp_3").unwrap());
        assert!(!store.delete("resp_3").unwrap());
        assert_eq!(store.get("resp_3").unwrap(), None);
        // put, delete, put again: the store does not grow with ids it no longer holds
        for _ in 0..10 {
            store.put(&stored("resp_x")).unwrap();
            store.delete("resp_x").unwrap();
        }
        assert_eq!(store.get("resp_2").unwrap(), Some(stored("resp_2")));
    }

    #[test]
    fn memory_store_keeps_the_newest() {
        let store = ResponseStore::memory(3);
        keeps_the_newest(&store);
        let Backend::Memory(memory) = &store.backend else { unreachable!() };
        assert_eq!(memory.lock().unwrap().order.len(), 2);
    }

    #[test]
    fn sqlite_store_keeps_the_newest_and_survives_reopening() {
        let dir = std::env::temp_dir().join(format!("hearth-responses-{}", crate::random_id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("responses.db");
        keeps_the_newest(&ResponseStore::sqlite(&path, 3).unwrap());
        let reopened = ResponseStore::sqlite(&path, 3).unwrap();
        assert_eq!(reopened.get("resp_4").unwrap(), Some(stored("resp_4")));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_file_that_is_not_a_database_is_named() {
        let dir = std::env::temp_dir().join(format!("hearth-responses-{}", crate::random_id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("not-a-db");
        std::fs::write(&path, vec![7u8; 4096]).unwrap();
        let error = ResponseStore::sqlite(&path, 3).err().unwrap().to_string();
        assert!(error.contains("not-a-db"), "{error}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
