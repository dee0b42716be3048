//! [`Tarpit`]: the refusals of a caller that ignores `Retry-After` are held.
//!
//! A `429` costs the controller almost as much as an answer (the TLS record,
//! the HTTP parse, the body), so a caller that asks again at once, however
//! often it is refused, still takes its share of the controller's CPU from
//! honest callers. The first refusal of an identity at an endpoint opens a
//! window as long as the wait it names. An honest caller is refused at most
//! once per request it had in flight in that window, since each request
//! then waits: a crank client holds at most [`FREE_REFUSALS`] connections
//! to a controller (awc's pool). Past that many refusals in one window, the
//! caller is not waiting, and each further refusal is answered after
//! [`HOLD`]: its connections (at most `--max-connections-per-identity`) then
//! carry one refusal a second each. Admitted requests never touch the
//! tarpit.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crank_net::identity::PeerIdentity;

use super::limits::Endpoint;

/// How long a refusal past [`FREE_REFUSALS`] in one window is held.
pub const HOLD: Duration = Duration::from_secs(1);

/// Refusals one identity gets at once per window at an endpoint: as many
/// requests as a crank client can have in flight to one controller (its
/// connection pool's 100), each refused once before it waits as told.
pub const FREE_REFUSALS: u32 = 100;

/// One identity's refusals at one endpoint since its window opened.
#[derive(Debug, Clone, Copy)]
struct Window {
    ends: Instant,
    refusals: u32,
}

/// The open windows of refused callers, per endpoint.
#[derive(Default)]
pub struct Tarpit {
    windows: Mutex<HashMap<(PeerIdentity, Endpoint), Window>>,
}

impl Tarpit {
    /// `caller` is refused at `endpoint` at `now` and told to wait
    /// `retry_after`: how long to hold that answer ([`HOLD`] past
    /// [`FREE_REFUSALS`] in the window, else nothing).
    pub fn refuse(
        &self,
        caller: &PeerIdentity,
        endpoint: Endpoint,
        now: Instant,
        retry_after: Duration,
    ) -> Duration {
        let mut windows = self.lock();
        let window = windows.entry((caller.clone(), endpoint)).or_insert(Window {
            ends: now,
            refusals: 0,
        });
        if now >= window.ends {
            // The wait it was told is over: a fresh start.
            *window = Window {
                ends: now + retry_after,
                refusals: 0,
            };
        }
        window.refusals = window.refusals.saturating_add(1);
        if window.refusals > FREE_REFUSALS {
            HOLD
        } else {
            Duration::ZERO
        }
    }

    /// Forgets the windows that have ended, so the memory stays with the
    /// callers refused in the last moments.
    pub fn forget_ended(&self, now: Instant) {
        let mut windows = self.lock();
        windows.retain(|_, window| now < window.ends);
        if windows.capacity() > 2 * windows.len() + 64 {
            windows.shrink_to_fit();
        }
    }

    /// Forgets every window: the rates changed (a policy reload), and what
    /// callers were told was under the old ones.
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// Identities with an open window.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no window is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(PeerIdentity, Endpoint), Window>> {
        self.windows.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crank_net::identity::Role;

    const WAIT: Duration = Duration::from_secs(1);

    fn refusals(tarpit: &Tarpit, caller: &PeerIdentity, at: Instant, n: u32) -> Vec<Duration> {
        (0..n)
            .map(|_| tarpit.refuse(caller, Endpoint::Route, at, WAIT))
            .collect()
    }

    #[test]
    fn a_caller_waiting_as_told_is_never_held_however_many_requests_it_had_in_flight() {
        let tarpit = Tarpit::default();
        let client = PeerIdentity::new(Role::Client, "pooled");
        let start = Instant::now();
        // A full pool of requests refused at once, then each waits as told:
        // window after window, nothing is held.
        for round in 0..5 {
            let at = start + WAIT * round + Duration::from_millis(1);
            let held = refusals(&tarpit, &client, at, FREE_REFUSALS);
            assert!(held.iter().all(Duration::is_zero), "round {round}");
        }
    }

    #[test]
    fn a_caller_past_its_free_refusals_in_one_window_is_held_until_the_window_ends() {
        let tarpit = Tarpit::default();
        let (flood, other) = (
            PeerIdentity::new(Role::Admin, "flood"),
            PeerIdentity::new(Role::Client, "other"),
        );
        let start = Instant::now();
        refusals(&tarpit, &flood, start, FREE_REFUSALS);
        let soon = start + Duration::from_millis(10);
        assert_eq!(tarpit.refuse(&flood, Endpoint::Route, soon, WAIT), HOLD);
        assert_eq!(tarpit.refuse(&flood, Endpoint::Route, soon, WAIT), HOLD);
        // Another endpoint, another identity: windows of their own.
        assert!(tarpit
            .refuse(&flood, Endpoint::Report, soon, WAIT)
            .is_zero());
        assert!(tarpit.refuse(&other, Endpoint::Route, soon, WAIT).is_zero());
        // Held refusals do not push the window on: it ends when the first
        // refusal's wait does, and the next one starts afresh.
        let later = start + WAIT;
        assert!(tarpit
            .refuse(&flood, Endpoint::Route, later, WAIT)
            .is_zero());
    }

    #[test]
    fn ended_windows_are_forgotten_and_a_reload_forgets_all() {
        let tarpit = Tarpit::default();
        let start = Instant::now();
        for (n, wait) in [(0, 1), (1, 60)] {
            let caller = PeerIdentity::new(Role::Client, format!("c{n}"));
            tarpit.refuse(&caller, Endpoint::Route, start, Duration::from_secs(wait));
        }
        assert_eq!(tarpit.len(), 2);
        tarpit.forget_ended(start + Duration::from_secs(2));
        assert_eq!(tarpit.len(), 1);
        tarpit.clear();
        assert!(tarpit.is_empty());
    }
}
