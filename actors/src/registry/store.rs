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
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Registered => "registered",
            ChangeKind::Deregistered => "deregistered",
            ChangeKind::Stale => "stale",
            ChangeKind::Healthy => "healthy",
            ChangeKind::Evicted => "evicted",
        }
    }
}

/// One change to the registry: what happened, to which worker, and what it
/// serves (shared with the registry, so recording it copies no strings).
#[derive(Clone)]
pub struct RegistryEvent {
    pub kind: ChangeKind,
    pub worker_id: Rc<str>,
    pub capabilities: Rc<CapabilitySet>,
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
