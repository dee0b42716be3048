//! [`WatchHub`]: the registry's changes, numbered, remembered for a while, and
//! fanned out to any number of watchers without the registry ever waiting for
//! one.
//!
//! The hub is a [`ChangeSink`]: the [`RegistryActor`](crate::RegistryActor)
//! hands it each change on its own thread, in order. The hub gives the change
//! the next id (1, 2, …, as [`FleetSnapshot::last_event_id`](crate::FleetSnapshot::last_event_id)
//! counts them), keeps the last `history` changes for watchers that reconnect
//! with the last id they saw, and sends each to every watcher through a
//! bounded [`broadcast`] channel. Sending never blocks: a watcher more than
//! `backlog` changes behind loses its place, learns so on its next read
//! ([`RecvError::Lagged`](broadcast::error::RecvError::Lagged)), and starts again
//! from a fresh snapshot. So the controller holds at most `backlog` changes for
//! all of its watchers together, whatever they do.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, OnceLock};

use chrono::Utc;
use tokio::sync::broadcast;

use crate::{ChangeKind, ChangeSink, RegistryEvent};
use crank_proto::wire::{WatchEvent, WatchKind};

/// Changes a watcher may fall behind before it must resync.
pub const DEFAULT_BACKLOG: usize = 16 * 1024;
/// Changes remembered for watchers that reconnect with `Last-Event-ID`.
pub const DEFAULT_HISTORY: usize = 16 * 1024;

/// One published change, with its JSON, and its encoding for the transport,
/// made once for every watcher.
#[derive(Debug)]
pub struct HubEvent {
    pub event: WatchEvent,
    json: OnceLock<String>,
    encoded: OnceLock<String>,
}

impl HubEvent {
    fn new(event: WatchEvent) -> Self {
        HubEvent {
            event,
            json: OnceLock::new(),
            encoded: OnceLock::new(),
        }
    }

    /// The event as the transport sends it, made by `encode` (given the event
    /// and its JSON) for the first watcher that asks, and shared after that.
    pub fn encoded(&self, encode: impl FnOnce(&WatchEvent, &str) -> String) -> &str {
        self.encoded
            .get_or_init(|| encode(&self.event, self.json()))
    }

    /// The event as JSON, serialized by the first watcher that asks.
    // Infallible: a derived Serialize of strings, numbers and lists.
    #[allow(clippy::expect_used)]
    pub fn json(&self) -> &str {
        self.json
            .get_or_init(|| serde_json::to_string(&self.event).expect("a watch event serializes"))
    }
}

/// A watcher's place in the stream: what it receives from now on.
pub type Subscription = broadcast::Receiver<Arc<HubEvent>>;

/// The fan-out of the registry's changes. See the [module](self) docs.
#[derive(Debug)]
pub struct WatchHub {
    state: Mutex<HubState>,
    sender: broadcast::Sender<Arc<HubEvent>>,
}

#[derive(Debug)]
struct HubState {
    last_id: u64,
    history: VecDeque<Arc<HubEvent>>,
    capacity: usize,
}

impl WatchHub {
    /// A hub that lets a watcher fall `backlog` changes behind and remembers
    /// the last `history` changes (each at least 1).
    pub fn new(backlog: usize, history: usize) -> Arc<Self> {
        let (sender, _) = broadcast::channel(backlog.max(1));
        Arc::new(WatchHub {
            state: Mutex::new(HubState {
                last_id: 0,
                history: VecDeque::with_capacity(history.clamp(1, 1024)),
                capacity: history.max(1),
            }),
            sender,
        })
    }

    /// The sink to attach to the registry with
    /// [`RegistryActor::with_sink`](crate::RegistryActor::with_sink),
    /// before it starts, so the hub numbers changes as the registry does.
    pub fn sink(self: &Arc<Self>) -> Box<dyn ChangeSink> {
        Box::new(HubSink(self.clone()))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, HubState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every change published from now on.
    pub fn subscribe(&self) -> Subscription {
        self.sender.subscribe()
    }

    /// The changes after `after`, if the hub still remembers all of them, and
    /// every change published from then on. `None` if it does not (too old, or
    /// an id this hub never gave, as after a controller restart).
    pub fn resume(&self, after: u64) -> Option<(Vec<Arc<HubEvent>>, Subscription)> {
        let state = self.state();
        // Subscribing under the lock: nothing is published between the
        // replayed changes and the subscription.
        let oldest = state
            .history
            .front()
            .map_or(state.last_id + 1, |e| e.event.id);
        if after > state.last_id || after.saturating_add(1) < oldest {
            return None;
        }
        let missed = state
            .history
            .iter()
            .skip_while(|e| e.event.id <= after)
            .cloned()
            .collect();
        Some((missed, self.sender.subscribe()))
    }

    /// The id of the last change published (0: none yet).
    pub fn last_id(&self) -> u64 {
        self.state().last_id
    }

    /// Watchers subscribed now.
    pub fn watchers(&self) -> usize {
        self.sender.receiver_count()
    }

    fn publish(&self, events: &[RegistryEvent]) {
        let at = Utc::now();
        let mut state = self.state();
        for change in events {
            state.last_id += 1;
            let event = Arc::new(HubEvent::new(WatchEvent {
                id: state.last_id,
                kind: kind(change.kind),
                worker_id: change.worker_id.to_string(),
                worker_url: Some(change.worker_url.to_string()),
                capabilities: change
                    .capabilities
                    .keys
                    .iter()
                    .map(|k| k.to_string())
                    .collect(),
                at,
            }));
            if state.history.len() == state.capacity {
                state.history.pop_front();
            }
            state.history.push_back(event.clone());
            // No watcher: nothing to do.
            let _ = self.sender.send(event);
        }
    }
}

fn kind(change: ChangeKind) -> WatchKind {
    match change {
        ChangeKind::Registered => WatchKind::Registered,
        ChangeKind::Deregistered => WatchKind::Deregistered,
        ChangeKind::Stale => WatchKind::Stale,
        ChangeKind::Healthy => WatchKind::Healthy,
        ChangeKind::Evicted => WatchKind::Evicted,
        ChangeKind::Owned => WatchKind::Owned,
        ChangeKind::Draining => WatchKind::Draining,
    }
}

/// The registry's end of a [`WatchHub`].
struct HubSink(Arc<WatchHub>);

impl ChangeSink for HubSink {
    fn publish(&mut self, events: &[RegistryEvent]) {
        self.0.publish(events);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ListWorkers, Register, RegistryActor, RegistrySettings, Snapshot};
    use actix::prelude::*;
    use crank_proto::domain::Registration;
    use crank_proto::wire::{Capability, RegisterRequest};
    use tokio::sync::broadcast::error::TryRecvError;

