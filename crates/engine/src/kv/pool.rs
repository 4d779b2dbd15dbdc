//! The block pool: fixed-size KV blocks with reference counts, an LRU list of free blocks
//! that may still hold cached prefixes, and the prefix-hash index.

use std::collections::HashMap;

use super::hash::BlockHash;

/// Index of a block in the pool.
pub type BlockId = u32;

const NONE: u32 = u32::MAX;

#[derive(Debug, Clone)]
struct Block {
    ref_count: u32,
    hash: Option<BlockHash>,
    /// Free-list links (valid while ref_count == 0).
    prev: u32,
    next: u32,
}

/// Counters the engine reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    pub prefix_queries: u64,
    pub prefix_hits: u64,
}

/// All KV blocks; in use ones have a positive reference count, free ones sit in LRU order
/// (evicted from the head), and full blocks are indexed by their prefix hash until evicted.
#[derive(Debug)]
pub struct BlockPool {
    blocks: Vec<Block>,
    head: u32,
    tail: u32,
    free_count: usize,
    cached: HashMap<BlockHash, BlockId>,
    prefix_caching: bool,
    stats: PoolStats,
}

impl BlockPool {
    pub fn new(num_blocks: usize, prefix_caching: bool) -> Self {
        let mut pool = BlockPool {
            blocks: vec![Block { ref_count: 0, hash: None, prev: NONE, next: NONE }; num_blocks],
            head: NONE,
            tail: NONE,
            free_count: 0,
            cached: HashMap::new(),
            prefix_caching,
            stats: PoolStats::default(),
        };
        for id in 0..num_blocks as u32 {
            pool.push_back(id);
        }
        pool
    }

    pub fn num_blocks(&self) -> usize {
        self.blocks.len()
    }

    /// Blocks that can be handed out now (free, cached or not).
    pub fn num_free(&self) -> usize {
        self.free_count
    }

    /// Fraction of blocks in use.
    pub fn usage(&self) -> f64 {
        if self.blocks.is_empty() {
            return 0.0;
        }
        1.0 - self.free_count as f64 / self.blocks.len() as f64
    }

    pub fn stats(&self) -> PoolStats {
        self.stats
    }

    pub fn prefix_caching(&self) -> bool {
        self.prefix_caching
    }

    /// Takes a free block (least recently used first), evicting its cached content.
    pub fn allocate(&mut self) -> Option<BlockId> {
        let id = self.head;
        if id == NONE {
            return None;
        }
        self.unlink(id);
        let block = &mut self.blocks[id as usize];
        block.ref_count = 1;
        if let Some(hash) = block.hash.take() {
            if self.cached.get(&hash) == Some(&id) {
                self.cached.remove(&hash);
            }
        }
        Some(id)
    }

    /// Drops one reference; a block nobody uses goes to the free list, keeping its content
    /// (and index entry) until it is allocated again.
    pub fn release(&mut self, id: BlockId) {
        let block = &mut self.blocks[id as usize];
        assert!(block.ref_count > 0, "block {id} released more often than taken");
        block.ref_count -= 1;
        if block.ref_count == 0 {
            if block.hash.is_some() {
                self.push_back(id);
            } else {
                self.push_front(id);
            }
        }
    }

    /// Releases a sequence's blocks, last block first so that its tail is evicted first.
    pub fn release_all(&mut self, table: &[BlockId]) {
        for &id in table.iter().rev() {
            self.release(id);
        }
    }

    /// The longest chain of cached blocks matching `hashes`; takes a reference on each.
    pub fn lookup_prefix(&mut self, hashes: &[BlockHash]) -> Vec<BlockId> {
        if !self.prefix_caching {
            return Vec::new();
        }
        self.stats.prefix_queries += hashes.len() as u64;
        let mut found = Vec::new();
        for hash in hashes {
            match self.cached.get(hash) {
                Some(&id) => found.push(id),
                None => break,
            }
        }
        self.stats.prefix_hits += found.len() as u64;
        for &id in &found {
            self.take_ref(id);
        }
        found
    }

