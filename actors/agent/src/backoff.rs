//! Exponential backoff with full jitter, as AWS's architecture blog describes it:
//! the n-th retry waits a uniformly random time in `[0, min(cap, initial * 2^n)]`,
//! so a fleet that lost its controller does not come back in lockstep.

use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Default first retry ceiling.
pub const DEFAULT_INITIAL_BACKOFF: Duration = Duration::from_secs(1);
/// Default largest retry ceiling.
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Retry timing for one sequence of attempts.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    cap: Duration,
    full_jitter: bool,
    rng: SmallRng,
}

impl Backoff {
    /// Full-jitter backoff from `initial` doubling up to `cap`.
    pub fn new(initial: Duration, cap: Duration) -> Self {
        Backoff {
            initial,
            cap,
            full_jitter: true,
            rng: SmallRng::from_os_rng(),
        }
    }

    /// The same schedule without jitter: every wait is its ceiling. For tests
    /// that need to see the doubling itself.
    pub fn without_jitter(initial: Duration, cap: Duration) -> Self {
        Backoff {
            full_jitter: false,
            ..Backoff::new(initial, cap)
        }
    }

    /// The longest wait before retry number `retry` (0-based).
    pub fn ceiling(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.min(31));
        self.initial.saturating_mul(factor).min(self.cap)
    }

    /// How long to wait before retry number `retry`.
    pub fn delay(&mut self, retry: u32) -> Duration {
        let ceiling = self.ceiling(retry);
        if self.full_jitter {
            scaled(ceiling, self.rng.random::<f64>())
        } else {
            ceiling
        }
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new(DEFAULT_INITIAL_BACKOFF, DEFAULT_MAX_BACKOFF)
    }
}

/// `duration × factor`, saturating at [`Duration::MAX`] and at zero where
/// `Duration::mul_f64` would panic (a factor that is negative, not finite, or
/// overflows).
pub fn scaled(duration: Duration, factor: f64) -> Duration {
    let seconds = duration.as_secs_f64() * factor;
    if seconds.is_nan() || seconds <= 0.0 {
        return Duration::ZERO;
    }
    Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceilings_double_from_one_second_to_a_thirty_second_cap() {
        let backoff = Backoff::default();
        let ceilings: Vec<u64> = (0..8).map(|n| backoff.ceiling(n).as_secs()).collect();
        assert_eq!(ceilings, vec![1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(backoff.ceiling(u32::MAX), Duration::from_secs(30));
    }

    #[test]
    fn full_jitter_stays_within_the_ceiling_and_varies() {
        let mut backoff = Backoff::default();
        let delays: Vec<Duration> = (0..200).map(|_| backoff.delay(5)).collect();
        assert!(delays.iter().all(|d| *d <= Duration::from_secs(30)));
        let distinct: std::collections::HashSet<_> = delays.iter().collect();
        assert!(distinct.len() > 100, "jitter should spread the delays");
    }
}
