//! The [`RegistryActor`](super::RegistryActor)'s public contract: the messages it
//! answers and the domain values it answers with. Times are `DateTime` and
//! `Duration`; the HTTP layer formats them for the wire.

use std::collections::BTreeMap;
use std::time::Duration;

use actix::prelude::*;
use chrono::{DateTime, Utc};

use super::router::NoRoute;
use crank_proto::domain::{
    CallReport, InstanceId, Registration, RouteQuery, Strategy, WorkerId, WorkerLoad,
};
use crank_proto::wire::{Capability, CapabilityCount, Load, WorkerStatus};

/// Register (or replace) a worker. Who may do so is decided before (a worker
/// for its own id, or an admin); the registry records who did.
#[derive(Message, Debug, Clone)]
#[rtype(result = "RegisterAck")]
pub struct Register {
    pub registration: Registration,
    /// The identity registering it, e.g. `worker/hello-world-1`.
    pub registered_by: String,
}

/// The workers to check with `GET /health` now, with their URLs
/// ([`Registry::due_checks`](super::Registry::due_checks)).
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "Vec<(String, String)>")]
pub struct DueChecks {
    /// Also those that never heartbeated (`--active-checks silent`).
    pub silent: bool,
}

/// A check of a worker at its URL answered: a heartbeat without a load.
#[derive(Message, Debug, Clone)]
#[rtype(result = "bool")]
pub struct CheckPassed {
    pub worker_id: String,
    pub url: String,
}

/// Answers at once: the liveness probe's round trip through the mailbox.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct Ping;

/// Record a heartbeat from a worker.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<HeartbeatAck, RegistryError>")]
pub struct Heartbeat {
    pub worker_id: WorkerId,
    /// The beating process; a beat from an instance that is no longer the
    /// registered one is refused ([`RegistryError::Superseded`]).
    pub instance: Option<InstanceId>,
    pub load: Option<WorkerLoad>,
}

/// Remove a worker.
#[derive(Message, Debug, Clone)]
#[rtype(result = "DeregisterOutcome")]
pub struct Deregister {
    pub worker_id: String,
    /// The leaving process; it removes the record only if it is the one
    /// registered.
    pub instance: Option<String>,
}

/// What a [`Deregister`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeregisterOutcome {
    Removed,
    /// No such worker: nothing to do.
    Unknown,
    /// Another instance holds the record now; it was kept.
    Superseded,
}

/// List every worker, ordered by id.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "Vec<WorkerView>")]
pub struct ListWorkers;

/// The full record of one worker.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Option<WorkerDetailView>")]
pub struct GetWorker {
    pub worker_id: String,
}

/// Count providers per capability, keyed by `verb:name`.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "BTreeMap<String, CapabilityCount>")]
pub struct ListCapabilities;

/// Choose a healthy worker for a capability, or say why none.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<RouteChoice, NoRoute>")]
pub struct Route {
    pub query: RouteQuery,
    /// Also say why the other providers were passed over
    /// ([`RouteChoice::rejected`]): set for a traced route.
    pub explain: bool,
}

/// Mark a worker draining: no new routes go to it.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<(), RegistryError>")]
pub struct Drain {
    pub worker_id: String,
    /// The process that asks, if it names itself: a replaced instance may
    /// not drain the record of the process that replaced it.
    pub instance: Option<String>,
}

/// A caller's report of how a call to a worker went.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<ReportAck, RegistryError>")]
pub struct Report {
    pub report: CallReport,
}

/// What a [`Report`] did: whether it began an ejection, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportAck {
    pub ejected_for: Option<Duration>,
}

/// Mark workers without a recent heartbeat stale and evict long-stale ones.
/// Sent by the [`StalenessSweeper`](crate::sweeper::StalenessSweeper).
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "SweepReport")]
pub struct Sweep;

/// Counters for operators and benchmarks.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "RegistryStats")]
pub struct GetStats;

/// Cluster store: a record another controller wrote.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct ApplyReplica(pub crank_proto::wire::ReplicatedWorker);

/// Cluster store: a record another controller deleted.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct RemoveReplica(pub String);

/// Cluster store: the store's whole contents, at start or after a resync.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct LoadReplicas(pub Vec<crank_proto::wire::ReplicatedWorker>);

/// Cluster store: the live controllers changed. The registry adopts the
/// workers of controllers that are gone if `adopt` (it is the one chosen to),
/// taking `silent_for` as how long they may already have been unheard.
#[derive(Message, Debug, Clone)]
#[rtype(result = "usize")]
pub struct AdoptOrphans {
    pub live: std::collections::HashSet<String>,
    pub silent_for: Duration,
}

/// Cluster store: every record this controller owns, to write again after
/// the store was unreachable.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "Vec<crank_proto::wire::ReplicatedWorker>")]
pub struct OwnedReplicas;

/// Why the registry refused a change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error("worker {0} is not registered")]
    UnknownWorker(String),
    #[error("instance {instance} of worker {worker_id} was replaced by a newer registration")]
    Superseded { worker_id: String, instance: String },
}

/// A successful registration.
#[derive(Debug, Clone, PartialEq)]
pub struct RegisterAck {
    pub capabilities_registered: usize,
    /// Whether an existing record with this id was replaced.
    pub replaced: bool,
    pub heartbeat_interval: Duration,
    pub stale_after: Duration,
}

/// A recorded heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeartbeatAck {
    /// The worker was stale and is healthy again.
    pub revived: bool,
}

/// The worker a [`Route`] chose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteChoice {
    pub worker_id: String,
    pub worker_url: String,
    /// `verb:name`.
    pub capability: String,
    pub version: String,
    /// Constraint keys of the route that neither crank nor any provider of
    /// the capability defines, and that were ignored (v1 callers send
    /// free-form `slo_constraints`; see the router).
    pub ignored_constraints: Vec<String>,
    /// The strategy that chose (the query's, else the configured default).
    pub strategy: Strategy,
    /// Providers of the capability in the rotation.
    pub candidates: usize,
    /// With [`Route::explain`]: the providers passed over, counted per reason
    /// as [`NoRoute`] counts them; empty otherwise.
    pub rejected: Vec<(usize, String)>,
}

/// What one [`Sweep`] changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepReport {
    pub newly_stale: Vec<String>,
    pub evicted: Vec<String>,
}

/// One worker as [`ListWorkers`] shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerView {
    pub worker_id: String,
    pub worker_url: String,
    pub status: WorkerStatus,
    pub last_heartbeat: DateTime<Utc>,
    pub registered_at: DateTime<Utc>,
    /// Time since the last heartbeat, on the controller's monotonic clock.
    pub since_heartbeat: Duration,
    /// Ejected from routing after reported failures, until then (and until
    /// its next heartbeat after it, or a reported success).
    pub ejected_until: Option<DateTime<Utc>>,
    /// `verb:name` of each capability served.
    pub capability_keys: Vec<String>,
}

/// Everything the registry knows of one worker ([`GetWorker`]).
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerDetailView {
    pub worker: WorkerView,
    pub registered_by: String,
    /// With the cluster store: the controller that judges it.
    pub owner: Option<String>,
    pub load: Option<Load>,
    pub capabilities: Vec<Capability>,
}

/// What [`GetStats`] answers.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RegistryStats {
    pub workers: usize,
    /// Workers not marked stale by the last sweep.
    pub healthy_workers: usize,
    pub capabilities: usize,
    pub sweeps: u64,
    /// Registry time the last complete sweep took, all its steps together.
    pub last_sweep: Duration,
    /// The longest single sweep step: the longest the registry held back
    /// heartbeats and routes to sweep.
    pub longest_sweep_step: Duration,
}