    /// Records that block `id` is full and holds the content identified by `hash`.
    pub fn register(&mut self, id: BlockId, hash: BlockHash) {
        if !self.prefix_caching || self.blocks[id as usize].hash.is_some() {
            return;
        }
        if let std::collections::hash_map::Entry::Vacant(slot) = self.cached.entry(hash) {
            slot.insert(id);
            self.blocks[id as usize].hash = Some(hash);
        }
    }

    pub fn ref_count(&self, id: BlockId) -> u32 {
        self.blocks[id as usize].ref_count
    }

    fn take_ref(&mut self, id: BlockId) {
        if self.blocks[id as usize].ref_count == 0 {
            self.unlink(id);
        }
        self.blocks[id as usize].ref_count += 1;
    }

    fn push_back(&mut self, id: u32) {
        let tail = self.tail;
        self.blocks[id as usize].prev = tail;
        self.blocks[id as usize].next = NONE;
        if tail == NONE {
            self.head = id;
        } else {
            self.blocks[tail as usize].next = id;
        }
        self.tail = id;
        self.free_count += 1;
    }

    fn push_front(&mut self, id: u32) {
        let head = self.head;
        self.blocks[id as usize].next = head;
        self.blocks[id as usize].prev = NONE;
        if head == NONE {
            self.tail = id;
        } else {
            self.blocks[head as usize].prev = id;
        }
        self.head = id;
        self.free_count += 1;
    }

    fn unlink(&mut self, id: u32) {
        let (prev, next) = (self.blocks[id as usize].prev, self.blocks[id as usize].next);
        if prev == NONE {
            self.head = next;
        } else {
            self.blocks[prev as usize].next = next;
        }
        if next == NONE {
            self.tail = prev;
        } else {
            self.blocks[next as usize].prev = prev;
        }
        self.free_count -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::hash::block_hashes;

    #[test]
    fn allocate_until_empty_and_release_back() {
        let mut pool = BlockPool::new(3, true);
        let ids: Vec<_> = (0..3).map(|_| pool.allocate().unwrap()).collect();
        assert_eq!(pool.allocate(), None);
        assert_eq!(pool.usage(), 1.0);
        pool.release_all(&ids);
        assert_eq!(pool.num_free(), 3);
    }

    #[test]
    fn cached_blocks_are_reused_and_evicted_last() {
        let mut pool = BlockPool::new(4, true);
        let hashes = block_hashes(&[1, 2, 3, 4], 2);
        let a = pool.allocate().unwrap();
        let b = pool.allocate().unwrap();
        pool.register(a, hashes[0]);
        pool.register(b, hashes[1]);
        let scratch = pool.allocate().unwrap();
        pool.release_all(&[a, b, scratch]);
        // a fresh allocation takes the uncached block first
        let c = pool.allocate().unwrap();
        assert!(c != a && c != b);
        let hit = pool.lookup_prefix(&hashes);
        assert_eq!(hit, vec![a, b]);
        assert_eq!(pool.ref_count(a), 1);
        assert_eq!(pool.stats(), PoolStats { prefix_queries: 2, prefix_hits: 2 });
    }

    #[test]
    fn eviction_forgets_the_hash() {
        let mut pool = BlockPool::new(1, true);
        let h = block_hashes(&[7, 7], 2);
        let a = pool.allocate().unwrap();
        pool.register(a, h[0]);
        pool.release(a);
        let again = pool.allocate().unwrap();
        assert_eq!(again, a);
        pool.release(again);
        assert!(pool.lookup_prefix(&h).is_empty(), "content was overwritten");
    }

    #[test]
    fn prefix_caching_can_be_off() {
        let mut pool = BlockPool::new(2, false);
        let h = block_hashes(&[1, 1], 2);
        let a = pool.allocate().unwrap();
        pool.register(a, h[0]);
        pool.release(a);
        assert!(pool.lookup_prefix(&h).is_empty());
    }
}
