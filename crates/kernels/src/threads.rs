//! The one thread policy of the program: one compute pool sized once, whose idle workers
//! sleep rather than spin, and candle's spinning turned off.

use std::sync::OnceLock;

static POOL: OnceLock<rayon::ThreadPool> = OnceLock::new();

/// Sets the number of compute threads for the whole process (first call wins) and returns it.
///
/// An HTTP thread or another process competing for a core must not stall every step, so the
/// workers block when idle; candle's own pools are not used on the hot path and its spin
/// limit is set to zero anyway.
pub fn init(requested: Option<usize>) -> usize {
    pool_with(requested).current_num_threads()
}

fn pool_with(requested: Option<usize>) -> &'static rayon::ThreadPool {
    POOL.get_or_init(|| {
        let n = requested.filter(|&n| n > 0).unwrap_or_else(default_threads);
        if std::env::var_os("CANDLE_BARRIER_POOL_SPIN_LIMIT").is_none() {
            std::env::set_var("CANDLE_BARRIER_POOL_SPIN_LIMIT", "0");
        }
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .thread_name(|i| format!("hearth-compute-{i}"))
            .build()
            .expect("cannot start the compute threads")
    })
}

/// Runs `f` on the compute pool, the calling thread joining as a worker would: parallel loops
/// inside split between the pool's threads without a sleeping hand-off per loop.
pub fn install<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    pool_with(None).install(f)
}

/// Number of compute threads.
pub fn num_threads() -> usize {
    pool_with(None).current_num_threads()
}

/// One thread per available core.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}
