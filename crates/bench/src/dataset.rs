//! Deterministic prompts from a seed: random token ids, so every server sees exactly the
//! same input lengths and no two prompts share a cached prefix.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// One benchmark request: its prompt token ids and how many tokens to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchPrompt {
    pub tokens: Vec<u32>,
    pub output_len: usize,
}

/// Token ids are drawn from this range: ordinary text tokens in the vocabularies of the
/// models we serve (no special or control tokens, which sit at the ends).
pub const TOKEN_RANGE: std::ops::Range<u32> = 1000..30000;

/// `count` prompts of `input_len` random tokens each.
pub fn random_token_prompts(count: usize, input_len: usize, output_len: usize, seed: u64) -> Vec<BenchPrompt> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..count)
        .map(|_| BenchPrompt { tokens: (0..input_len).map(|_| rng.random_range(TOKEN_RANGE)).collect(), output_len })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts_are_deterministic_and_distinct() {
        let a = random_token_prompts(4, 32, 8, 7);
        assert_eq!(a, random_token_prompts(4, 32, 8, 7));
        assert_ne!(a, random_token_prompts(4, 32, 8, 8));
        assert!(a.iter().all(|p| p.tokens.len() == 32 && p.output_len == 8));
        assert_ne!(a[0].tokens[..4], a[1].tokens[..4]);
    }
}
