//! [`RegistryHost`]: where the controller's registry lives, and with the etcd
//! store, what feeds it.
//!
//! The registry lives on the first HTTP worker thread that asks for it. Every
//! request is one message to the registry and one answer back; across threads
//! each costs a wake-up of the other thread (an eventfd write and a context
//! switch), which profiling showed to be most of what the registry added on
//! top of the transport, while on the thread that also serves HTTP a message
//! is a queue push. Other HTTP threads reach it through its (thread-safe)
//! address.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crank_registry::RegistrySettings;

use crank_proto::wire::ReplicatedWorker;
use crank_registry::LoadReplicas;

use crate::checker::CheckerSettings;
use crate::cluster::{ClusterStart, StoreHealth};
use crate::controller_state::{ControllerState, WatchLimits};
use crate::file_store::{FileSink, LOCAL_OWNER};

/// The durable store's sink, and the workers it loaded.
type StoredFleet = (FileSink, Vec<ReplicatedWorker>);

/// Starts the registry once, on the first thread that asks.
#[derive(Clone)]
pub struct RegistryHost {
    settings: RegistrySettings,
    sweep_interval: Duration,
    watch: WatchLimits,
    health: StoreHealth,
    cluster: Arc<Mutex<Option<ClusterStart>>>,
    state: Arc<Mutex<Option<ControllerState>>>,
    checker: Option<CheckerSettings>,
    /// The durable store's sink and what it loaded, taken by the first
    /// registry started.
    file: Arc<Mutex<Option<StoredFleet>>>,
}

impl RegistryHost {
    pub fn new(
        settings: RegistrySettings,
        sweep_interval: Duration,
        watch: WatchLimits,
        health: StoreHealth,
        cluster: Option<ClusterStart>,
    ) -> Self {
        RegistryHost {
            settings,
            sweep_interval,
            watch,
            health,
            cluster: Arc::new(Mutex::new(cluster)),
            state: Arc::new(Mutex::new(None)),
            checker: None,
            file: Arc::new(Mutex::new(None)),
        }
    }

    /// Keeps the registry in the durable store: `sink` receives its changes,
    /// and `loaded` is handed to it before it answers anything.
    pub fn with_file(self, sink: FileSink, loaded: Vec<ReplicatedWorker>) -> Self {
        *self.file.lock().unwrap_or_else(|e| e.into_inner()) = Some((sink, loaded));
        self
    }

    /// Also runs active health checks beside the registry (see [`checker`](crate::checker)).
    pub fn with_checker(mut self, checker: CheckerSettings) -> Self {
        self.checker = Some(checker);
        self
    }

    pub fn health(&self) -> StoreHealth {
        self.health.clone()
    }

    /// The registry (with its watch hub and metrics), starting it on this
    /// thread if it is not running. Each HTTP thread asks once, when
    /// actix-server builds its app. A registry whose actor failed is not
    /// restarted here: the process exits (see
    /// [`supervision`](crank_supervision)); the check below only
    /// covers an app built after the registry stopped otherwise.
    pub fn state(&self) -> ControllerState {
        let mut slot = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(state) = slot.as_ref().filter(|s| s.address().connected()) {
            return state.clone();
        }
        let cluster = self
            .cluster
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let file = self.file.lock().unwrap_or_else(|e| e.into_inner()).take();
        let state = match (cluster, file) {
            (Some(start), _) => self.start_clustered(start),
            (None, Some((sink, loaded))) => {
                let state = ControllerState::start_with(
                    self.settings,
                    Some(self.sweep_interval),
                    self.watch,
                    |actor| actor.replicating_as(LOCAL_OWNER).with_sink(Box::new(sink)),
                );
                // The first message in its mailbox: nothing is answered
                // before the stored fleet is back, judged as after a pause.
                state.address().do_send(LoadReplicas(loaded));
                state
            }
            (None, None) => {
                ControllerState::start(self.settings, Some(self.sweep_interval), self.watch)
            }
        };
        if let Some(checker) = &self.checker {
            actix_rt::spawn(crank_supervision::supervised(
                "health_checker",
                crate::checker::run(
                    state.address().clone(),
                    checker.clone(),
                    state.metrics.clone(),
                ),
            ));
        }
        *slot = Some(state.clone());
        state
    }

    #[cfg(not(feature = "etcd"))]
    fn start_clustered(&self, start: ClusterStart) -> ControllerState {
        match start {}
    }

    /// A registry replicating through etcd: its changes go to the writer,
    /// the watch feeds it, the session is kept alive, all on this thread.
    #[cfg(feature = "etcd")]
    fn start_clustered(&self, start: ClusterStart) -> ControllerState {
        use crate::cluster::keys::Keys;
        use crate::cluster::writer::{self, StoreSink};
        use crate::cluster::{session, watcher};
        use crank_supervision::supervised;

        let ClusterStart {
            client,
            settings,
            loaded,
            lease,
        } = start;
        let keys = Keys::new(&settings.prefix);
        let (changes, pending) = tokio::sync::mpsc::unbounded_channel();
        let state = ControllerState::start_with(
            self.settings,
            Some(self.sweep_interval),
            self.watch,
            |actor| {
                actor
                    .replicating_as(&settings.controller_id)
                    .with_sink(Box::new(StoreSink::new(changes)))
            },
        );
        let registry = state.address().clone();
        let (revision, live) = watcher::hand_over(loaded, &settings, &registry);
        actix_rt::spawn(supervised(
            "cluster_writer",
            writer::run(
                client.clone(),
                keys.clone(),
                pending,
                self.health.clone(),
                registry.clone(),
            ),
        ));
        actix_rt::spawn(supervised(
            "cluster_watcher",
            watcher::run(
                client.clone(),
                keys.clone(),
                settings.clone(),
                registry,
                self.health.clone(),
                revision,
                live,
            ),
        ));
        actix_rt::spawn(supervised(
            "cluster_session",
            session::keep_alive(client, settings, keys, self.health.clone(), lease),
        ));
        state
    }
}
