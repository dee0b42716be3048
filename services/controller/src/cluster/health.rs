//! [`StoreHealth`]: the cluster store's state, shared by the store's tasks and
//! every HTTP thread's `/health` and `/metrics`: whether etcd answers, how far
//! this controller's replica is behind the store, and how many changes wait
//! to be written.

use std::sync::atomic::{AtomicI64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;

/// What `/health` reports as `store`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreState {
    /// The embedded in-memory registry: nothing to reach.
    Memory,
    /// The durable embedded store: a data directory of this controller's.
    File,
    /// etcd answers.
    Ok,
    /// etcd does not answer: routes and heartbeats go on from the replica,
    /// changes wait to be written.
    Unreachable,
}

impl StoreState {
    /// Every state, in the order `/metrics` lists them.
    pub const ALL: [StoreState; 4] = [
        StoreState::Memory,
        StoreState::File,
        StoreState::Ok,
        StoreState::Unreachable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StoreState::Memory => "memory",
            StoreState::File => "file",
            StoreState::Ok => "ok",
            StoreState::Unreachable => "unreachable",
        }
    }

    fn from_u8(value: u8) -> Self {
        match value {
            0 => StoreState::Memory,
            1 => StoreState::Ok,
            3 => StoreState::File,
            _ => StoreState::Unreachable,
        }
    }

    fn as_u8(self) -> u8 {
        match self {
            StoreState::Memory => 0,
            StoreState::Ok => 1,
            StoreState::Unreachable => 2,
            StoreState::File => 3,
        }
    }
}

#[derive(Debug, Default)]
struct Shared {
    state: AtomicU8,
    /// The store's revision of the last change the watch received and handed
    /// to the registry.
    applied_revision: AtomicI64,
    /// The store's revision when etcd last answered the watch.
    store_revision: AtomicI64,
    /// Changes of this controller's workers not yet written to etcd.
    pending_writes: AtomicUsize,
    /// With the durable embedded store: what it did.
    file: std::sync::OnceLock<Arc<crate::file_store::StoreStats>>,
}

/// The store's state, readable from any thread.
#[derive(Debug, Clone)]
pub struct StoreHealth(Arc<Shared>);

impl StoreHealth {
    pub fn new(state: StoreState) -> Self {
        let health = StoreHealth(Arc::default());
        health.set(state);
        health
    }

    pub fn get(&self) -> StoreState {
        StoreState::from_u8(self.0.state.load(Ordering::Acquire))
    }

    /// Sets the state; returns the previous one, so a change is logged once.
    pub fn set(&self, state: StoreState) -> StoreState {
        StoreState::from_u8(self.0.state.swap(state.as_u8(), Ordering::AcqRel))
    }

    /// The watch handed the registry the store's changes up to `applied`,
    /// when the store was at `store` (etcd's answer header).
    pub fn watched(&self, applied: i64, store: i64) {
        self.0.applied_revision.store(applied, Ordering::Relaxed);
        self.0
            .store_revision
            .fetch_max(store.max(applied), Ordering::Relaxed);
    }

    /// The revision the replica has applied up to.
    pub fn applied_revision(&self) -> i64 {
        self.0.applied_revision.load(Ordering::Relaxed)
    }

    /// Revisions the replica is behind the store as etcd last told it: 0
    /// when caught up.
    pub fn watch_lag(&self) -> i64 {
        let store = self.0.store_revision.load(Ordering::Relaxed);
        (store - self.applied_revision()).max(0)
    }

    /// `count` changes wait to be written.
    pub fn pending_writes(&self, count: usize) {
        self.0.pending_writes.store(count, Ordering::Relaxed);
    }

    /// Changes waiting to be written.
    pub fn waiting_writes(&self) -> usize {
        match self.file() {
            Some(file) => file.pending.load(Ordering::Relaxed) as usize,
            None => self.0.pending_writes.load(Ordering::Relaxed),
        }
    }

    /// The durable embedded store's figures, once it is open.
    pub fn attach_file(&self, stats: Arc<crate::file_store::StoreStats>) {
        let _ = self.0.file.set(stats);
    }

    pub fn file(&self) -> Option<&Arc<crate::file_store::StoreStats>> {
        self.0.file.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lag_is_what_the_store_has_and_the_replica_has_not_applied() {
        let health = StoreHealth::new(StoreState::Ok);
        health.watched(10, 10);
        assert_eq!((health.applied_revision(), health.watch_lag()), (10, 0));
        // etcd answered at 15 with changes up to 12 applied so far.
        health.watched(12, 15);
        assert_eq!(health.watch_lag(), 3);
        // An older header never lowers what the store is known to have.
        health.watched(15, 11);
        assert_eq!(health.watch_lag(), 0);
        assert_eq!(health.set(StoreState::Unreachable), StoreState::Ok);
        assert_eq!(health.get(), StoreState::Unreachable);
    }
}
