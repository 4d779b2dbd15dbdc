//! KV cache bookkeeping: the block pool with prefix caching, and the paged storage.

pub mod hash;
pub mod pool;
pub mod storage;

pub use hash::{block_hashes, BlockHash};
pub use pool::{BlockId, BlockPool, PoolStats};
pub use storage::PagedKv;
