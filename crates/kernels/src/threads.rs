//! The one thread policy of the program: a rayon pool sized once, candle's spinning disabled.

use std::sync::OnceLock;

static THREADS: OnceLock<usize> = OnceLock::new();

/// Sets the number of compute threads for the whole process (first call wins).
///
/// Compute runs on rayon's global pool, whose idle workers sleep rather than spin, so an
/// HTTP thread or another process competing for a core does not stall every step.
/// candle's own pools are not used on the hot path; its spin limit is set to zero anyway.
pub fn init(requested: Option<usize>) -> usize {
    *THREADS.get_or_init(|| {
        let n = requested.filter(|&n| n > 0).unwrap_or_else(default_threads);
        if std::env::var_os("CANDLE_BARRIER_POOL_SPIN_LIMIT").is_none() {
            std::env::set_var("CANDLE_BARRIER_POOL_SPIN_LIMIT", "0");
        }
        // Another caller may have built the pool already (tests); that is fine.
        let _ = rayon::ThreadPoolBuilder::new().num_threads(n).build_global();
        rayon::current_num_threads()
    })
}

/// One thread per available core.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}
