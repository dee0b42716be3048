//! Where the registry's changes go besides its own memory: the seam a
//! replicated store and the watch stream plug into without touching the
//! handlers.
//!
//! The [`Registry`](super::Registry) records every change as a
//! [`RegistryEvent`]; after each message the
//! [`RegistryActor`](super::RegistryActor) hands them to each of its
//! [`ChangeSink`]s, in order. With none (the embedded default), recording
//! them costs nothing.

use std::rc::Rc;

use super::record::CapabilitySet;
use crank_proto::wire::ReplicatedWorker;

/// What happened to a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// Registered, or registered again (replacing its record).
    Registered,
    Deregistered,
    /// No heartbeat for `stale_after`: no longer routed to.
    Stale,
    /// A stale worker heartbeated again.
    Healthy,
    /// Stale for `evict_after`: removed.
    Evicted,
    /// This controller took over judging it (cluster store): it heartbeats
    /// here now, or its owner is gone.
    Owned,
    /// It is finishing its calls before it stops: no longer routed to.
    Draining,
}

/// Where a change was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// By this controller: a replicated store must publish it.
    Local,
    /// By another controller, learned from the replicated store.
    Replica,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Registered => "registered",
            ChangeKind::Deregistered => "deregistered",
            ChangeKind::Stale => "stale",
            ChangeKind::Healthy => "healthy",
            ChangeKind::Evicted => "evicted",
            ChangeKind::Owned => "owned",
            ChangeKind::Draining => "draining",
        }
    }
}

/// One change to the registry: what happened, to which worker, and what it
/// serves (shared with the registry, so recording it copies no strings).
#[derive(Clone)]
pub struct RegistryEvent {
    pub kind: ChangeKind,
    pub origin: Origin,
    pub worker_id: Rc<str>,
    /// Where it serves, so a watcher can call it without asking.
    pub worker_url: Box<str>,
    pub capabilities: Rc<CapabilitySet>,
    /// The record as it now stands, for a replicated store to write: set in
    /// cluster mode for local changes that leave a record.
    pub replica: Option<Rc<ReplicatedWorker>>,
}

impl std::fmt::Debug for RegistryEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.kind.as_str(), self.worker_id)
    }
}

/// Receives the registry's changes, in order, on the registry's thread. It
/// must not block: the registry waits for it.
pub trait ChangeSink {
    fn publish(&mut self, events: &[RegistryEvent]);
}
