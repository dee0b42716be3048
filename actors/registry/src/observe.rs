//! What observers ask the [`RegistryActor`](super::RegistryActor): the
//! [`Snapshot`] a watch stream starts from, and the [`GetGauges`] a metrics
//! scrape reads. Both are answered from counts the registry keeps, or (a
//! snapshot) by one walk over the fleet, as `GET /workers` does.

use std::time::Duration;

use actix::prelude::*;

use super::messages::WorkerView;

/// Every worker, and the id of the last change published before them (see
/// [`FleetSnapshot::last_event_id`]).
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "FleetSnapshot")]
pub struct Snapshot;

/// What [`Snapshot`] answers.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetSnapshot {
    /// Every worker, ordered by id.
    pub workers: Vec<WorkerView>,
    /// How many changes the registry has handed its
    /// [`ChangeSink`](super::ChangeSink)s so far: the n-th change ever
    /// published is change n, so this is the id of the last change the
    /// snapshot includes. A sink attached before the registry started sees
    /// every change, and can number them the same way.
    pub last_event_id: u64,
}

/// The registry's gauges for a metrics scrape.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "FleetGauges")]
pub struct GetGauges;

/// What [`GetGauges`] answers: counts the registry maintains as it changes,
/// so reading them does not walk the fleet (except for `suspect`, during a
/// grace period only).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FleetGauges {
    pub workers: usize,
    /// Workers neither marked stale nor suspect.
    pub healthy: usize,
    /// Silent past `stale_after` but shielded by a grace period: still routed
    /// to. Always 0 outside a grace period; counted by a walk during one.
    pub suspect: usize,
    /// Workers the sweeper marked stale (judged every sweep interval).
    pub stale: usize,
    /// Workers ejected from routing for failing their callers (whatever
    /// their state), until a reported success or a heartbeat after the
    /// ejection's interval.
    pub ejected: usize,
    /// Providers per capability (`verb:name`), whatever their state.
    pub capabilities: Vec<(String, usize)>,
    /// Complete sweeps so far.
    pub sweeps: u64,
    /// The longest single sweep step so far.
    pub longest_sweep_step: Duration,
    /// How long answering this held the registry (wall time).
    pub held_for: Duration,
}
