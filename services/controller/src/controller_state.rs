//! [`ControllerState`]: what the controller's handlers share — the registry
//! (through its [`RegistryMailbox`]), the [`ControllerMetrics`], and the
//! [`WatchHub`] of `GET /watch` — and how they are started together, so the
//! hub and the metrics see every change from the first.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use crank_registry::sweeper::StalenessSweeper;
use crank_registry::watch::{WatchHub, DEFAULT_BACKLOG, DEFAULT_HISTORY};
use crank_registry::{RegistryActor, RegistrySettings};

use crate::metrics::{ControllerMetrics, RegistryMailbox};
use crate::watch::Snapshots;

/// How much the watch stream holds: see [`WatchHub::new`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchLimits {
    /// Changes a watcher may fall behind before it must resync.
    pub backlog: usize,
    /// Changes remembered for watchers resuming with `Last-Event-ID`.
    pub history: usize,
}

impl Default for WatchLimits {
    fn default() -> Self {
        WatchLimits {
            backlog: DEFAULT_BACKLOG,
            history: DEFAULT_HISTORY,
        }
    }
}

/// See the [module](self) docs.
#[derive(Clone)]
pub struct ControllerState {
    pub registry: RegistryMailbox,
    pub metrics: Arc<ControllerMetrics>,
    /// `None`: no watch stream (`GET /watch` answers 503).
    pub watch: Option<Arc<WatchHub>>,
    /// The snapshots watch streams start from, shared by all HTTP threads.
    pub snapshots: Arc<Snapshots>,
}

impl ControllerState {
    /// Starts a registry on the current thread's actix system, with its watch
    /// hub and metrics attached, and a [`StalenessSweeper`] if
    /// `sweep_interval` is given.
    pub fn start(
        settings: RegistrySettings,
        sweep_interval: Option<Duration>,
        watch: WatchLimits,
    ) -> Self {
        Self::start_with(settings, sweep_interval, watch, |actor| actor)
    }

    /// [`ControllerState::start`], with the registry made ready by `prepare`
    /// before it starts (the cluster store attaches its sink there).
    pub fn start_with(
        settings: RegistrySettings,
        sweep_interval: Option<Duration>,
        watch: WatchLimits,
        prepare: impl FnOnce(RegistryActor) -> RegistryActor,
    ) -> Self {
        let metrics = Arc::new(ControllerMetrics::new());
        let hub = WatchHub::new(watch.backlog, watch.history);
        let mut actor = prepare(RegistryActor::new(settings))
            .with_sink(metrics.change_counter())
            .with_sink(hub.sink())
            .with_sweep_observer(metrics.sweep_observer());
        if let Some(interval) = sweep_interval {
            actor = actor.expecting_sweeps_every(interval);
        }
        let address = actor.start();
        if let Some(interval) = sweep_interval {
            StalenessSweeper::new(address.clone(), interval).start();
        }
        ControllerState {
            registry: RegistryMailbox::new(address, metrics.mailbox_gauge()),
            metrics,
            watch: Some(hub),
            snapshots: Snapshots::new(),
        }
    }

    /// The registry's address.
    pub fn address(&self) -> &Addr<RegistryActor> {
        self.registry.address()
    }
}

/// A registry started elsewhere: metrics of its own, but no watch stream and
/// no change counts (nothing was attached to it before it started).
impl From<Addr<RegistryActor>> for ControllerState {
    fn from(address: Addr<RegistryActor>) -> Self {
        let metrics = Arc::new(ControllerMetrics::new());
        ControllerState {
            registry: RegistryMailbox::new(address, metrics.mailbox_gauge()),
            metrics,
            watch: None,
            snapshots: Snapshots::new(),
        }
    }
}
