//! What the simulator knows of the fleet, and its clock.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use actix::clock::Instant;
use chrono::Utc;

use super::super::core::Now;

/// What the simulator knows of the fleet from what it told the registry and
/// what the registry answered.
#[derive(Debug, Default)]
pub struct Model {
    pub workers: BTreeMap<String, ModelWorker>,
    /// The latest grace period's start and end.
    pub grace: Option<(Instant, Instant)>,
}

#[derive(Debug)]
pub struct ModelWorker {
    pub instance: Option<String>,
    pub keys: BTreeSet<String>,
    pub last_beat: Instant,
    pub marked_stale: bool,
    pub ejected_until: Option<Instant>,
    /// Drained: never routed to until it registers again.
    pub draining: bool,
}

impl Model {
    /// Whether `worker` may be routed to at `now`: not marked stale, not
    /// ejected, not draining, and heard from within `stale_after` unless a grace period
    /// begun after its last beat is in force.
    pub fn may_route(&self, worker: &ModelWorker, now: Instant, stale_after: Duration) -> bool {
        if worker.marked_stale || worker.ejected_until.is_some() || worker.draining {
            return false;
        }
        let silent = now.saturating_duration_since(worker.last_beat) >= stale_after;
        let shielded = self
            .grace
            .is_some_and(|(from, until)| now < until && worker.last_beat < from);
        !silent || shielded
    }

    /// Whether `worker` is routable whatever the grace periods say.
    pub fn surely_routable(worker: &ModelWorker, now: Instant, stale_after: Duration) -> bool {
        !worker.marked_stale
            && !worker.draining
            && worker.ejected_until.is_none()
            && now.saturating_duration_since(worker.last_beat) < stale_after
    }
}

/// A run's clock: monotonic time only moves forward, wall time may jump.
pub struct Clock {
    pub start: Instant,
    pub elapsed: Duration,
    pub wall_skew_ms: i64,
}

impl Clock {
    pub fn now(&self) -> Now {
        let wall = Utc::now() + chrono::Duration::milliseconds(self.wall_skew_ms);
        Now {
            mono: self.start + self.elapsed,
            wall,
        }
    }
}
