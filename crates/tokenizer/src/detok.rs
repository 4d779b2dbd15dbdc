//! Incremental detokenization: turns a growing list of ids into text deltas that never split
//! a UTF-8 character.

use crate::Tokenizer;

/// Streams text for tokens as they are generated.
#[derive(Debug, Default, Clone)]
pub struct IncrementalDecoder {
    ids: Vec<u32>,
    /// Start of the window decoded for context (so merges of spaces etc. decode right).
    prefix_offset: usize,
    /// End of the text already emitted, as a token index.
    read_offset: usize,
}

impl IncrementalDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one token; returns the new text it completes (possibly empty while a multi-byte
    /// character is still incomplete).
    pub fn push(&mut self, tokenizer: &Tokenizer, id: u32) -> String {
        self.ids.push(id);
        let prefix = tokenizer.decode(&self.ids[self.prefix_offset..self.read_offset]);
        let full = tokenizer.decode(&self.ids[self.prefix_offset..]);
        if full.len() > prefix.len() && !full.ends_with('\u{FFFD}') && full.is_char_boundary(prefix.len()) {
            let delta = full[prefix.len()..].to_string();
            self.prefix_offset = self.read_offset;
            self.read_offset = self.ids.len();
            delta
        } else {
            String::new()
        }
    }

    /// Text still held back at the end of generation (an incomplete character, shown lossily).
    pub fn finish(&mut self, tokenizer: &Tokenizer) -> String {
        let prefix = tokenizer.decode(&self.ids[self.prefix_offset..self.read_offset]);
        let full = tokenizer.decode(&self.ids[self.prefix_offset..]);
        self.prefix_offset = self.ids.len();
        self.read_offset = self.ids.len();
        if full.len() > prefix.len() && full.is_char_boundary(prefix.len()) {
            full[prefix.len()..].to_string()
        } else {
            String::new()
        }
    }

    pub fn ids(&self) -> &[u32] {
        &self.ids
    }
}
