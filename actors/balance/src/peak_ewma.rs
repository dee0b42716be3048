//! [`PeakEwma`]: a provider's latency as its recent answers show it, quick to
//! see a slowdown and slow to forget it.
//!
//! An answer slower than the estimate replaces it (the peak); a faster one is
//! averaged in with a weight that grows with the time since the last update,
//! `1 - e^(-elapsed / DECAY)`, so the estimate follows time, not the call
//! rate. Read between answers, the estimate decays towards zero at the same
//! rate: a provider nobody calls looks faster and faster until one call
//! measures it again (tower's and linkerd's rule, whose decay is also 10 s).

use std::time::Duration;

use tokio::time::Instant;

/// The time constant of the average and of the idle decay.
pub const DECAY: Duration = Duration::from_secs(10);

/// A latency estimate in milliseconds, and when it was last updated.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PeakEwma {
    estimate: Option<(f64, Instant)>,
}

/// The weight the past keeps after `elapsed`.
fn kept(elapsed: Duration) -> f64 {
    (-elapsed.as_secs_f64() / DECAY.as_secs_f64()).exp()
}

impl PeakEwma {
    /// One answer that took `latency`, seen at `now`.
    pub fn observe(&mut self, latency: Duration, now: Instant) {
        let observed = latency.as_secs_f64() * 1000.0;
        let next = match self.estimate {
            None => observed,
            Some((estimate, _)) if observed >= estimate => observed,
            Some((estimate, at)) => {
                let kept = kept(now.saturating_duration_since(at));
                estimate * kept + observed * (1.0 - kept)
            }
        };
        self.estimate = Some((next, now));
    }

    /// The estimate at `now`, in milliseconds, decayed since the last answer;
    /// `None` before the first.
    pub fn estimate_ms(&self, now: Instant) -> Option<f64> {
        self.estimate
            .map(|(estimate, at)| estimate * kept(now.saturating_duration_since(at)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[tokio::test(start_paused = true)]
    async fn a_slowdown_is_seen_at_the_first_slow_answer() {
        let mut latency = PeakEwma::default();
        for _ in 0..100 {
            latency.observe(ms(10), Instant::now());
            tokio::time::advance(ms(20)).await;
        }
        let before = latency.estimate_ms(Instant::now()).unwrap();
        assert!((9.0..=10.0).contains(&before), "{before}");
        latency.observe(ms(100), Instant::now());
        assert_eq!(latency.estimate_ms(Instant::now()), Some(100.0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_recovery_is_averaged_in_over_the_decay_time() {
        let mut latency = PeakEwma::default();
        latency.observe(ms(100), Instant::now());
        // Fast answers every 20 ms for one decay time: the estimate is
        // 10 + 90/e by then, not 10 at once.
        for _ in 0..500 {
            tokio::time::advance(ms(20)).await;
            latency.observe(ms(10), Instant::now());
        }
        let after = latency.estimate_ms(Instant::now()).unwrap();
        let expected = 10.0 + 90.0 * (-1.0f64).exp();
        assert!((after - expected).abs() < 0.5, "{after} vs {expected}");
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_providers_estimate_decays_back() {
        let mut latency = PeakEwma::default();
        assert_eq!(latency.estimate_ms(Instant::now()), None);
        latency.observe(ms(100), Instant::now());
        tokio::time::advance(DECAY).await;
        let idle = latency.estimate_ms(Instant::now()).unwrap();
        assert!((idle - 100.0 / std::f64::consts::E).abs() < 1e-6, "{idle}");
        tokio::time::advance(DECAY * 3).await;
        assert!(latency.estimate_ms(Instant::now()).unwrap() < 2.0);
    }
}
