//! `RegistryActor` owns every worker record and the capability index. Nothing else
//! holds or mutates worker state: HTTP handlers and the `StalenessSweeper` only send
//! it messages, so there are no locks and every change is ordered.
//!
//! Liveness is measured on the controller's monotonic clock (`actix::clock::Instant`,
//! which a paused tokio clock controls in tests); the RFC 3339 timestamps on the
//! wire are for people and never compared.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::rc::Rc;
use std::time::Duration;

use actix::clock::Instant;
use actix::prelude::*;
use chrono::{DateTime, SecondsFormat, Utc};
use semver::{Version, VersionReq};
use serde::Serialize;

use crate::wire::{capability_key, Capability, Load, RegisterRequest};

/// Default time without a heartbeat after which a worker is stale.
pub const DEFAULT_STALE_AFTER: Duration = Duration::from_secs(120);
/// Default time a worker may stay stale before it is removed.
pub const DEFAULT_EVICT_AFTER: Duration = Duration::from_secs(600);
/// Evictions of one sweep logged one line each; the rest are summed up in one
/// line, so a fleet evicted together does not flood the log.
const EVICTIONS_LOGGED_ONE_BY_ONE: usize = 100;

/// How the registry judges liveness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegistrySettings {
    /// No heartbeat for this long makes a worker stale.
    pub stale_after: Duration,
    /// A worker stale for this long is removed; `None` keeps stale workers forever.
    pub evict_after: Option<Duration>,
}

impl Default for RegistrySettings {
    fn default() -> Self {
        RegistrySettings {
            stale_after: DEFAULT_STALE_AFTER,
            evict_after: Some(DEFAULT_EVICT_AFTER),
        }
    }
}

impl RegistrySettings {
    /// The heartbeat interval the controller advises workers: four heartbeats fit in
    /// one `stale_after`, so a single lost heartbeat never makes a worker stale.
    pub fn advised_heartbeat_interval(&self) -> Duration {
        self.stale_after / 4
    }
}

/// Register (or replace) a worker. Who may do so is the HTTP layer's decision
/// (a worker for its own id, or an admin); the registry records who did.
#[derive(Message, Debug, Clone)]
#[rtype(result = "RegisterAck")]
pub struct Register {
    pub request: RegisterRequest,
    /// The identity registering it, e.g. `worker/hello-world-1`.
    pub registered_by: String,
}

/// Record a heartbeat from a worker.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<HeartbeatAck, RegistryError>")]
pub struct Heartbeat {
    pub worker_id: String,
    pub load: Option<Load>,
}

/// Remove a worker; answers whether it was known.
#[derive(Message, Debug, Clone)]
#[rtype(result = "bool")]
pub struct Deregister {
    pub worker_id: String,
}

/// List every worker, ordered by id.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "Vec<WorkerSummary>")]
pub struct ListWorkers;

/// The full record of one worker.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Option<WorkerDetail>")]
pub struct GetWorker {
    pub worker_id: String,
}

/// Count providers per capability.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "BTreeMap<String, CapabilityCount>")]
pub struct ListCapabilities;

/// Choose a healthy worker for a capability.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Option<RouteChoice>")]
pub struct Route {
    pub verb: String,
    pub capability: String,
    pub version: Option<VersionReq>,
}

/// Mark workers without a recent heartbeat stale and evict long-stale ones.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "SweepReport")]
pub struct Sweep;

/// Counters for operators and benchmarks.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "RegistryStats")]
pub struct GetStats;

/// What `GetStats` answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct RegistryStats {
    pub workers: usize,
    pub healthy_workers: usize,
    pub capabilities: usize,
    pub sweeps: u64,
    /// Wall time of the last sweep, in milliseconds.
    pub last_sweep_ms: f64,
    /// Longest sweep so far, in milliseconds: the longest the registry stalled
    /// heartbeats and routes to sweep.
    pub max_sweep_ms: f64,
}

/// Why the registry refused a change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error("worker {0} is not registered")]
    UnknownWorker(String),
}

/// A successful registration.
#[derive(Debug, Clone, PartialEq)]
pub struct RegisterAck {
    pub capabilities_registered: usize,
    /// Whether an existing record with this id was replaced.
    pub replaced: bool,
    pub heartbeat_interval: Duration,
    pub stale_after: Duration,
}

/// A recorded heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeartbeatAck {
    /// The worker was stale and is healthy again.
    pub revived: bool,
}

/// The worker `Route` chose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteChoice {
    pub worker_id: String,
    pub worker_url: String,
    pub capability: String,
    pub version: String,
}

/// What one sweep changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepReport {
    pub newly_stale: Vec<String>,
    pub evicted: Vec<String>,
}

