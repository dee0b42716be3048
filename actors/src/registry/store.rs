//! Where the registry's changes go besides its own memory: the seam a
//! replicated store plugs into without touching the handlers.
//!
//! The [`Registry`](super::Registry) records every change as a
//! [`RegistryEvent`]; after each message the
//! [`RegistryActor`](super::RegistryActor) hands them to its [`ChangeSink`].
//! The embedded default, [`MemoryOnly`], keeps nothing beyond the registry.

use std::rc::Rc;

/// One change to the registry, naming the worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryEvent {
    /// Registered, or registered again (replacing its record).
    Registered(Rc<str>),
    Deregistered(Rc<str>),
    /// No heartbeat for `stale_after`: no longer routed to.
    Stale(Rc<str>),
    /// A stale worker heartbeated again.
    Healthy(Rc<str>),
    /// Stale for `evict_after`: removed.
    Evicted(Rc<str>),
}

/// Receives the registry's changes, in order, on the registry's thread.
pub trait ChangeSink {
    fn publish(&mut self, events: Vec<RegistryEvent>);
}

/// The embedded default: the registry's memory is the whole store.
#[derive(Debug, Default, Clone, Copy)]
pub struct MemoryOnly;

impl ChangeSink for MemoryOnly {
    fn publish(&mut self, _: Vec<RegistryEvent>) {}
}
