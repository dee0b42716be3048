//! [`Tarpit`]: the refusals of a caller that ignores `Retry-After` are held.
//!
//! A `429` costs the controller almost as much as an answer (the TLS record,
//! the HTTP parse, the body), so a caller that asks again at once, however
//! often it is refused, still takes its share of the controller's CPU from
//! honest callers. A caller is told when to come back; one that asks again
//! for the same endpoint before then gets its next refusal only after
//! [`HOLD`]. Its connections (at most `--max-connections-per-identity`) then
//! carry one refusal a second each, and a caller that waits as asked never
//! sees a held answer. The admitted path never touches the tarpit.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crank_net::identity::PeerIdentity;

use super::limits::Endpoint;

/// How long a refusal of a caller that ignored its last `Retry-After` is held.
pub const HOLD: Duration = Duration::from_secs(1);

/// When each refused caller was told it may ask again, per endpoint.
#[derive(Default)]
pub struct Tarpit {
    told: Mutex<HashMap<(PeerIdentity, Endpoint), Instant>>,
}

impl Tarpit {
    /// `caller` is refused at `endpoint` at `now` and told to wait
    /// `retry_after`: how long to hold that answer ([`HOLD`] if it asked
    /// before its last refusal's wait was over, else nothing).
    pub fn refuse(
        &self,
        caller: &PeerIdentity,
        endpoint: Endpoint,
        now: Instant,
        retry_after: Duration,
    ) -> Duration {
        let mut told = self.told.lock().unwrap_or_else(|e| e.into_inner());
        let key = (caller.clone(), endpoint);
        let ignored = told.get(&key).is_some_and(|until| now < *until);
        let hold = if ignored { HOLD } else { Duration::ZERO };
        // The wait it is told runs from when the answer leaves.
        told.insert(key, now + hold + retry_after);
        hold
    }

    /// Forgets callers whose wait is over, so the memory stays with the
    /// callers refused in the last moments.
    pub fn forget_expired(&self, now: Instant) {
        let mut told = self.told.lock().unwrap_or_else(|e| e.into_inner());
        told.retain(|_, until| now < *until);
        told.shrink_to_fit();
    }

    /// Callers remembered, for the tests.
    pub fn len(&self) -> usize {
        self.told.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether no caller is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crank_net::identity::Role;

    #[test]
    fn a_caller_that_waits_as_told_is_never_held_and_one_that_does_not_is() {
        let tarpit = Tarpit::default();
        let (honest, hostile) = (
            PeerIdentity::new(Role::Client, "honest"),
            PeerIdentity::new(Role::Client, "hostile"),
        );
        let start = Instant::now();
        let wait = Duration::from_secs(1);
        // First refusals are answered at once, whoever asks.
        assert_eq!(
            tarpit.refuse(&honest, Endpoint::Route, start, wait),
            Duration::ZERO
        );
        assert_eq!(
            tarpit.refuse(&hostile, Endpoint::Route, start, wait),
            Duration::ZERO
        );
        // The hostile caller asks again at once, and again as soon as its
        // held answer arrives: held each time.
        let again = start + Duration::from_millis(1);
        assert_eq!(tarpit.refuse(&hostile, Endpoint::Route, again, wait), HOLD);
        let after_hold = again + HOLD;
        assert_eq!(
            tarpit.refuse(&hostile, Endpoint::Route, after_hold, wait),
            HOLD
        );
        // Another endpoint is another bucket, told nothing yet.
        assert_eq!(
            tarpit.refuse(&hostile, Endpoint::Report, again, wait),
            Duration::ZERO
        );
        // The honest caller comes back when told, is refused again (its
        // bucket is still empty) and is answered at once.
        assert_eq!(
            tarpit.refuse(&honest, Endpoint::Route, start + wait, wait),
            Duration::ZERO
        );
    }

    #[test]
    fn callers_whose_wait_is_over_are_forgotten() {
        let tarpit = Tarpit::default();
        let start = Instant::now();
        for (n, wait) in [(0, 1), (1, 60)] {
            let caller = PeerIdentity::new(Role::Client, format!("c{n}"));
            tarpit.refuse(&caller, Endpoint::Route, start, Duration::from_secs(wait));
        }
        assert_eq!(tarpit.len(), 2);
        tarpit.forget_expired(start + Duration::from_secs(2));
        assert_eq!(tarpit.len(), 1);
        tarpit.forget_expired(start + Duration::from_secs(61));
        assert!(tarpit.is_empty());
    }
}