/// `healthy` or `stale`, as on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkerStatus {
    Healthy,
    Stale,
}

/// One row of `GET /workers`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkerSummary {
    pub worker_id: String,
    pub worker_url: String,
    pub is_healthy: bool,
    pub status: WorkerStatus,
    pub last_heartbeat: String,
    pub registered_at: String,
    pub capabilities: Vec<String>,
}

/// `GET /workers/{id}`: everything the registry knows of one worker.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkerDetail {
    pub worker_id: String,
    pub worker_url: String,
    pub is_healthy: bool,
    pub status: WorkerStatus,
    pub last_heartbeat: String,
    pub registered_at: String,
    /// Seconds since the last heartbeat, on the controller's monotonic clock.
    pub seconds_since_heartbeat: f64,
    pub registered_by: String,
    pub load: Option<Load>,
    pub capabilities: Vec<Capability>,
}

/// One entry of `GET /capabilities`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CapabilityCount {
    pub workers: usize,
    pub healthy_workers: usize,
}

type WorkerId = Rc<str>;

/// One capability as the registry keeps it: the routing key (shared with the
/// index and every other provider), the parsed version, and the announcement
/// itself only when it says more than those three. A registry of 100,000
/// workers is mostly these, so they are kept small.
struct StoredCapability {
    key: Rc<str>,
    version: Version,
    announced: Option<Box<Capability>>,
}

impl StoredCapability {
    fn to_wire(&self) -> Capability {
        match &self.announced {
            Some(capability) => (**capability).clone(),
            None => {
                let (verb, name) = self.key.split_once(':').unwrap_or((&self.key, ""));
                Capability::new(verb, name, &self.version.to_string())
            }
        }
    }
}

struct WorkerRecord {
    url: Box<str>,
    capabilities: Box<[StoredCapability]>,
    registered_at: DateTime<Utc>,
    last_heartbeat: DateTime<Utc>,
    last_seen: Instant,
    stale_since: Option<Instant>,
    load: Option<Load>,
    registered_by: Rc<str>,
}

impl WorkerRecord {
    /// Stale once marked by a sweep, or as soon as `stale_after` has passed, so the
    /// answer does not depend on when the sweeper last ran.
    fn is_stale(&self, now: Instant, stale_after: Duration) -> bool {
        self.stale_since.is_some() || now.duration_since(self.last_seen) >= stale_after
    }

    fn status(&self, now: Instant, stale_after: Duration) -> WorkerStatus {
        if self.is_stale(now, stale_after) {
            WorkerStatus::Stale
        } else {
            WorkerStatus::Healthy
        }
    }

    /// The distinct `verb:name` keys this worker is indexed under.
    fn keys(&self) -> Vec<Rc<str>> {
        let mut keys: Vec<Rc<str>> = Vec::with_capacity(self.capabilities.len());
        for capability in self.capabilities.iter() {
            if !keys.iter().any(|k| **k == *capability.key) {
                keys.push(capability.key.clone());
            }
        }
        keys
    }

    /// The version this worker serves of `key` that satisfies `requirement`.
    fn matching_version(&self, key: &str, requirement: Option<&VersionReq>) -> Option<&Version> {
        self.capabilities
            .iter()
            .filter(|capability| &*capability.key == key)
            .map(|capability| &capability.version)
            .find(|version| requirement.is_none_or(|req| req.matches(version)))
    }
}

/// Providers of one `verb:name`, with the round-robin cursor.
#[derive(Default)]
struct Providers {
    workers: Vec<WorkerId>,
    next: usize,
}

/// The actor that owns the registry.
pub struct RegistryActor {
    settings: RegistrySettings,
    workers: HashMap<WorkerId, WorkerRecord>,
    index: HashMap<Rc<str>, Providers>,
    /// Identities that registered workers, shared by their records.
    registrants: HashSet<Rc<str>>,
    sweeps: u64,
    last_sweep: std::time::Duration,
    max_sweep: std::time::Duration,
}

impl RegistryActor {
    pub fn new(settings: RegistrySettings) -> Self {
        RegistryActor {
            settings,
            workers: HashMap::new(),
            index: HashMap::new(),
            registrants: HashSet::new(),
            sweeps: 0,
            last_sweep: Duration::ZERO,
            max_sweep: Duration::ZERO,
        }
    }

