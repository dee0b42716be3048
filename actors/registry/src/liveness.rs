//! [`Liveness`]: how the registry judges a worker, and the grace it gives the
//! fleet when the judge itself was not looking.
//!
//! A worker is healthy while its last heartbeat is younger than `stale_after`.
//! Two things suspend that rule for a grace period, as Eureka's
//! self-preservation and Nacos' protect threshold do:
//!
//! - **the controller was paused** (SIGSTOP, a VM pause, a stall): its sweeps
//!   came far later than scheduled, so the silence it sees is its own;
//! - **too large a share of the fleet would go stale at once** (more than
//!   `protect_threshold`): a partition or a controller-side fault is likelier
//!   than that many workers dying together.
//!
//! During the grace period a worker silent since before it began is
//! [`WorkerStatus::Suspect`]: still routed to, never marked stale or evicted.
//! Each worker that heartbeats is healthy again; when the period ends, those
//! still silent are judged as usual, so genuinely dead workers still go stale
//! and are evicted, only later.

use std::time::Duration;

use actix::clock::Instant;

use super::record::{Owner, WorkerRecord};
use crank_proto::wire::WorkerStatus;

/// Why a grace period began.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum GraceReason {
    /// The registry heard no sweep for this long (expected: the sweep interval).
    Paused { unseen_for: Duration },
    /// This share of the fleet would be stale.
    MassExpiry { share: f64 },
}

/// A grace period: workers silent since `from` are suspect until `until`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Grace {
    from: Instant,
    until: Instant,
}

/// The liveness rule, with the grace period in force, if any.
#[derive(Debug, Clone)]
pub struct Liveness {
    pub stale_after: Duration,
    grace: Option<Grace>,
    /// When the last grace period ended; mass-expiry protection does not
    /// start again within `stale_after` of it, so a fleet that is really gone
    /// is judged after one grace period, not protected forever.
    last_grace_end: Option<Instant>,
}

impl Liveness {
    pub fn new(stale_after: Duration) -> Self {
        Liveness {
            stale_after,
            grace: None,
            last_grace_end: None,
        }
    }

    /// How long a grace period lasts: half of `stale_after`, two advised
    /// heartbeat intervals, time for every live worker to beat at least once.
    pub fn grace_period(&self) -> Duration {
        self.stale_after / 2
    }

    /// Begins a grace period at `now` (or extends the one in force).
    pub fn begin_grace(&mut self, now: Instant) -> Instant {
        let until = now + self.grace_period();
        let from = self.grace.map_or(now, |g| g.from.min(now));
        self.grace = Some(Grace { from, until });
        until
    }

    /// Ends a grace period whose time is up.
    fn expire_grace(&mut self, now: Instant) {
        if let Some(grace) = self.grace {
            if now >= grace.until {
                self.grace = None;
                self.last_grace_end = Some(grace.until);
            }
        }
    }

    /// The end of the grace period in force at `now`, if any.
    pub fn grace_until(&mut self, now: Instant) -> Option<Instant> {
        self.expire_grace(now);
        self.grace.map(|g| g.until)
    }

    /// Whether mass-expiry protection may begin at `now`.
    pub fn may_protect(&mut self, now: Instant) -> bool {
        self.expire_grace(now);
        self.grace.is_none()
            && self
                .last_grace_end
                .is_none_or(|end| now.saturating_duration_since(end) >= self.stale_after)
    }

    /// Whether `record` has been silent for `stale_after`.
    pub fn is_silent(&self, record: &WorkerRecord, now: Instant) -> bool {
        now.saturating_duration_since(record.last_seen) >= self.stale_after
    }

    /// Whether `record` is silent but shielded by the grace period in force.
    fn is_shielded(&self, record: &WorkerRecord, now: Instant) -> bool {
        self.grace
            .is_some_and(|g| now < g.until && record.last_seen < g.from)
    }

    /// The status of `record` at `now`. Marked stale by a sweep stays stale;
    /// otherwise it is judged on the spot, so the answer does not depend on
    /// when the sweeper last ran.
    pub fn status(&self, record: &WorkerRecord, now: Instant) -> WorkerStatus {
        if record.draining {
            return WorkerStatus::Draining;
        }
        if let Owner::Remote { stale, .. } = record.owner {
            // Its owner judges it; this controller shows what it published.
            return if stale {
                WorkerStatus::Stale
            } else {
                WorkerStatus::Healthy
            };
        }
        if record.stale_since.is_some() {
            WorkerStatus::Stale
        } else if !self.is_silent(record, now) {
            WorkerStatus::Healthy
        } else if self.is_shielded(record, now) {
            WorkerStatus::Suspect
        } else {
            WorkerStatus::Stale
        }
    }

    /// Whether `record` may be routed to.
    pub fn is_routable(&self, record: &WorkerRecord, now: Instant) -> bool {
        self.status(record, now).is_routable()
    }
}
