//! [`expected_wait`]: what a new call to a provider is expected to cost, and
//! [`better`]: the comparison both balancers make between two providers.

/// How long a new call is expected to take at a provider whose answers take
/// `latency_ms`, with `in_flight` calls already there and room for `capacity`
/// at once (`None`: unknown, taken as one, as tower's Peak-EWMA does).
///
/// Below capacity a call waits for nobody, so the wait is the latency; at and
/// past it, each full round of calls ahead adds one latency.
pub fn expected_wait(latency_ms: f64, in_flight: f64, capacity: Option<f64>) -> f64 {
    let capacity = capacity.filter(|c| *c >= 1.0).unwrap_or(1.0);
    let rounds = ((in_flight.max(0.0) + 1.0) / capacity).max(1.0);
    latency_ms.max(0.0) * rounds
}

/// Whether a provider with expected wait `theirs` should be chosen over one
/// with `ours`: strictly better only, so ties keep the caller's order (the
/// rotation, which spreads equal providers evenly).
pub fn better(theirs: f64, ours: f64) -> bool {
    theirs < ours
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_capacity_the_wait_is_the_latency() {
        assert_eq!(expected_wait(10.0, 0.0, Some(8.0)), 10.0);
        assert_eq!(expected_wait(10.0, 7.0, Some(8.0)), 10.0);
    }

    #[test]
    fn each_round_of_capacity_ahead_adds_a_latency() {
        assert_eq!(expected_wait(10.0, 15.0, Some(8.0)), 20.0);
        assert_eq!(expected_wait(10.0, 79.0, Some(8.0)), 100.0);
    }

    #[test]
    fn a_fast_provider_is_preferred_until_its_queue_costs_more_than_a_slow_one() {
        let slow_idle = expected_wait(100.0, 0.0, Some(8.0));
        assert!(better(expected_wait(10.0, 40.0, Some(8.0)), slow_idle));
        assert!(!better(expected_wait(10.0, 80.0, Some(8.0)), slow_idle));
    }

    #[test]
    fn unknown_capacity_counts_as_one_and_nonsense_is_clamped() {
        assert_eq!(expected_wait(10.0, 2.0, None), 30.0);
        assert_eq!(expected_wait(10.0, 2.0, Some(0.0)), 30.0);
        assert_eq!(expected_wait(-5.0, -3.0, Some(2.0)), 0.0);
    }
}