    fn unindex(&mut self, id: &str, keys: &[Rc<str>]) {
        for key in keys {
            let Some(providers) = self.index.get_mut(key) else {
                continue;
            };
            if let Some(position) = providers.workers.iter().position(|w| &**w == id) {
                providers.workers.remove(position);
                // Keep the cursor on the provider that was due next, so a removal
                // never makes the rotation skip anyone.
                if position < providers.next {
                    providers.next -= 1;
                }
                if providers.next >= providers.workers.len() {
                    providers.next = 0;
                }
            }
            if providers.workers.is_empty() {
                self.index.remove(key);
            }
        }
    }

    /// Removes many workers at once: one pass over each affected provider list,
    /// where removing them one by one would cost a scan per worker and stall the
    /// registry when a whole fleet is evicted together.
    fn remove_many(&mut self, ids: &HashSet<Rc<str>>) -> Vec<(Rc<str>, WorkerRecord)> {
        let mut removed = Vec::with_capacity(ids.len());
        let mut keys: HashSet<Rc<str>> = HashSet::new();
        for id in ids {
            if let Some((id, record)) = self.workers.remove_entry(&**id) {
                keys.extend(record.keys());
                removed.push((id, record));
            }
        }
        for key in keys {
            let Some(providers) = self.index.get_mut(&key) else {
                continue;
            };
            let before_cursor = providers.workers[..providers.next.min(providers.workers.len())]
                .iter()
                .filter(|w| ids.contains(&***w))
                .count();
            providers.workers.retain(|w| !ids.contains(&**w));
            providers.next -= before_cursor;
            if providers.next >= providers.workers.len() {
                providers.next = 0;
            }
            if providers.workers.is_empty() {
                self.index.remove(&key);
            }
        }
        removed
    }

    fn remove(&mut self, id: &str) -> Option<WorkerRecord> {
        let record = self.workers.remove(id)?;
        self.unindex(id, &record.keys());
        Some(record)
    }

    /// The shared copy of `key`, as the index holds it.
    fn shared_key(&self, key: String) -> Rc<str> {
        match self.index.get_key_value(key.as_str()) {
            Some((shared, _)) => shared.clone(),
            None => Rc::from(key),
        }
    }

    fn registrant(&mut self, identity: String) -> Rc<str> {
        if let Some(shared) = self.registrants.get(identity.as_str()) {
            return shared.clone();
        }
        let shared: Rc<str> = Rc::from(identity);
        self.registrants.insert(shared.clone());
        shared
    }
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl Actor for RegistryActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Registrations arrive in bursts after a controller restart; a larger
        // mailbox keeps senders from being back-pressured by the default of 16.
        ctx.set_mailbox_capacity(4096);
    }
}

impl Handler<Register> for RegistryActor {
    type Result = MessageResult<Register>;

    fn handle(&mut self, msg: Register, _: &mut Self::Context) -> Self::Result {
        let Register {
            request,
            registered_by,
        } = msg;
        let replaced = self.remove(&request.worker_id).is_some();

        let id: WorkerId = Rc::from(request.worker_id.as_str());
        let count = request.capabilities.len();
        let capabilities: Box<[StoredCapability]> = request
            .capabilities
            .into_iter()
            .map(|capability| StoredCapability {
                key: self.shared_key(capability.key()),
                // Validation has already proven every version parses; an
                // unparsable one here would be a bug upstream, and 0.0.0 keeps
                // routing total.
                version: Version::parse(&capability.version).unwrap_or(Version::new(0, 0, 0)),
                announced: capability.has_extras().then(|| Box::new(capability)),
            })
            .collect();
        let registered_by = self.registrant(registered_by);
        let now = Utc::now();
        let record = WorkerRecord {
            url: request.worker_url.into_boxed_str(),
            capabilities,
            registered_at: now,
            last_heartbeat: now,
            last_seen: Instant::now(),
            stale_since: None,
            load: None,
            registered_by,
        };
        let keys = record.keys();
        for key in &keys {
            self.index
                .entry(key.clone())
                .or_default()
                .workers
                .push(id.clone());
        }
        log::info!(
            "{} worker {} at {} with {} capabilit{} ({}), by {}",
            if replaced {
                "re-registered"
            } else {
                "registered"
            },
            id,
            record.url,
            count,
            if count == 1 { "y" } else { "ies" },
            keys.iter().map(|k| &**k).collect::<Vec<_>>().join(", "),
            record.registered_by
        );
        self.workers.insert(id, record);
        MessageResult(RegisterAck {
            capabilities_registered: count,
            replaced,
            heartbeat_interval: self.settings.advised_heartbeat_interval(),
            stale_after: self.settings.stale_after,
        })
    }
}

impl Handler<Heartbeat> for RegistryActor {
    type Result = Result<HeartbeatAck, RegistryError>;

