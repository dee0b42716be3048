//! Several controllers joined through a simulated store, as the etcd store
//! joins them (`services/src/cluster/{writer,watcher}.rs`): each registry's
//! local changes become pending writes (the latest per worker, first-seen
//! order) flushed in transactions; each controller's watch delivers the
//! store's events in the store's order, late; controllers lose the store
//! (outages) and write every record they own when it returns; the store
//! compacts its history, so a watch that fell behind loads the whole store.
//! Deliveries, flushes and outages interleave at random: delays and, across
//! controllers, reordering.
//!
//! The invariant: once the store heals (everyone connected, every write
//! flushed, every event delivered) every controller holds exactly the
//! store's workers, and each agrees on each worker's owner: the one the
//! store names judges it (`Owner::Local`), every other shows it as that
//! controller's; and each shows a worker draining exactly when the store
//! does (a drain at any controller reaches them all).

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use actix::clock::Instant;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::super::core::{Now, Registry};
use super::super::record::Owner;
use super::super::store::{ChangeKind, Origin};
use super::super::RegistrySettings;
use super::history::{instance_id, worker_id};
use crank_proto::domain::Registration;
use crank_proto::wire::{Capability, RegisterRequest, ReplicatedWorker, WorkerStatus};

const CONTROLLERS: usize = 3;
const WORKERS: u8 = 8;

/// One step of a cluster history.
#[derive(Debug, Clone)]
pub enum ClusterOp {
    Register {
        controller: usize,
        worker: u8,
        instance: u8,
    },
    Heartbeat {
        controller: usize,
        worker: u8,
    },
    Deregister {
        controller: usize,
        worker: u8,
    },
    /// `POST /drain/{id}` at this controller, which may not own the worker.
    Drain {
        controller: usize,
        worker: u8,
    },
    Sweep {
        controller: usize,
    },
    Flush {
        controller: usize,
        batch: usize,
    },
    Deliver {
        controller: usize,
        events: usize,
    },
    Disconnect {
        controller: usize,
    },
    Reconnect {
        controller: usize,
    },
    Compact,
    Advance(u64),
}

pub fn cluster_history(seed: u64, steps: usize) -> Vec<ClusterOp> {
    let mut rng = SmallRng::seed_from_u64(seed ^ 0xc1u64);
    (0..steps)
        .map(|_| {
            let controller = rng.random_range(0..CONTROLLERS);
            let worker = rng.random_range(0..WORKERS);
            match rng.random_range(0..100) {
                0..=11 => ClusterOp::Register {
                    controller,
                    worker,
                    instance: rng.random_range(0..3),
                },
                12..=36 => ClusterOp::Heartbeat { controller, worker },
                37..=38 => ClusterOp::Deregister { controller, worker },
                39..=40 => ClusterOp::Drain { controller, worker },
                41..=47 => ClusterOp::Sweep { controller },
                48..=64 => ClusterOp::Flush {
                    controller,
                    batch: rng.random_range(1..4),
                },
                65..=84 => ClusterOp::Deliver {
                    controller,
                    events: rng.random_range(1..4),
                },
                85..=87 => ClusterOp::Disconnect { controller },
                88..=91 => ClusterOp::Reconnect { controller },
                92..=93 => ClusterOp::Compact,
                _ => ClusterOp::Advance(rng.random_range(100..40_000)),
            }
        })
        .collect()
}

/// A pending write: a worker's record, or its removal.
#[derive(Debug, Clone)]
enum Write {
    Put(ReplicatedWorker),
    Delete(String),
}

impl Write {
    fn id(&self) -> &str {
        match self {
            Write::Put(replica) => &replica.worker_id,
            Write::Delete(id) => id,
        }
    }
}

struct Controller {
    registry: Registry,
    /// The latest write per worker, in first-seen order (the writer's `Pending`).
    pending: VecDeque<Write>,
    connected: bool,
    /// The store lost and found again: write every owned record first.
    rewrite_owned: bool,
    /// The last store revision this controller's watch applied.
    applied: u64,
}

impl Controller {
    fn queue(&mut self, write: Write) {
        match self.pending.iter_mut().find(|w| w.id() == write.id()) {
            Some(slot) => *slot = write,
            None => self.pending.push_back(write),
        }
    }

