//! Memory read bandwidth with the compute threads (what decode is bounded by), and a counter of
//! the weight bytes the quantized matrix products read, which decode's bytes per token are
//! measured with.

use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;

static WEIGHT_BYTES_READ: AtomicU64 = AtomicU64::new(0);

/// Weight bytes the matrix products have read since the program started: each call counts the
/// bytes of every matrix it multiplies (a matrix is streamed once per call, whatever the
/// number of activation rows).
pub fn weight_bytes_read() -> u64 {
    WEIGHT_BYTES_READ.load(Ordering::Relaxed)
}

pub(crate) fn count_weight_bytes(bytes: usize) {
    WEIGHT_BYTES_READ.fetch_add(bytes as u64, Ordering::Relaxed);
}

/// Bytes each thread reads per piece (large enough to stream, small enough to balance).
const PIECE: usize = 1 << 20;

/// Reads every byte of `buffer` once on the compute threads, each thread a run of whole
/// pieces; returns a checksum (so the reads cannot be left out).
pub fn read_all(buffer: &[u64]) -> u64 {
    crate::threads::install(|| buffer.par_chunks(PIECE / 8).map(sum_piece).reduce(|| 0, u64::wrapping_add))
}

/// `sum_words` in 256-bit vectors where the CPU has AVX2 (the baseline's 128-bit adds would
/// not keep up with the memory of a recent server core).
fn sum_piece(words: &[u64]) -> u64 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above).
        return unsafe { sum_words_avx2(words) };
    }
    sum_words(words)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn sum_words_avx2(words: &[u64]) -> u64 {
    sum_words(words)
}

/// The wrapping sum of `words`, in eight independent lanes so that the loads vectorize.
#[inline(always)]
fn sum_words(words: &[u64]) -> u64 {
    let mut lanes = [0u64; 8];
    let chunks = words.chunks_exact(8);
    let tail: u64 = chunks.remainder().iter().fold(0, |a, &w| a.wrapping_add(w));
    for chunk in chunks {
        for (lane, &word) in lanes.iter_mut().zip(chunk) {
            *lane = lane.wrapping_add(word);
        }
    }
    lanes.iter().fold(tail, |a, &l| a.wrapping_add(l))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checksum_is_the_sum_of_every_word() {
        for len in [0, 7, 8, 1000, PIECE / 8 * 3 + 5] {
            let words: Vec<u64> = (0..len as u64).map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15)).collect();
            let expected = words.iter().fold(0u64, |a, &w| a.wrapping_add(w));
            assert_eq!(read_all(&words), expected, "{len} words");
        }
    }
}
