//! Feeding the registry from etcd: [`load`] reads the store's whole contents
//! once, and [`run`] watches every change after it, resuming from the last
//! revision seen after a disconnection, and loading everything again if etcd
//! compacted the history in between.

use std::collections::HashSet;
use std::time::Duration;

use actix::Addr;
use crank_proto::wire::ReplicatedWorker;
use crank_registry::{AdoptOrphans, ApplyReplica, LoadReplicas, RegistryActor, RemoveReplica};
use etcd_client::{Client, EventType, GetOptions, WatchOptions};

use super::keys::{Key, Keys};
use super::{ClusterSettings, StoreHealth, StoreState};

/// The store's contents at one revision.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    pub workers: Vec<ReplicatedWorker>,
    pub controllers: HashSet<String>,
    pub revision: i64,
}

/// Reads every record and every live controller.
pub async fn load(client: &mut Client, keys: &Keys) -> Result<Loaded, etcd_client::Error> {
    let answer = client
        .get(keys.all(), Some(GetOptions::new().with_prefix()))
        .await?;
    let mut loaded = Loaded {
        revision: answer.header().map_or(0, |h| h.revision()),
        ..Loaded::default()
    };
    for kv in answer.kvs() {
        match kv.key_str().ok().and_then(|key| keys.parse(key)) {
            Some(Key::Worker(id)) => match serde_json::from_slice(kv.value()) {
                Ok(replica) => loaded.workers.push(replica),
                Err(problem) => log::warn!("ignored the stored record of worker {id}: {problem}"),
            },
            Some(Key::Controller(id)) => {
                loaded.controllers.insert(id.to_owned());
            }
            None => {}
        }
    }
    Ok(loaded)
}

/// The live controllers, and what to do when one goes.
struct Membership {
    live: HashSet<String>,
    me: String,
    silent_for: Duration,
}

impl Membership {
    /// The first live controller (by id) adopts the workers of those gone.
    fn adopt_if_first(&self, registry: &Addr<RegistryActor>) {
        if self.live.iter().min() == Some(&self.me) {
            registry.do_send(AdoptOrphans {
                live: self.live.clone(),
                silent_for: self.silent_for,
            });
        }
    }
}

/// Hands `loaded` to the registry, and adopts orphans if this controller is
/// the one to.
pub fn hand_over(
    loaded: Loaded,
    settings: &ClusterSettings,
    registry: &Addr<RegistryActor>,
) -> (i64, HashSet<String>) {
    registry.do_send(LoadReplicas(loaded.workers));
    let membership = Membership {
        live: loaded.controllers,
        me: settings.controller_id.clone(),
        silent_for: settings.session_ttl,
    };
    membership.adopt_if_first(registry);
    (loaded.revision, membership.live)
}

/// Watches the store from `revision` on, for as long as the registry lives.
pub async fn run(
    mut client: Client,
    keys: Keys,
    settings: ClusterSettings,
    registry: Addr<RegistryActor>,
    health: StoreHealth,
    mut revision: i64,
    live: HashSet<String>,
) {
    let mut membership = Membership {
        live,
        me: settings.controller_id.clone(),
        silent_for: settings.session_ttl,
    };
    health.watched(revision, revision);
    while registry.connected() {
        let options = WatchOptions::new()
            .with_prefix()
            .with_start_revision(revision + 1);
        let mut stream = match client.watch(keys.all(), Some(options)).await {
            Ok(stream) => stream,
            Err(problem) => {
                unreachable(&health, &problem);
                actix_rt::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if health.set(StoreState::Ok) == StoreState::Unreachable {
            log::info!("etcd answers again; the watch resumes after revision {revision}");
        }
        loop {
            let answer = match stream.message().await {
                Ok(Some(answer)) => answer,
                Ok(None) => break,
                Err(problem) => {
                    unreachable(&health, &problem);
                    break;
                }
            };
            if answer.canceled() {
                if answer.compact_revision() > 0 {
                    log::warn!("etcd compacted the history past revision {revision}; loading the whole store again");
                    match load(&mut client, &keys).await {
                        Ok(loaded) => {
                            let (at, live) = hand_over(loaded, &settings, &registry);
                            revision = at;
                            membership.live = live;
                        }
                        Err(problem) => unreachable(&health, &problem),
                    }
                }
                break;
            }
            let store_revision = answer.header().map_or(revision, |h| h.revision());
            for event in answer.events() {
                let Some(kv) = event.kv() else { continue };
                revision = revision.max(kv.mod_revision());
                let Some(key) = kv.key_str().ok().and_then(|key| keys.parse(key)) else {
                    continue;
                };
                match (key, event.event_type()) {
                    (Key::Worker(id), EventType::Put) => {
                        match serde_json::from_slice::<ReplicatedWorker>(kv.value()) {
                            Ok(replica) => registry.do_send(ApplyReplica(replica)),
                            Err(problem) => {
                                log::warn!("ignored the stored record of worker {id}: {problem}")
                            }
                        }
                    }
                    (Key::Worker(id), EventType::Delete) => {
                        registry.do_send(RemoveReplica(id.to_owned()))
                    }
                    (Key::Controller(id), EventType::Put) => {
                        if membership.live.insert(id.to_owned()) {
                            log::info!("controller {id} joined the cluster");
                        }
                    }
                    (Key::Controller(id), EventType::Delete) => {
                        membership.live.remove(id);
                        log::warn!("controller {id} left the cluster (its session ended); the first of the others adopts its workers");
                        membership.adopt_if_first(&registry);
                    }
                }
            }
            health.watched(revision, store_revision);
        }
        actix_rt::time::sleep(Duration::from_millis(500)).await;
    }
}

fn unreachable(health: &StoreHealth, problem: &etcd_client::Error) {
    if health.set(StoreState::Unreachable) != StoreState::Unreachable {
        log::warn!("etcd is unreachable ({problem}); this controller keeps answering routes and heartbeats from its replica");
    }
}