    fn registry_with(hub: &Arc<WatchHub>) -> Addr<RegistryActor> {
        RegistryActor::new(RegistrySettings::default())
            .with_sink(hub.sink())
            .start()
    }

    async fn register(registry: &Addr<RegistryActor>, id: &str) {
        let request = RegisterRequest {
            worker_id: id.into(),
            worker_url: format!("https://{id}.local:8500"),
            capabilities: vec![Capability::new("invoke", "hello.greet", "1.0.0")],
            instance: None,
            health_check: None,
        };
        registry
            .send(Register {
                registration: Registration::try_from(request).unwrap(),
                registered_by: "admin/test".into(),
            })
            .await
            .unwrap();
    }

    #[actix::test]
    async fn changes_are_numbered_in_order_and_match_the_registrys_snapshot() {
        let hub = WatchHub::new(64, 64);
        let registry = registry_with(&hub);
        let mut watcher = hub.subscribe();
        for i in 0..5 {
            register(&registry, &format!("w{i}")).await;
        }
        let ids: Vec<u64> = (0..5)
            .map(|_| watcher.try_recv().unwrap().event.id)
            .collect();
        assert_eq!(ids, [1, 2, 3, 4, 5]);
        let snapshot = registry.send(Snapshot).await.unwrap();
        assert_eq!(snapshot.last_event_id, hub.last_id());
        assert_eq!(snapshot.workers.len(), 5);
        let ids = |workers: &[crate::WorkerView]| {
            workers
                .iter()
                .map(|w| w.worker_id.clone())
                .collect::<Vec<_>>()
        };
        let listed = registry.send(ListWorkers).await.unwrap();
        assert_eq!(ids(&listed), ids(&snapshot.workers));
        let first = hub.resume(0).unwrap().0;
        assert_eq!(first[0].event.worker_id, "w0");
        assert_eq!(first[0].event.capabilities, ["invoke:hello.greet"]);
        assert!(first[0].json().contains("\"kind\":\"registered\""));
    }

    #[actix::test]
    async fn resume_replays_what_history_holds_and_refuses_the_rest() {
        let hub = WatchHub::new(64, 3);
        let registry = registry_with(&hub);
        for i in 0..5 {
            register(&registry, &format!("w{i}")).await;
        }
        let (missed, _) = hub.resume(2).unwrap();
        let ids: Vec<u64> = missed.iter().map(|e| e.event.id).collect();
        assert_eq!(ids, [3, 4, 5]);
        assert!(hub.resume(5).unwrap().0.is_empty());
        assert!(hub.resume(1).is_none(), "change 2 is forgotten");
        assert!(hub.resume(6).is_none(), "an id never given");
    }

    #[actix::test]
    async fn a_watcher_past_the_backlog_is_told_it_lagged_and_the_registry_never_waits() {
        let hub = WatchHub::new(4, 4);
        let registry = registry_with(&hub);
        let mut slow = hub.subscribe();
        for i in 0..100 {
            register(&registry, &format!("w{i}")).await;
        }
        assert_eq!(slow.try_recv().unwrap_err(), TryRecvError::Lagged(96));
        // Then the last `backlog` changes, and nothing held beyond them.
        assert_eq!(slow.try_recv().unwrap().event.id, 97);
        let mut fresh = hub.subscribe();
        drop(slow);
        register(&registry, "late").await;
        assert_eq!(fresh.recv().await.unwrap().event.id, 101);
        drop(fresh);
        assert!(matches!(
            hub.subscribe().try_recv(),
            Err(TryRecvError::Empty)
        ));
    }
}
