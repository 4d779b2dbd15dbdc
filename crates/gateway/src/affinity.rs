//! The gateway's approximate picture of which replica holds which prompt prefix in its KV
//! cache: a request's prompt text cut into fixed-size chunks hashed in a chain, and a bounded
//! LRU index from each chain hash to the few replicas that prefix was last sent to.

use std::collections::{BTreeMap, HashMap};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;

use serde_json::Value;

/// How many replicas one prefix chunk remembers (the most recent ones).
pub const REPLICAS_PER_CHUNK: usize = 4;

/// The prompt as a chain of hashes: element `i` stands for the first `i + 1` chunks.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PrefixChain {
    pub hashes: Vec<u64>,
}

impl PrefixChain {
    /// Cuts `text` into `chunk_chars`-character chunks (the last, partial one included: an
    /// identical whole prompt is a full match) and hashes them in a chain seeded with `scope`
    /// (the model mapping, so that two models never share entries).
    pub fn of_text(scope: &str, text: &str, chunk_chars: usize) -> Self {
        let chunk_chars = chunk_chars.max(1);
        let mut state = {
            let mut h = DefaultHasher::new();
            scope.hash(&mut h);
            h.finish()
        };
        let mut hashes = Vec::with_capacity(text.len() / chunk_chars + 1);
        let mut chars = text.char_indices().map(|(i, _)| i).step_by(chunk_chars).peekable();
        while let Some(start) = chars.next() {
            let end = chars.peek().copied().unwrap_or(text.len());
            let mut h = DefaultHasher::new();
            state.hash(&mut h);
            text[start..end].hash(&mut h);
            state = h.finish();
            hashes.push(state);
        }
        PrefixChain { hashes }
    }

    /// The chain of a request body's prompt (see `prompt_text`).
    pub fn of_request(scope: &str, body: &Value, chunk_chars: usize) -> Self {
        Self::of_text(scope, &prompt_text(body), chunk_chars)
    }

    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }
}

/// The text a request's prompt is made of, in the order a chat template renders it: tools,
/// then instructions or system prompt, then each message's role and content. Works on the
/// request as the client sent it (Chat Completions, Completions, Responses or Messages).
pub fn prompt_text(body: &Value) -> String {
    let mut text = String::new();
    for field in ["tools", "instructions", "system"] {
        push_content(&mut text, &body[field]);
    }
    for field in ["messages", "input"] {
        match &body[field] {
            Value::Array(items) => {
                for item in items {
                    if let Some(role) = item["role"].as_str() {
                        text.push_str(role);
                        text.push('\n');
                    }
                    push_content(&mut text, if item.get("content").is_some() { &item["content"] } else { item });
                }
            }
            other => push_content(&mut text, other),
        }
    }
    push_content(&mut text, &body["prompt"]);
    text
}

/// Appends a content value: a string as it is, text parts by their text, anything else as JSON.
fn push_content(text: &mut String, content: &Value) {
    match content {
        Value::Null => return,
        Value::String(s) => text.push_str(s),
        Value::Array(parts) => {
            for part in parts {
                match part["text"].as_str() {
                    Some(t) => text.push_str(t),
                    None => text.push_str(&part.to_string()),
                }
            }
        }
        other => text.push_str(&other.to_string()),
    }
    text.push('\n');
}

/// One indexed prefix: the replicas it went to (most recent last) and its LRU stamp.
struct Entry {
    replicas: Vec<usize>,
    stamp: u64,
}

struct Lru {
    entries: HashMap<u64, Entry>,
    /// stamp -> chain hash, oldest first
    order: BTreeMap<u64, u64>,
    clock: u64,
    /// Per replica, how many entries list it.
    held: Vec<usize>,
}

impl Lru {
    fn held_mut(&mut self, replica: usize) -> &mut usize {
        if self.held.len() <= replica {
            self.held.resize(replica + 1, 0);
        }
        &mut self.held[replica]
    }

    fn release(&mut self, replicas: &[usize]) {
        for &r in replicas {
            let held = self.held_mut(r);
            *held = held.saturating_sub(1);
        }
    }
}

/// The bounded prefix index. Replicas are numbered by their position in the gateway's
/// backend list.
pub struct PrefixIndex {
    max_entries: usize,
    lru: Mutex<Lru>,
}

