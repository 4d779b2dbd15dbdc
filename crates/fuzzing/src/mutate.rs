//! A small seeded mutator for running the targets on stable in the test suite: byte flips,
//! interesting integers, inserted, deleted and repeated ranges, truncation, and splices of two
//! seeds; and for JSON seeds (after an optional one-byte selector) mutations of the parsed
//! value, so that mutants stay JSON and reach the validation behind the parser. libFuzzer does
//! the byte part far better under `cargo fuzz`; this keeps every CI run honest.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

/// Values that tend to reach boundaries when written over a length, count or offset.
const INTERESTING: [u64; 10] = [0, 1, 2, 0x7f, 0x80, 0xff, 0xffff, 0x7fff_ffff, 0xffff_ffff, u64::MAX];

/// A deterministic stream of mutants of the given seeds.
pub struct Mutator {
    rng: StdRng,
    seeds: Vec<Vec<u8>>,
}

impl Mutator {
    pub fn new(seeds: Vec<Vec<u8>>, seed: u64) -> Self {
        assert!(!seeds.is_empty(), "a mutator needs at least one seed");
        Mutator { rng: StdRng::seed_from_u64(seed), seeds }
    }

    /// The next mutant: one seed with 1 to 4 byte mutations, or for half of a JSON seed's
    /// mutants one change of its parsed value.
    pub fn next_input(&mut self) -> Vec<u8> {
        let mut data = self.seeds[self.rng.random_range(0..self.seeds.len())].clone();
        let rounds = self.rng.random_range(1..=4);
        if self.rng.random_bool(0.5) {
            if let Some((prefix, mut value)) = split_json(&data) {
                // one change at a time: a value with several is mostly refused for the first
                self.mutate_value(&mut value);
                return [prefix, value.to_string().into_bytes()].concat();
            }
        }
        for _ in 0..rounds {
            self.mutate(&mut data);
        }
        data
    }

    /// Changes one node of the value, chosen by a random walk from the root.
    fn mutate_value(&mut self, value: &mut Value) {
        let descend = self.rng.random_bool(0.7);
        match value {
            Value::Object(map) if descend && !map.is_empty() => {
                let key = map.keys().nth(self.rng.random_range(0..map.len())).cloned().unwrap_or_default();
                if let Some(child) = map.get_mut(&key) {
                    return self.mutate_value(child);
                }
            }
            Value::Array(items) if descend && !items.is_empty() => {
                let at = self.rng.random_range(0..items.len());
                return self.mutate_value(&mut items[at]);
            }
            _ => {}
        }
        match (value, self.rng.random_range(0..4)) {
            (Value::Object(map), 0) if !map.is_empty() => {
                let key = map.keys().nth(self.rng.random_range(0..map.len())).cloned().unwrap_or_default();
                map.remove(&key);
            }
            (Value::Object(map), 1) => {
                let replacement = self.odd_value();
                map.insert(["unexpected", "model", "stream", "n", "tools", "max_tokens"][self.rng.random_range(0..6)].into(), replacement);
            }
            (Value::Array(items), 0) if !items.is_empty() => {
                items.remove(self.rng.random_range(0..items.len()));
            }
            (Value::Array(items), 1) if !items.is_empty() => {
                let copy = items[self.rng.random_range(0..items.len())].clone();
                items.push(copy);
            }
            (node, _) => *node = self.odd_value(),
        }
    }

    /// A value of a surprising type or size.
    fn odd_value(&mut self) -> Value {
        match self.rng.random_range(0..12) {
            0 => Value::Null,
            1 => json!(true),
            2 => json!(-1),
            3 => json!(0),
            4 => json!(1e308),
            5 => json!(u64::MAX),
            6 => json!(""),
            7 => json!("x".repeat(5000)),
            8 => json!([]),
            9 => json!({}),
            10 => json!("\u{0}<|im_end|>{{ }}"),
            _ => json!(self.rng.random_range(-3..300)),
        }
    }

    fn mutate(&mut self, data: &mut Vec<u8>) {
        let len = data.len();
        let at = if len == 0 { 0 } else { self.rng.random_range(0..len) };
        match self.rng.random_range(0..7) {
            0 if len > 0 => data[at] ^= 1 << self.rng.random_range(0..8),
            1 if len > 0 => data[at] = self.rng.random(),
            2 => {
                let value = INTERESTING[self.rng.random_range(0..INTERESTING.len())];
                let width = [1, 2, 4, 8][self.rng.random_range(0..4)];
                let bytes = value.to_le_bytes();
                for (i, b) in bytes[..width].iter().enumerate() {
                    if let Some(slot) = data.get_mut(at + i) {
                        *slot = *b;
                    }
                }
            }
            3 => {
                let count = self.rng.random_range(1..=16);
                let inserted: Vec<u8> = (0..count).map(|_| self.rng.random()).collect();
                data.splice(at..at, inserted);
            }
            4 if len > 0 => {
                let end = (at + self.rng.random_range(1..=64)).min(len);
                data.drain(at..end);
            }
            5 if len > 0 => {
                let end = (at + self.rng.random_range(1..=32)).min(len);
                let repeated = data[at..end].to_vec();
                data.splice(at..at, repeated);
            }
            _ => {
                let other = &self.seeds[self.rng.random_range(0..self.seeds.len())];
                let from = if other.is_empty() { 0 } else { self.rng.random_range(0..other.len()) };
                data.truncate(at);
                data.extend_from_slice(&other[from..]);
            }
        }
    }
}

/// A JSON seed as (selector prefix, parsed value): the whole input, or all but its first byte.
fn split_json(data: &[u8]) -> Option<(Vec<u8>, Value)> {
    if let Ok(value) = serde_json::from_slice::<Value>(data) {
        return Some((Vec::new(), value));
    }
    let (first, rest) = data.split_first()?;
    serde_json::from_slice::<Value>(rest).ok().map(|value| (vec![*first], value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutants_are_deterministic_and_differ_from_the_seed() {
        let seeds = vec![b"data: {\"a\": 1}\n\n".to_vec(), b"GGUF\x03\x00\x00\x00".to_vec()];
        let first: Vec<Vec<u8>> = { let mut m = Mutator::new(seeds.clone(), 7); (0..50).map(|_| m.next_input()).collect() };
        let again: Vec<Vec<u8>> = { let mut m = Mutator::new(seeds.clone(), 7); (0..50).map(|_| m.next_input()).collect() };
        assert_eq!(first, again);
        assert!(first.iter().filter(|m| !seeds.contains(m)).count() > 40);
    }

    #[test]
    fn half_of_a_json_seeds_mutants_stay_json_behind_their_selector() {
        let mut m = Mutator::new(vec![[vec![3u8], br#"{"model": "m", "messages": [{"role": "user", "content": "hi"}]}"#.to_vec()].concat()], 1);
        let json = (0..200).map(|_| m.next_input()).filter(|i| i[0] == 3 && serde_json::from_slice::<Value>(&i[1..]).is_ok()).count();
        assert!((60..=160).contains(&json), "{json} of 200");
    }
}
