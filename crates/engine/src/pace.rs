//! Keeps engine steps near a target duration: the token budget of the next step follows the
//! time per token the last budget-bound step took, so that one step of long prefills cannot
//! keep aborts and new arrivals waiting for many seconds on a slow CPU.

use std::time::Duration;

/// The step budget and what it is derived from.
#[derive(Debug, Clone, PartialEq)]
pub struct StepPacer {
    target_seconds: f64,
    max_tokens: usize,
    budget: usize,
}

/// Steps with fewer tokens than this say more about fixed costs than about time per token.
const MIN_MEASURED_TOKENS: usize = 16;
/// The budget before any step was measured: small enough for any CPU to run in about a
/// second, and it grows after one full step where the CPU is faster.
const FIRST_BUDGET: usize = 256;

impl StepPacer {
    /// A pacer for steps of about `target_seconds` (infinite: always the maximum budget).
    pub fn new(target_seconds: f64, max_tokens: usize) -> Self {
        let budget = if target_seconds.is_finite() { max_tokens.min(FIRST_BUDGET) } else { max_tokens };
        StepPacer { target_seconds, max_tokens, budget }
    }

    /// Tokens the next step may run.
    pub fn budget(&self) -> usize {
        self.budget
    }

    /// Learns from a finished step of `tokens` tokens. Only steps that used most of their
    /// budget move it: the budget becomes what fits the target at that step's pace.
    pub fn record(&mut self, tokens: usize, took: Duration) {
        let seconds = took.as_secs_f64();
        if tokens < MIN_MEASURED_TOKENS || tokens * 2 < self.budget || seconds <= 0.0 {
            return;
        }
        let fits = (tokens as f64 * self.target_seconds / seconds) as usize;
        self.budget = fits.clamp(MIN_MEASURED_TOKENS, self.max_tokens);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_follows_the_pace_of_full_steps() {
        assert_eq!(StepPacer::new(f64::INFINITY, 2048).budget(), 2048, "no target, no limit");
        let mut pace = StepPacer::new(1.0, 2048);
        assert_eq!(pace.budget(), FIRST_BUDGET, "unmeasured: a budget any CPU runs in about a second");
        pace.record(256, Duration::from_millis(125)); // 2048 tokens per second
        assert_eq!(pace.budget(), 2048);
        pace.record(2048, Duration::from_secs(8)); // 256 tokens per second
        assert_eq!(pace.budget(), 256);
        pace.record(3, Duration::from_secs(5)); // a decode step: no information about prefill
        assert_eq!(pace.budget(), 256);
        pace.record(100, Duration::from_secs(1)); // under half the budget: not budget-bound
        assert_eq!(pace.budget(), 256);
        pace.record(256, Duration::from_millis(250)); // faster now: grows, up to the maximum
        assert_eq!(pace.budget(), 1024);
        pace.record(1024, Duration::from_millis(10));
        assert_eq!(pace.budget(), 2048);
        pace.record(2048, Duration::from_secs(1000));
        assert_eq!(pace.budget(), MIN_MEASURED_TOKENS, "never below a useful chunk");
    }
}