    fn handle(&mut self, msg: Heartbeat, _: &mut Self::Context) -> Self::Result {
        let record = self
            .workers
            .get_mut(msg.worker_id.as_str())
            .ok_or_else(|| RegistryError::UnknownWorker(msg.worker_id.clone()))?;
        let now = Instant::now();
        let was_stale = record.is_stale(now, self.settings.stale_after);
        record.last_seen = now;
        record.last_heartbeat = Utc::now();
        record.stale_since = None;
        if msg.load.is_some() {
            record.load = msg.load;
        }
        if was_stale {
            log::info!(
                "worker {} is healthy again: heartbeat received; routing to it resumes",
                msg.worker_id
            );
        }
        Ok(HeartbeatAck { revived: was_stale })
    }
}

impl Handler<Deregister> for RegistryActor {
    type Result = bool;

    fn handle(&mut self, msg: Deregister, _: &mut Self::Context) -> bool {
        let known = self.remove(&msg.worker_id).is_some();
        if known {
            log::info!("deregistered worker {}", msg.worker_id);
        } else {
            log::debug!(
                "deregister for unknown worker {}: nothing to do",
                msg.worker_id
            );
        }
        known
    }
}

impl Handler<ListWorkers> for RegistryActor {
    type Result = MessageResult<ListWorkers>;

    fn handle(&mut self, _: ListWorkers, _: &mut Self::Context) -> Self::Result {
        let now = Instant::now();
        let stale_after = self.settings.stale_after;
        let mut workers: Vec<WorkerSummary> = self
            .workers
            .iter()
            .map(|(id, record)| {
                let status = record.status(now, stale_after);
                WorkerSummary {
                    worker_id: id.to_string(),
                    worker_url: record.url.to_string(),
                    is_healthy: status == WorkerStatus::Healthy,
                    status,
                    last_heartbeat: rfc3339(record.last_heartbeat),
                    registered_at: rfc3339(record.registered_at),
                    capabilities: record.keys().iter().map(|k| k.to_string()).collect(),
                }
            })
            .collect();
        workers.sort_by(|a, b| a.worker_id.cmp(&b.worker_id));
        MessageResult(workers)
    }
}

impl Handler<GetWorker> for RegistryActor {
    type Result = Option<WorkerDetail>;

    fn handle(&mut self, msg: GetWorker, _: &mut Self::Context) -> Self::Result {
        let (id, record) = self.workers.get_key_value(msg.worker_id.as_str())?;
        let now = Instant::now();
        let status = record.status(now, self.settings.stale_after);
        Some(WorkerDetail {
            worker_id: id.to_string(),
            worker_url: record.url.to_string(),
            is_healthy: status == WorkerStatus::Healthy,
            status,
            last_heartbeat: rfc3339(record.last_heartbeat),
            registered_at: rfc3339(record.registered_at),
            seconds_since_heartbeat: now.duration_since(record.last_seen).as_secs_f64(),
            registered_by: record.registered_by.to_string(),
            load: record.load,
            capabilities: record
                .capabilities
                .iter()
                .map(StoredCapability::to_wire)
                .collect(),
        })
    }
}

impl Handler<ListCapabilities> for RegistryActor {
    type Result = MessageResult<ListCapabilities>;

    fn handle(&mut self, _: ListCapabilities, _: &mut Self::Context) -> Self::Result {
        let now = Instant::now();
        let stale_after = self.settings.stale_after;
        let counts = self
            .index
            .iter()
            .map(|(key, providers)| {
                let healthy_workers = providers
                    .workers
                    .iter()
                    .filter_map(|id| self.workers.get(id))
                    .filter(|record| !record.is_stale(now, stale_after))
                    .count();
                let count = CapabilityCount {
                    workers: providers.workers.len(),
                    healthy_workers,
                };
                (key.to_string(), count)
            })
            .collect();
        MessageResult(counts)
    }
}

impl Handler<Route> for RegistryActor {
    type Result = Option<RouteChoice>;

    fn handle(&mut self, msg: Route, _: &mut Self::Context) -> Self::Result {
        let key = capability_key(&msg.verb, &msg.capability);
        let providers = self.index.get_mut(key.as_str())?;
        let now = Instant::now();
        let count = providers.workers.len();
        // Round-robin: start where the previous route for this capability stopped
        // and take the first live provider that serves a matching version.
        for step in 0..count {
            let slot = (providers.next + step) % count;
            let id = &providers.workers[slot];
            let Some(record) = self.workers.get(id) else {
                continue;
            };
            if record.is_stale(now, self.settings.stale_after) {
                continue;
            }
            if let Some(version) = record.matching_version(&key, msg.version.as_ref()) {
                providers.next = (slot + 1) % count;
                return Some(RouteChoice {
                    worker_id: id.to_string(),
                    worker_url: record.url.to_string(),
                    capability: key,
                    version: version.to_string(),
                });
            }
        }
        None
    }
}