    /// Hands the registry's local changes to the writer, as `StoreSink` does.
    fn collect(&mut self) {
        for event in self.registry.take_events() {
            if event.origin != Origin::Local {
                continue;
            }
            let write = match (event.kind, &event.replica) {
                (ChangeKind::Deregistered | ChangeKind::Evicted, _) => {
                    Write::Delete(event.worker_id.to_string())
                }
                (_, Some(replica)) => Write::Put((**replica).clone()),
                (_, None) => continue,
            };
            self.queue(write);
        }
    }
}

/// The store: current values, and the history of changes by revision.
#[derive(Default)]
struct Store {
    revision: u64,
    values: BTreeMap<String, ReplicatedWorker>,
    history: Vec<(u64, String, Option<ReplicatedWorker>)>,
    compacted_to: u64,
}

fn controller_name(i: usize) -> String {
    format!("c{i}")
}

/// Plays `ops`, heals the store, and checks that every controller agrees
/// with it. `Err` names the first disagreement.
pub fn execute_cluster(seed: u64, ops: &[ClusterOp]) -> Result<(), String> {
    let settings = RegistrySettings {
        stale_after: Duration::from_secs(10),
        evict_after: Some(Duration::from_secs(30)),
        ..RegistrySettings::default()
    };
    let _ = seed;
    let start = Instant::now();
    let mut elapsed = Duration::ZERO;
    let now = |elapsed: Duration| Now {
        mono: start + elapsed,
        wall: chrono::Utc::now(),
    };
    let mut store = Store::default();
    let mut controllers: Vec<Controller> = (0..CONTROLLERS)
        .map(|i| {
            let mut registry = Registry::new(settings);
            registry.replicate_as(&controller_name(i));
            registry.record_events();
            Controller {
                registry,
                pending: VecDeque::new(),
                connected: true,
                rewrite_owned: false,
                applied: 0,
            }
        })
        .collect();
    for op in ops {
        step(&mut store, &mut controllers, op, now(elapsed));
        if let ClusterOp::Advance(ms) = op {
            elapsed += Duration::from_millis(*ms);
        }
    }
    // The store heals: everyone reconnects, writes and catches up.
    for controller in controllers.iter_mut() {
        if !controller.connected {
            step_reconnect(controller);
        }
    }
    for _round in 0..20 {
        let quiet = controllers
            .iter()
            .all(|c| c.pending.is_empty() && c.applied == store.revision);
        if quiet {
            break;
        }
        for i in 0..CONTROLLERS {
            step(
                &mut store,
                &mut controllers,
                &ClusterOp::Flush {
                    controller: i,
                    batch: usize::MAX,
                },
                now(elapsed),
            );
            step(
                &mut store,
                &mut controllers,
                &ClusterOp::Deliver {
                    controller: i,
                    events: usize::MAX,
                },
                now(elapsed),
            );
        }
    }
    for (i, controller) in controllers.iter().enumerate() {
        if !controller.pending.is_empty() || controller.applied != store.revision {
            return Err(format!("c{i} never caught up with the store"));
        }
        let held: Vec<&str> = controller.registry.workers.keys().map(|id| &**id).collect();
        let mut held = held;
        held.sort_unstable();
        let stored: Vec<&str> = store.values.keys().map(String::as_str).collect();
        if held != stored {
            return Err(format!("c{i} holds {held:?}, the store {stored:?}"));
        }
        for (id, replica) in &store.values {
            let Some(record) = controller.registry.workers.get(id.as_str()) else {
                continue;
            };
            let agrees = match &record.owner {
                Owner::Local => replica.owner == controller_name(i),
                Owner::Remote {
                    controller: owner, ..
                } => **owner == *replica.owner && replica.owner != controller_name(i),
            };
            if !agrees {
                return Err(format!(
                    "c{i} sees {id} owned by {:?}, the store says {}",
                    record.owner, replica.owner
                ));
            }
            let stored_draining = replica.status == WorkerStatus::Draining;
            if record.draining != stored_draining {
                return Err(format!(
                    "c{i} shows {id} draining: {}, the store: {stored_draining}",
                    record.draining
                ));
            }
        }
    }
    Ok(())
}

fn step_reconnect(controller: &mut Controller) {
    controller.connected = true;
    controller.rewrite_owned = true;
}