/// Puts `replica` last (most recent) in `replicas`, keeping at most `REPLICAS_PER_CHUNK`:
/// whether it is new there, and the replica pushed out, if one was.
fn remember(replicas: &mut Vec<usize>, replica: usize) -> (bool, Option<usize>) {
    let before = replicas.len();
    replicas.retain(|&r| r != replica);
    let added = replicas.len() == before;
    replicas.push(replica);
    let pushed_out = (replicas.len() > REPLICAS_PER_CHUNK).then(|| replicas.remove(0));
    (added, pushed_out)
}

/// Approximate bytes one entry costs (hash map slot, LRU node, replica list).
const BYTES_PER_ENTRY: usize = 8 + 8 + 24 + REPLICAS_PER_CHUNK * 8 + 8 + 8 + 8 + 48;

impl PrefixIndex {
    pub fn new(max_entries: usize) -> Self {
        let lru = Lru { entries: HashMap::new(), order: BTreeMap::new(), clock: 0, held: Vec::new() };
        PrefixIndex { max_entries: max_entries.max(1), lru: Mutex::new(lru) }
    }

    /// Records that `chain` was sent to `replica`. The chain is stamped from its last chunk to
    /// its first, so the first chunks are the most recently used: eviction cuts prefixes from
    /// their tail and never leaves a tail whose head is gone.
    pub fn insert(&self, chain: &PrefixChain, replica: usize) {
        let mut lru = self.lru.lock().expect("prefix index lock");
        for &hash in chain.hashes.iter().rev() {
            lru.clock += 1;
            let stamp = lru.clock;
            let entry = lru.entries.entry(hash).or_insert_with(|| Entry { replicas: Vec::new(), stamp: 0 });
            let old_stamp = std::mem::replace(&mut entry.stamp, stamp);
            let (added, pushed_out) = remember(&mut entry.replicas, replica);
            if added {
                *lru.held_mut(replica) += 1;
            }
            lru.release(pushed_out.as_slice());
            lru.order.remove(&old_stamp);
            lru.order.insert(stamp, hash);
        }
        while lru.entries.len() > self.max_entries {
            let Some((_, oldest)) = lru.order.pop_first() else { break };
            if let Some(entry) = lru.entries.remove(&oldest) {
                lru.release(&entry.replicas);
            }
        }
    }

    /// For each of `replicas`, how many leading chunks of `chain` it is known to hold.
    pub fn matched_chunks(&self, chain: &PrefixChain, replicas: &[usize]) -> Vec<usize> {
        let lru = self.lru.lock().expect("prefix index lock");
        let mut matched = vec![0; replicas.len()];
        for (depth, hash) in chain.hashes.iter().enumerate() {
            let Some(entry) = lru.entries.get(hash) else { break };
            for (slot, replica) in replicas.iter().enumerate() {
                if matched[slot] == depth && entry.replicas.contains(replica) {
                    matched[slot] = depth + 1;
                }
            }
        }
        matched
    }

    /// How many chunks the index lists for `replica`.
    pub fn held(&self, replica: usize) -> usize {
        self.lru.lock().expect("prefix index lock").held.get(replica).copied().unwrap_or(0)
    }

    /// Forgets every prefix held by `replica` (it restarted or was removed).
    pub fn forget_replica(&self, replica: usize) {
        let mut lru = self.lru.lock().expect("prefix index lock");
        *lru.held_mut(replica) = 0;
        let Lru { entries, order, .. } = &mut *lru;
        entries.retain(|_, entry| {
            entry.replicas.retain(|&r| r != replica);
            let keep = !entry.replicas.is_empty();
            if !keep {
                order.remove(&entry.stamp);
            }
            keep
        });
    }

