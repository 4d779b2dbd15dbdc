//! A circuit breaker per backend: closed; open after K failures within a window; after the
//! cool-down, half-open with one probe request; closed again when the probe succeeds.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::config::BreakerSettings;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open { until: Instant },
    /// One probe request is allowed; `probing` while it runs.
    HalfOpen { probing: bool },
}

#[derive(Debug)]
pub struct CircuitBreaker {
    state: BreakerState,
    failures: VecDeque<Instant>,
    threshold: usize,
    window: Duration,
    cooldown: Duration,
}

impl CircuitBreaker {
    pub fn new(settings: &BreakerSettings) -> Self {
        CircuitBreaker {
            state: BreakerState::Closed,
            failures: VecDeque::new(),
            threshold: settings.failures.max(1),
            window: Duration::from_secs_f64(settings.window_s),
            cooldown: Duration::from_secs_f64(settings.cooldown_s),
        }
    }

    pub fn state(&self) -> &BreakerState {
        &self.state
    }

    /// Whether a request may go to the backend now (taking the probe slot when half-open).
    pub fn try_acquire(&mut self, now: Instant) -> bool {
        match self.state {
            BreakerState::Closed => true,
            BreakerState::Open { until } if now >= until => {
                self.state = BreakerState::HalfOpen { probing: true };
                true
            }
            BreakerState::Open { .. } => false,
            BreakerState::HalfOpen { probing: false } => {
                self.state = BreakerState::HalfOpen { probing: true };
                true
            }
            BreakerState::HalfOpen { probing: true } => false,
        }
    }

    /// Would a request be let through now (without taking the probe slot)?
    pub fn is_available(&self, now: Instant) -> bool {
        match self.state {
            BreakerState::Closed | BreakerState::HalfOpen { probing: false } => true,
            BreakerState::Open { until } => now >= until,
            BreakerState::HalfOpen { probing: true } => false,
        }
    }

    pub fn on_success(&mut self) {
        self.state = BreakerState::Closed;
        self.failures.clear();
    }

    pub fn on_failure(&mut self, now: Instant) {
        if let BreakerState::HalfOpen { .. } = self.state {
            self.state = BreakerState::Open { until: now + self.cooldown };
            return;
        }
        self.failures.push_back(now);
        while self.failures.front().is_some_and(|&t| now.duration_since(t) > self.window) {
            self.failures.pop_front();
        }
        if self.failures.len() >= self.threshold {
            self.state = BreakerState::Open { until: now + self.cooldown };
            self.failures.clear();
        }
    }

    /// A request that took the probe slot ended without a verdict (e.g. a client error).
    pub fn release_probe(&mut self) {
        if self.state == (BreakerState::HalfOpen { probing: true }) {
            self.state = BreakerState::HalfOpen { probing: false };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> CircuitBreaker {
        CircuitBreaker::new(&BreakerSettings { failures: 3, window_s: 10.0, cooldown_s: 5.0 })
    }

    #[test]
    fn opens_after_k_failures_in_the_window() {
        let (mut b, t0) = (breaker(), Instant::now());
        b.on_failure(t0);
        b.on_failure(t0 + Duration::from_secs(1));
        assert!(b.try_acquire(t0 + Duration::from_secs(2)));
        b.on_failure(t0 + Duration::from_secs(2));
        assert!(matches!(b.state(), BreakerState::Open { .. }));
        assert!(!b.try_acquire(t0 + Duration::from_secs(3)));
    }

    #[test]
    fn old_failures_leave_the_window() {
        let (mut b, t0) = (breaker(), Instant::now());
        b.on_failure(t0);
        b.on_failure(t0 + Duration::from_secs(1));
        b.on_failure(t0 + Duration::from_secs(15));
        assert_eq!(b.state(), &BreakerState::Closed);
    }

    #[test]
    fn half_open_lets_one_probe_through_then_closes_or_reopens() {
        let (mut b, t0) = (breaker(), Instant::now());
        for _ in 0..3 {
            b.on_failure(t0);
        }
        let later = t0 + Duration::from_secs(6);
        assert!(b.is_available(later));
        assert!(b.try_acquire(later), "the probe");
        assert!(!b.try_acquire(later), "only one probe at a time");
        b.on_failure(later);
        assert!(matches!(b.state(), BreakerState::Open { .. }), "a failed probe reopens");
        let again = later + Duration::from_secs(6);
        assert!(b.try_acquire(again));
        b.on_success();
        assert_eq!(b.state(), &BreakerState::Closed);
        assert!(b.try_acquire(again));
    }
}