impl Handler<Sweep> for RegistryActor {
    type Result = MessageResult<Sweep>;

    fn handle(&mut self, _: Sweep, _: &mut Self::Context) -> Self::Result {
        // Wall time, not the (possibly paused) tokio clock: this is a cost.
        let started = std::time::Instant::now();
        let now = Instant::now();
        let RegistrySettings {
            stale_after,
            evict_after,
        } = self.settings;
        let mut report = SweepReport::default();
        for (id, record) in self.workers.iter_mut() {
            match record.stale_since {
                None if now.duration_since(record.last_seen) >= stale_after => {
                    record.stale_since = Some(now);
                    match evict_after {
                        Some(evict_after) => log::warn!(
                            "worker {id} is stale: no heartbeat for {:.1} s; it is no longer routed to and will be evicted in {} s unless it heartbeats",
                            now.duration_since(record.last_seen).as_secs_f64(),
                            evict_after.as_secs()
                        ),
                        None => log::warn!(
                            "worker {id} is stale: no heartbeat for {:.1} s; it is no longer routed to until it heartbeats",
                            now.duration_since(record.last_seen).as_secs_f64()
                        ),
                    }
                    report.newly_stale.push(id.to_string());
                }
                Some(since) if evict_after.is_some_and(|e| now.duration_since(since) >= e) => {
                    report.evicted.push(id.to_string());
                }
                _ => {}
            }
        }
        if !report.evicted.is_empty() {
            let ids: HashSet<Rc<str>> = report
                .evicted
                .iter()
                .map(|id| Rc::from(id.as_str()))
                .collect();
            let removed = self.remove_many(&ids);
            for (id, record) in removed.iter().take(EVICTIONS_LOGGED_ONE_BY_ONE) {
                log::warn!(
                    "evicted worker {id} ({}): no heartbeat for {:.0} s; it must register again",
                    record.url,
                    now.duration_since(record.last_seen).as_secs_f64()
                );
            }
            if removed.len() > EVICTIONS_LOGGED_ONE_BY_ONE {
                log::warn!(
                    "evicted {} more workers in this sweep (no heartbeat for over {} s); they must register again",
                    removed.len() - EVICTIONS_LOGGED_ONE_BY_ONE,
                    (stale_after + evict_after.unwrap_or_default()).as_secs()
                );
            }
        }
        self.sweeps += 1;
        self.last_sweep = started.elapsed();
        self.max_sweep = self.max_sweep.max(self.last_sweep);
        MessageResult(report)
    }
}

impl Handler<GetStats> for RegistryActor {
    type Result = MessageResult<GetStats>;

