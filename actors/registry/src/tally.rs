//! [`Tally`]: what the router keeps of each worker besides its record, kept
//! in the record itself. The estimate is the [`router`](super::router)'s;
//! the ejection rule is here.

use std::time::Duration;

use actix::clock::Instant;
use crank_balance::PeakEwma;
use crank_proto::domain::ObservedLoad;

pub use crank_balance::ejection::{EJECT_AFTER_FAILURES, FIRST_EJECTION, MAX_EJECTION};

/// What the router keeps of one worker besides its record: its own estimate of
/// routes in flight, when the load was reported, and the outlier state.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// Routes handed out since the last load report, decayed to `routed_at`.
    routed: f64,
    routed_at: Option<Instant>,
    /// When the record's load was reported.
    pub load_at: Option<Instant>,
    /// Failures reported in a row.
    failures: u16,
    /// Ejections since the last reported success.
    ejections: u16,
    /// Ejected from routing until then, and until a heartbeat after it.
    pub ejected_until: Option<Instant>,
    /// The latency callers report, as the router weighs it.
    pub latency: PeakEwma,
    /// The load the worker's last reported answer carried, and when.
    pub observed: Option<(ObservedLoad, Instant)>,
}

impl Tally {
    /// The routes handed out since the last report still estimated in flight at `now`.
    pub fn routed(&self, now: Instant, service_time: Duration) -> f64 {
        match self.routed_at {
            Some(at) if self.routed > 0.0 => {
                let elapsed = now.saturating_duration_since(at).as_secs_f64();
                self.routed * (-elapsed / service_time.as_secs_f64().max(1e-3)).exp()
            }
            _ => 0.0,
        }
    }

    /// One more route handed out at `now`.
    pub fn note_route(&mut self, now: Instant, service_time: Duration) {
        self.routed = self.routed(now, service_time) + 1.0;
        self.routed_at = Some(now);
    }

    /// A heartbeat at `now`, with a load report or not. Returns whether it
    /// ended an ejection.
    pub fn note_heartbeat(&mut self, now: Instant, with_load: bool) -> bool {
        if with_load {
            self.routed = 0.0;
            self.routed_at = None;
            self.load_at = Some(now);
            self.observed = None;
        }
        match self.ejected_until {
            Some(until) if until <= now => {
                self.ejected_until = None;
                true
            }
            _ => false,
        }
    }

    /// A caller's report of one call: it is no longer in flight, its
    /// latency feeds the estimate, and the load its answer carried replaces
    /// the routes counted since (as a heartbeat's does).
    pub fn note_call(
        &mut self,
        latency: Option<Duration>,
        load: Option<ObservedLoad>,
        now: Instant,
        service_time: Duration,
    ) {
        if let Some(latency) = latency {
            self.latency.observe(latency, now);
        }
        if let Some(load) = load {
            self.observed = Some((load, now));
            self.routed = 0.0;
            self.routed_at = None;
        } else if self.routed_at.is_some() {
            self.routed = (self.routed(now, service_time) - 1.0).max(0.0);
            self.routed_at = Some(now);
        }
    }

    /// A caller's report. Returns the length of the ejection it began, if any.
    pub fn note_outcome(&mut self, success: bool, now: Instant) -> Option<Duration> {
        if success {
            self.failures = 0;
            self.ejections = 0;
            self.ejected_until = None;
            return None;
        }
        self.failures = self.failures.saturating_add(1);
        if self.failures < EJECT_AFTER_FAILURES || self.ejected_until.is_some() {
            return None;
        }
        let length = crank_balance::ejection::ejection_length(self.ejections);
        self.ejections = self.ejections.saturating_add(1);
        self.failures = 0;
        self.ejected_until = Some(now + length);
        Some(length)
    }

    pub fn is_ejected(&self) -> bool {
        self.ejected_until.is_some()
    }

    /// Ends an ejection without a heartbeat: for a record another controller
    /// judges, once its interval is over (see `Registry::sweep_step`).
    pub fn end_ejection(&mut self) {
        self.ejected_until = None;
    }
}