fn step(store: &mut Store, controllers: &mut [Controller], op: &ClusterOp, now: Now) {
    match op {
        ClusterOp::Register {
            controller,
            worker,
            instance,
        } => {
            let request = RegisterRequest {
                worker_id: worker_id(*worker),
                worker_url: format!("https://{}.local:8500", worker_id(*worker)),
                capabilities: vec![Capability::new("invoke", "hello.greet", "1.0.0")],
                instance: Some(instance_id(*instance)),
                health_check: None,
            };
            if let Ok(registration) = Registration::try_from(request) {
                let c = &mut controllers[*controller];
                c.registry.register(registration, "admin/sim", now);
                c.collect();
            }
        }
        ClusterOp::Heartbeat { controller, worker } => {
            let c = &mut controllers[*controller];
            let _ = c.registry.heartbeat(&worker_id(*worker), None, None, now);
            c.collect();
        }
        ClusterOp::Deregister { controller, worker } => {
            let c = &mut controllers[*controller];
            c.registry.deregister(&worker_id(*worker), None);
            c.collect();
        }
        ClusterOp::Drain { controller, worker } => {
            let c = &mut controllers[*controller];
            let _ = c.registry.drain(&worker_id(*worker), None, now);
            c.collect();
        }
        ClusterOp::Sweep { controller } => {
            let c = &mut controllers[*controller];
            c.registry.sweep_step(now, 256);
            c.collect();
        }
        ClusterOp::Flush { controller, batch } => {
            let c = &mut controllers[*controller];
            if !c.connected {
                return;
            }
            if std::mem::take(&mut c.rewrite_owned) {
                for replica in c.registry.owned_replicas() {
                    c.queue(Write::Put(replica));
                }
            }
            let take = (*batch).min(c.pending.len());
            if take == 0 {
                return;
            }
            store.revision += 1;
            for write in c.pending.drain(..take) {
                match write {
                    Write::Put(replica) => {
                        store
                            .values
                            .insert(replica.worker_id.clone(), replica.clone());
                        store.history.push((
                            store.revision,
                            replica.worker_id.clone(),
                            Some(replica),
                        ));
                    }
                    Write::Delete(id) => {
                        if store.values.remove(&id).is_some() {
                            store.history.push((store.revision, id, None));
                        }
                    }
                }
            }
        }
        ClusterOp::Deliver { controller, events } => {
            let c = &mut controllers[*controller];
            if !c.connected {
                return;
            }
            if c.applied < store.compacted_to {
                // The history it would resume from is gone: load it all.
                c.registry
                    .load_replicas(store.values.values().cloned().collect(), now);
                c.applied = store.revision;
            } else {
                // Whole transactions, as a watch delivers them: every event
                // of the next `events` revisions.
                let mut revisions: Vec<u64> = store
                    .history
                    .iter()
                    .map(|(revision, ..)| *revision)
                    .filter(|revision| *revision > c.applied)
                    .collect();
                revisions.dedup();
                let through = revisions
                    .get((*events).min(revisions.len()).saturating_sub(1))
                    .copied();
                let due: Vec<_> = store
                    .history
                    .iter()
                    .filter(|(revision, ..)| {
                        *revision > c.applied && through.is_some_and(|t| *revision <= t)
                    })
                    .cloned()
                    .collect();
                for (revision, id, value) in due {
                    match value {
                        Some(replica) => {
                            let _ = c.registry.apply_replica(replica, now);
                        }
                        None => c.registry.apply_removal(&id),
                    }
                    c.applied = revision;
                }
                if c.applied < store.revision && !store.history.iter().any(|(r, ..)| *r > c.applied)
                {
                    // Revisions with no event (a delete of nothing).
                    c.applied = store.revision;
                }
            }
            c.collect();
        }
        ClusterOp::Disconnect { controller } => controllers[*controller].connected = false,
        ClusterOp::Reconnect { controller } => {
            let c = &mut controllers[*controller];
            if !c.connected {
                step_reconnect(c);
            }
        }
        ClusterOp::Compact => {
            store.compacted_to = store.revision;
            let keep = store.compacted_to;
            store.history.retain(|(revision, ..)| *revision > keep);
        }
        ClusterOp::Advance(_) => {}
    }
}