    pub fn len(&self) -> usize {
        self.lru.lock().expect("prefix index lock").entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// An upper estimate of the index's memory.
    pub fn approx_bytes(&self) -> usize {
        self.len() * BYTES_PER_ENTRY
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn chain(text: &str) -> PrefixChain {
        PrefixChain::of_text("m", text, 4)
    }

    #[test]
    fn chains_share_hashes_exactly_as_far_as_their_texts_share_chunks() {
        let a = chain("abcdefghijkl");
        let b = chain("abcdefghXYZ");
        assert_eq!(a.len(), 3);
        assert_eq!(b.len(), 3);
        assert_eq!(a.hashes[..2], b.hashes[..2]);
        assert_ne!(a.hashes[2], b.hashes[2]);
        assert_ne!(PrefixChain::of_text("other", "abcd", 4), chain("abcd"), "the scope seeds the chain");
        assert!(chain("").is_empty());
        // multi-byte characters are cut on character boundaries
        assert_eq!(PrefixChain::of_text("m", "ééééé", 2).len(), 3);
    }

    #[test]
    fn prompt_text_follows_every_api_shape() {
        let chat = json!({"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": [{"type": "text", "text": "U"}]}]});
        assert_eq!(prompt_text(&chat), "system\nS\nuser\nU\n");
        assert_eq!(prompt_text(&json!({"prompt": "P"})), "P\n");
        assert_eq!(prompt_text(&json!({"instructions": "I", "input": "hi"})), "I\nhi\n");
        let messages = json!({"system": "S", "messages": [{"role": "user", "content": "U"}]});
        assert_eq!(prompt_text(&messages), "S\nuser\nU\n");
        let tools = prompt_text(&json!({"tools": [{"type": "function"}], "messages": []}));
        assert!(tools.starts_with("{\"type\":\"function\"}"));
    }

    #[test]
    fn the_longest_match_is_per_replica() {
        let index = PrefixIndex::new(100);
        index.insert(&chain("abcdefghijkl"), 0);
        index.insert(&chain("abcdXXXX"), 1);
        assert_eq!(index.matched_chunks(&chain("abcdefghijklmnop"), &[0, 1, 2]), vec![3, 1, 0]);
        assert_eq!(index.matched_chunks(&chain("zzzz"), &[0, 1]), vec![0, 0]);
    }

    #[test]
    fn a_chunk_remembers_only_its_latest_replicas() {
        let index = PrefixIndex::new(100);
        for replica in 0..6 {
            index.insert(&chain("abcd"), replica);
        }
        let matched = index.matched_chunks(&chain("abcd"), &[0, 1, 2, 3, 4, 5]);
        assert_eq!(matched, vec![0, 0, 1, 1, 1, 1]);
        assert_eq!((0..6).map(|r| index.held(r)).collect::<Vec<_>>(), vec![0, 0, 1, 1, 1, 1]);
    }

    #[test]
    fn eviction_keeps_the_bound_and_cuts_prefixes_from_the_tail() {
        let index = PrefixIndex::new(10);
        index.insert(&chain(&"a".repeat(4 * 8)), 0); // 8 chunks
        index.insert(&chain(&"b".repeat(4 * 8)), 1); // 8 more: 6 of the first go
        assert_eq!(index.len(), 10);
        assert!(index.approx_bytes() <= 10 * BYTES_PER_ENTRY);
        assert_eq!(index.matched_chunks(&chain(&"b".repeat(32)), &[1]), vec![8]);
        assert_eq!(index.matched_chunks(&chain(&"a".repeat(32)), &[0]), vec![2], "the head of the older prefix survives");
        assert_eq!((index.held(0), index.held(1)), (2, 8));
        // a used prefix is refreshed and survives the next insert
        index.insert(&chain(&"a".repeat(8)), 0);
        index.insert(&chain(&"c".repeat(4 * 7)), 2);
        assert_eq!(index.matched_chunks(&chain(&"a".repeat(32)), &[0]), vec![2]);
        assert_eq!(index.len(), 10);
    }

    #[test]
    fn many_prompts_stay_within_the_memory_bound() {
        let index = PrefixIndex::new(1000);
        for i in 0..500 {
            index.insert(&PrefixChain::of_text("m", &format!("prompt {i} {}", "x".repeat(64)), 16), i % 3);
        }
        assert_eq!(index.len(), 1000);
        assert!(index.approx_bytes() <= 1000 * BYTES_PER_ENTRY);
        let recent = PrefixChain::of_text("m", &format!("prompt 499 {}", "x".repeat(64)), 16);
        assert_eq!(index.matched_chunks(&recent, &[499 % 3]), vec![recent.len()]);
    }

    #[test]
    fn forgetting_a_replica_drops_its_entries() {
        let index = PrefixIndex::new(100);
        index.insert(&chain("abcdefgh"), 0);
        index.insert(&chain("abcd"), 1);
        index.forget_replica(0);
        assert_eq!(index.len(), 1);
        assert_eq!((index.held(0), index.held(1)), (0, 1));
        assert_eq!(index.matched_chunks(&chain("abcdefgh"), &[0, 1]), vec![0, 1]);
    }
}
