//! Prefix-cache identity of full blocks: a hash chain over each block's tokens and its parent.

use std::hash::{Hash, Hasher};

/// Identity of a full block's content given everything before it (128 bits: two keyed
/// SipHash passes, so an accidental collision is not a practical concern).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlockHash(pub u64, pub u64);

fn sip(salt: u64, parent: Option<BlockHash>, tokens: &[u32]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    salt.hash(&mut h);
    parent.hash(&mut h);
    tokens.hash(&mut h);
    h.finish()
}

impl BlockHash {
    pub fn of(parent: Option<BlockHash>, tokens: &[u32]) -> Self {
        BlockHash(sip(0x6865_6172_7468, parent, tokens), sip(0x006b_7663_6163_6865, parent, tokens))
    }
}

/// Hashes of the full blocks of `tokens` (a trailing partial block has none).
pub fn block_hashes(tokens: &[u32], block_size: usize) -> Vec<BlockHash> {
    let mut parent = None;
    tokens
        .chunks_exact(block_size)
        .map(|chunk| {
            let h = BlockHash::of(parent, chunk);
            parent = Some(h);
            h
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_depends_on_prefix_and_ignores_partial_tail() {
        let a = block_hashes(&[1, 2, 3, 4, 5, 6, 7], 2);
        assert_eq!(a.len(), 3);
        let b = block_hashes(&[1, 2, 3, 4, 9, 9], 2);
        assert_eq!(a[..2], b[..2]);
        assert_ne!(a[2], b[2]);
        // same block content after a different prefix hashes differently
        let c = block_hashes(&[9, 9, 3, 4], 2);
        assert_ne!(a[1], c[1]);
    }
}