    fn handle(&mut self, _: GetStats, _: &mut Self::Context) -> Self::Result {
        let now = Instant::now();
        let stale_after = self.settings.stale_after;
        MessageResult(RegistryStats {
            workers: self.workers.len(),
            healthy_workers: self
                .workers
                .values()
                .filter(|record| !record.is_stale(now, stale_after))
                .count(),
            capabilities: self.index.len(),
            sweeps: self.sweeps,
            last_sweep_ms: self.last_sweep.as_secs_f64() * 1000.0,
            max_sweep_ms: self.max_sweep.as_secs_f64() * 1000.0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Capability;
    use tokio::time::sleep;

    const OWNER: &str = "admin/test";

    fn registration(id: &str, capabilities: &[(&str, &str, &str)]) -> Register {
        Register {
            request: RegisterRequest {
                worker_id: id.into(),
                worker_url: format!("https://{id}.local:8500"),
                capabilities: capabilities
                    .iter()
                    .map(|(verb, name, version)| Capability::new(verb, name, version))
                    .collect(),
            },
            registered_by: OWNER.into(),
        }
    }

    fn greet(id: &str) -> Register {
        registration(id, &[("invoke", "hello.greet", "1.0.0")])
    }

    fn route_greet() -> Route {
        Route {
            verb: "invoke".into(),
            capability: "hello.greet".into(),
            version: None,
        }
    }

    async fn status_of(registry: &Addr<RegistryActor>, id: &str) -> Option<WorkerStatus> {
        let workers = registry.send(ListWorkers).await.unwrap();
        workers
            .into_iter()
            .find(|w| w.worker_id == id)
            .map(|w| w.status)
    }

    fn start(settings: RegistrySettings) -> Addr<RegistryActor> {
        RegistryActor::new(settings).start()
    }

    #[actix::test]
    async fn a_worker_is_healthy_at_119_s_and_stale_at_121_s() {
        tokio::time::pause();
        let registry = start(RegistrySettings::default());
        crate::sweeper::StalenessSweeper::new(registry.clone(), Duration::from_secs(5)).start();
        registry.send(greet("w1")).await.unwrap();

        sleep(Duration::from_secs(119)).await;
        assert_eq!(
            status_of(&registry, "w1").await,
            Some(WorkerStatus::Healthy)
        );
        assert!(registry.send(route_greet()).await.unwrap().is_some());

        sleep(Duration::from_secs(2)).await;
        assert_eq!(status_of(&registry, "w1").await, Some(WorkerStatus::Stale));
        assert_eq!(registry.send(route_greet()).await.unwrap(), None);
    }

    #[actix::test]
    async fn a_sweep_reports_a_worker_once_when_it_turns_stale() {
        tokio::time::pause();
        let registry = start(RegistrySettings::default());
        registry.send(greet("w1")).await.unwrap();
        sleep(Duration::from_secs(120)).await;
        let first = registry.send(Sweep).await.unwrap();
        assert_eq!(first.newly_stale, vec!["w1".to_string()]);
        let second = registry.send(Sweep).await.unwrap();
        assert_eq!(second, SweepReport::default());
    }

    #[actix::test]
    async fn a_stale_worker_is_not_routed_to_and_a_heartbeat_revives_it() {
        tokio::time::pause();
        let registry = start(RegistrySettings::default());
        registry.send(greet("w1")).await.unwrap();
        registry.send(greet("w2")).await.unwrap();
        sleep(Duration::from_secs(100)).await;
        registry
            .send(Heartbeat {
                worker_id: "w2".into(),
                load: None,
            })
            .await
            .unwrap()
            .unwrap();
        sleep(Duration::from_secs(30)).await;
        registry.send(Sweep).await.unwrap();

        for _ in 0..4 {
            let choice = registry.send(route_greet()).await.unwrap().unwrap();
            assert_eq!(choice.worker_id, "w2", "w1 is stale and must not be chosen");
        }

        let ack = registry
            .send(Heartbeat {
                worker_id: "w1".into(),
                load: None,
            })
            .await
            .unwrap()
            .unwrap();
        assert!(ack.revived);
        assert_eq!(
            status_of(&registry, "w1").await,
            Some(WorkerStatus::Healthy)
        );
        let chosen: Vec<String> =
            futures_util::future::join_all((0..2).map(|_| registry.send(route_greet())))
                .await
                .into_iter()
                .map(|r| r.unwrap().unwrap().worker_id)
                .collect();
        assert!(chosen.contains(&"w1".to_string()), "{chosen:?}");
    }

    #[actix::test]
    async fn a_worker_stale_for_evict_after_is_removed() {
        tokio::time::pause();
        let registry = start(RegistrySettings {
            stale_after: Duration::from_secs(120),
            evict_after: Some(Duration::from_secs(600)),
        });
        crate::sweeper::StalenessSweeper::new(registry.clone(), Duration::from_secs(5)).start();
        registry.send(greet("w1")).await.unwrap();

        sleep(Duration::from_secs(121)).await;
        assert_eq!(status_of(&registry, "w1").await, Some(WorkerStatus::Stale));
        sleep(Duration::from_secs(590)).await;
        assert_eq!(status_of(&registry, "w1").await, Some(WorkerStatus::Stale));
        sleep(Duration::from_secs(15)).await;
        assert_eq!(status_of(&registry, "w1").await, None);
        assert!(registry.send(ListCapabilities).await.unwrap().is_empty());
        let heartbeat = registry
            .send(Heartbeat {
                worker_id: "w1".into(),
                load: None,
            })
            .await
            .unwrap();
        assert_eq!(heartbeat, Err(RegistryError::UnknownWorker("w1".into())));
    }

    #[actix::test]
    async fn evict_after_none_keeps_stale_workers() {
        tokio::time::pause();
        let registry = start(RegistrySettings {
            stale_after: Duration::from_secs(120),
            evict_after: None,
        });
        registry.send(greet("w1")).await.unwrap();
        sleep(Duration::from_secs(10_000)).await;
        registry.send(Sweep).await.unwrap();
        sleep(Duration::from_secs(10_000)).await;
        let report = registry.send(Sweep).await.unwrap();
        assert!(report.evicted.is_empty());
        assert_eq!(status_of(&registry, "w1").await, Some(WorkerStatus::Stale));
    }

    #[actix::test]
    async fn round_robin_over_three_providers_returns_each_of_them() {
        let registry = start(RegistrySettings::default());
        for id in ["w1", "w2", "w3"] {
            registry.send(greet(id)).await.unwrap();
        }
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for _ in 0..9 {
            let choice = registry.send(route_greet()).await.unwrap().unwrap();
            *counts.entry(choice.worker_id).or_default() += 1;
        }
        let expected: BTreeMap<String, usize> = [("w1", 3), ("w2", 3), ("w3", 3)]
            .map(|(k, v)| (k.to_string(), v))
            .into();
        assert_eq!(counts, expected);
    }

    #[actix::test]
    async fn a_version_requirement_filters_providers() {
        let registry = start(RegistrySettings::default());
        registry
            .send(registration("old", &[("invoke", "hello.greet", "1.4.0")]))
            .await
            .unwrap();
        registry
            .send(registration("new", &[("invoke", "hello.greet", "2.1.0")]))
            .await
            .unwrap();
        let route = |req: &str| Route {
            version: Some(VersionReq::parse(req).unwrap()),
            ..route_greet()
        };
        for _ in 0..3 {
            let choice = registry.send(route("^2")).await.unwrap().unwrap();
            assert_eq!(
                (choice.worker_id.as_str(), choice.version.as_str()),
                ("new", "2.1.0")
            );
            let choice = registry.send(route(">=1.2, <2")).await.unwrap().unwrap();
            assert_eq!(choice.worker_id, "old");
        }
        assert_eq!(registry.send(route("^3")).await.unwrap(), None);
    }

    #[actix::test]
    async fn re_registration_replaces_capabilities_and_the_index_follows() {
        let registry = start(RegistrySettings::default());
        registry
            .send(registration(
                "w1",
                &[
                    ("invoke", "hello.greet", "1.0.0"),
                    ("invoke", "hello.wave", "1.0.0"),
                ],
            ))
            .await
            .unwrap();
        let ack = registry
            .send(registration("w1", &[("invoke", "hello.shout", "1.0.0")]))
            .await
            .unwrap();
        assert!(ack.replaced);

        let capabilities = registry.send(ListCapabilities).await.unwrap();
        assert_eq!(
            capabilities.keys().collect::<Vec<_>>(),
            vec!["invoke:hello.shout"]
        );
        assert_eq!(registry.send(route_greet()).await.unwrap(), None);
        let shout = Route {
            capability: "hello.shout".into(),
            ..route_greet()
        };
        assert_eq!(registry.send(shout).await.unwrap().unwrap().worker_id, "w1");
        assert_eq!(registry.send(ListWorkers).await.unwrap().len(), 1);
    }

    #[actix::test]
    async fn round_robin_skips_no_one_when_providers_leave_or_return() {
        let registry = start(RegistrySettings::default());
        for id in ["a", "b", "c"] {
            registry.send(greet(id)).await.unwrap();
        }
        let next = || async {
            registry
                .send(route_greet())
                .await
                .unwrap()
                .unwrap()
                .worker_id
        };
        assert_eq!(next().await, "a");
        // b is due; a leaves: b must still come next, then c.
        registry
            .send(Deregister {
                worker_id: "a".into(),
            })
            .await
            .unwrap();
        assert_eq!(next().await, "b");
        assert_eq!(next().await, "c");
        // a returns at the end of the rotation; b is due and comes next.
        registry.send(greet("a")).await.unwrap();
        assert_eq!(next().await, "b");
        // c is due; b re-registers (moves to the end): c, a, b follow.
        registry.send(greet("b")).await.unwrap();
        assert_eq!(next().await, "c");
        assert_eq!(next().await, "a");
        assert_eq!(next().await, "b");
    }

    #[actix::test]
    async fn two_versions_of_one_capability_index_the_worker_once() {
        let registry = start(RegistrySettings::default());
        registry
            .send(registration(
                "w1",
                &[("invoke", "x", "1.0.0"), ("invoke", "x", "2.0.0")],
            ))
            .await
            .unwrap();
        registry
            .send(registration("w2", &[("invoke", "x", "1.5.0")]))
            .await
            .unwrap();
        let counts = registry.send(ListCapabilities).await.unwrap();
        assert_eq!(
            counts["invoke:x"],
            CapabilityCount {
                workers: 2,
                healthy_workers: 2
            }
        );
        let workers = registry.send(ListWorkers).await.unwrap();
        assert_eq!(workers[0].capabilities, vec!["invoke:x".to_string()]);
        let route = |req: &str| Route {
            verb: "invoke".into(),
            capability: "x".into(),
            version: Some(VersionReq::parse(req).unwrap()),
        };
        let mut chosen = Vec::new();
        for _ in 0..4 {
            chosen.push(registry.send(route("^1")).await.unwrap().unwrap().worker_id);
        }
        assert_eq!(
            chosen,
            ["w1", "w2", "w1", "w2"],
            "each worker once per turn"
        );
        let two = registry.send(route("^2")).await.unwrap().unwrap();
        assert_eq!(
            (two.worker_id.as_str(), two.version.as_str()),
            ("w1", "2.0.0")
        );
    }

    #[actix::test]
    async fn evicting_many_at_once_keeps_the_index_and_the_rotation_right() {
        tokio::time::pause();
        let registry = start(RegistrySettings {
            stale_after: Duration::from_secs(10),
            evict_after: Some(Duration::from_secs(10)),
        });
        for i in 0..300 {
            registry.send(greet(&format!("old-{i}"))).await.unwrap();
        }
        sleep(Duration::from_secs(11)).await;
        registry.send(Sweep).await.unwrap();
        for id in ["a", "b"] {
            registry.send(greet(id)).await.unwrap();
        }
        sleep(Duration::from_secs(9)).await;
        for id in ["a", "b"] {
            let beat = Heartbeat {
                worker_id: id.into(),
                load: None,
            };
            registry.send(beat).await.unwrap().unwrap();
        }
        sleep(Duration::from_secs(1)).await;
        let report = registry.send(Sweep).await.unwrap();
        assert_eq!(report.evicted.len(), 300);
        let counts = registry.send(ListCapabilities).await.unwrap();
        assert_eq!(counts["invoke:hello.greet"].workers, 2);
        let mut chosen = Vec::new();
        for _ in 0..4 {
            chosen.push(
                registry
                    .send(route_greet())
                    .await
                    .unwrap()
                    .unwrap()
                    .worker_id,
            );
        }
        assert_eq!(chosen, ["a", "b", "a", "b"]);
    }

    #[actix::test]
    async fn the_record_names_who_registered_it() {
        let registry = start(RegistrySettings::default());
        let mut first = greet("w1");
        first.registered_by = "worker/w1".into();
        registry.send(first).await.unwrap();
        let detail = registry
            .send(GetWorker {
                worker_id: "w1".into(),
            })
            .await
            .unwrap()
            .unwrap();
        assert_eq!(detail.registered_by, "worker/w1");
    }

    #[actix::test]
    async fn deregister_removes_the_worker_from_the_index() {
        let registry = start(RegistrySettings::default());
        registry.send(greet("w1")).await.unwrap();
        assert!(registry
            .send(Deregister {
                worker_id: "w1".into()
            })
            .await
            .unwrap());
        assert!(!registry
            .send(Deregister {
                worker_id: "w1".into()
            })
            .await
            .unwrap());
        assert_eq!(registry.send(route_greet()).await.unwrap(), None);
        assert!(registry.send(ListCapabilities).await.unwrap().is_empty());
    }

    #[actix::test]
    async fn capability_counts_split_healthy_from_stale() {
        tokio::time::pause();
        let registry = start(RegistrySettings::default());
        registry.send(greet("w1")).await.unwrap();
        sleep(Duration::from_secs(60)).await;
        registry.send(greet("w2")).await.unwrap();
        sleep(Duration::from_secs(70)).await;
        let counts = registry.send(ListCapabilities).await.unwrap();
        assert_eq!(
            counts["invoke:hello.greet"],
            CapabilityCount {
                workers: 2,
                healthy_workers: 1
            }
        );
    }

    #[actix::test]
    async fn stats_count_workers_and_sweeps() {
        tokio::time::pause();
        let registry = start(RegistrySettings::default());
        registry.send(greet("w1")).await.unwrap();
        sleep(Duration::from_secs(60)).await;
        registry.send(greet("w2")).await.unwrap();
        sleep(Duration::from_secs(70)).await;
        registry.send(Sweep).await.unwrap();
        let stats = registry.send(GetStats).await.unwrap();
        assert_eq!(
            (stats.workers, stats.healthy_workers, stats.capabilities),
            (2, 1, 1)
        );
        assert_eq!(stats.sweeps, 1);
        assert!(stats.max_sweep_ms >= stats.last_sweep_ms);
    }

    #[actix::test]
    async fn a_heartbeat_records_the_reported_load() {
        let registry = start(RegistrySettings::default());
        registry.send(greet("w1")).await.unwrap();
        let load = Load {
            in_flight: 3,
            capacity: 8,
        };
        registry
            .send(Heartbeat {
                worker_id: "w1".into(),
                load: Some(load),
            })
            .await
            .unwrap()
            .unwrap();
        let detail = registry
            .send(GetWorker {
                worker_id: "w1".into(),
            })
            .await
            .unwrap()
            .unwrap();
        assert_eq!(detail.load, Some(load));
    }
}
