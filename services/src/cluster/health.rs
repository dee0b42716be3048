//! [`StoreHealth`]: the cluster store's state, shared by the store's tasks and
//! every HTTP thread's `/health`.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

/// What `/health` reports as `store`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreState {
    /// The embedded in-memory registry: nothing to reach.
    Memory,
    /// etcd answers.
    Ok,
    /// etcd does not answer: routes and heartbeats go on from the replica,
    /// changes wait to be written.
    Unreachable,
}

impl StoreState {
    pub fn as_str(self) -> &'static str {
        match self {
            StoreState::Memory => "memory",
            StoreState::Ok => "ok",
            StoreState::Unreachable => "unreachable",
        }
    }
}

/// The store's state, readable from any thread.
#[derive(Debug, Clone)]
pub struct StoreHealth(Arc<AtomicU8>);

impl StoreHealth {
    pub fn new(state: StoreState) -> Self {
        let health = StoreHealth(Arc::new(AtomicU8::new(0)));
        health.set(state);
        health
    }

    pub fn get(&self) -> StoreState {
        match self.0.load(Ordering::Acquire) {
            0 => StoreState::Memory,
            1 => StoreState::Ok,
            _ => StoreState::Unreachable,
        }
    }

    /// Sets the state; returns the previous one, so a change is logged once.
    pub fn set(&self, state: StoreState) -> StoreState {
        let value = match state {
            StoreState::Memory => 0,
            StoreState::Ok => 1,
            StoreState::Unreachable => 2,
        };
        match self.0.swap(value, Ordering::AcqRel) {
            0 => StoreState::Memory,
            1 => StoreState::Ok,
            _ => StoreState::Unreachable,
        }
    }
}
