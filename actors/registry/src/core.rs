//! [`Registry`]: the registry's state and algorithms as a plain struct with
//! synchronous methods. The clock is passed in ([`Now`]), so everything here is
//! tested with ordinary `#[test]`s; the [`RegistryActor`](super::RegistryActor)
//! holds one and delegates.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::rc::Rc;
use std::time::Duration;

use actix::clock::Instant;
use chrono::{DateTime, Utc};
use rand::rngs::SmallRng;
use rand::SeedableRng;

use super::deadlines::DeadlineQueue;
use super::index::CapabilityIndex;
use super::journal::Journal;
use super::liveness::Liveness;
use super::messages::{
    DeregisterOutcome, RegisterAck, RegistryError, RegistryStats, ReportAck, RouteChoice,
    WorkerDetailView, WorkerView,
};
use super::observe::FleetGauges;
use super::record::Owner;
use super::record::{CapabilitySets, WorkerRecord};
use super::router::{self, Judge, NoRoute, Tally};
use super::store::{ChangeKind, Origin, RegistryEvent};
use super::RegistrySettings;
use crank_proto::domain::{CallReport, Registration, RouteQuery, Strategy, WorkerLoad};
use crank_proto::wire::{CapabilityCount, WorkerStatus};

/// Deadlines one sweep step handles at most, so a sweep that finds a whole
/// fleet expiring holds the registry for a few milliseconds at a time, not for
/// the whole fleet at once. At a million workers an expiring entry costs a few
/// µs (the heap, the table and the record are all cache misses there, and each
/// change is handed to the watch stream and the metrics): `crank bench scale
/// --scale-workers 1000000` against a controller with a 30 s `stale_after`
/// measured the longest step at 13 ms with 4,096 entries and 8 ms with 1,024.
pub const SWEEP_STEP_ENTRIES: usize = 256;

pub use super::now::Now;

/// What one sweep step did.
#[derive(Debug, Default)]
pub struct SweepStep {
    /// Workers marked stale, with their time since the last heartbeat.
    pub newly_stale: Vec<(Rc<str>, Duration)>,
    /// Workers removed, with their URL and time since the last heartbeat.
    pub evicted: Vec<(Rc<str>, Box<str>, Duration)>,
    /// Queued deadlines this step looked at: the measure of its cost.
    pub examined: usize,
    /// Whether deadlines that are already due remain for another step.
    pub more: bool,
    /// Whether this step began a grace period because too much of the fleet
    /// would have gone stale, with that share.
    pub protected: Option<f64>,
}

/// The registry: worker records, the capability index and the deadline queue.
pub struct Registry {
    pub(super) settings: RegistrySettings,
    /// The first clock reading: the one anchor from which every time on the
    /// wire is derived, so a record's times are stable from read to read and
    /// consistent with each other.
    pub(super) anchor: Option<Now>,
    pub(super) liveness: Liveness,
    /// Records are boxed: the table then holds 24-byte entries, and a table of
    /// a million workers (two million slots, half empty right after it grows)
    /// costs 48 MB instead of 300, and grows without copying the records.
    pub(super) workers: HashMap<Rc<str>, Box<WorkerRecord>>,
    pub(super) index: CapabilityIndex,
    pub(super) deadlines: DeadlineQueue,
    pub(super) capability_sets: CapabilitySets,
    /// Identities that registered workers, shared by their records.
    registrants: HashSet<Rc<str>>,
    /// Records marked stale here, or published stale by their owner, so
    /// counting the healthy ones walks nothing.
    pub(super) marked_stale: usize,
    /// Records ejected from routing now (outlier detection), kept as
    /// ejections begin and end: the gauge counts them without a walk, and the
    /// sweep looks only at them to end the ejections of records another
    /// controller judges.
    pub(super) ejected: HashSet<Rc<str>>,
    pub(super) journal: Journal,
    /// The router's second draw; seeded, so a test's choices repeat.
    rng: SmallRng,
}

impl Registry {
    pub fn new(settings: RegistrySettings) -> Self {
        Registry {
            settings,
            anchor: None,
            liveness: Liveness::new(settings.stale_after),
            workers: HashMap::new(),
            index: CapabilityIndex::default(),
            deadlines: DeadlineQueue::default(),
            capability_sets: CapabilitySets::default(),
            registrants: HashSet::new(),
            marked_stale: 0,
            ejected: HashSet::new(),
            journal: Journal::default(),
            rng: SmallRng::seed_from_u64(0x0063_7261_6e6b),
        }
    }

    pub fn settings(&self) -> &RegistrySettings {
        &self.settings
    }

    /// Records changes for [`Registry::take_events`] from now on.
    pub fn record_events(&mut self) {
        self.journal.listen();
    }

    /// The changes made since the last call, oldest first.
    pub fn take_events(&mut self) -> Vec<RegistryEvent> {
        self.journal.take()
    }

    /// Registers `registration`, replacing any record with its id.
    pub fn register(
        &mut self,
        registration: Registration,
        registered_by: &str,
        now: Now,
    ) -> RegisterAck {
        let Registration {
            worker_id,
            worker_url,
            capabilities,
            instance,
            active_check,
        } = registration;
        self.anchor.get_or_insert(now);
        let replaced = self.remove(worker_id.as_str()).is_some();
        let count = capabilities.len();
        let index = &self.index;
        let capabilities = self
            .capability_sets
            .intern(capabilities, |key| index.shared_key(key));
        let id: Rc<str> = Rc::from(worker_id.into_string());
        self.index.insert(&id, &capabilities.keys);
        self.deadlines
            .push(id.clone(), now.mono + self.settings.stale_after);
        let record = WorkerRecord {
            id: id.clone(),
            url: worker_url.into_string().into_boxed_str(),
            capabilities,
            registered_by: self.registrant(registered_by),
            instance: instance.map(|i| i.into_string().into_boxed_str()),
            registered_at: now.mono,
            last_seen: now.mono,
            stale_since: None,
            heartbeated: false,
            active_check,
            draining: false,
            load: None,
            tally: Tally::default(),
            owner: Owner::Local,
        };
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
            record.capabilities.keys.join(", "),
            record.registered_by
        );
        self.journal
            .note(ChangeKind::Registered, Origin::Local, &record, self.anchor);
        self.workers.insert(id, Box::new(record));
        RegisterAck {
            capabilities_registered: count,
            replaced,
            heartbeat_interval: self.settings.advised_heartbeat_interval(),
            stale_after: self.settings.stale_after,
        }
    }

    /// Removes a worker, unless `instance` names a process that another
    /// registration of the id has replaced.
    pub fn deregister(&mut self, worker_id: &str, instance: Option<&str>) -> DeregisterOutcome {
        let Some(record) = self.workers.get(worker_id) else {
            // The id comes from a URL path and is not checked: escape it.
            log::debug!(
                "deregister for unknown worker {}: nothing to do",
                worker_id.escape_debug()
            );
            return DeregisterOutcome::Unknown;
        };
        if !record.is_current(instance) {
            log::info!(
                "kept worker {worker_id}: its old instance {} deregistered, but instance {} registered it since",
                instance.unwrap_or("?"),
                record.instance.as_deref().unwrap_or("(none)")
            );
            return DeregisterOutcome::Superseded;
        }
        if let Some(record) = self.remove(worker_id) {
            log::info!("deregistered worker {worker_id}");
            self.journal.note(
                ChangeKind::Deregistered,
                Origin::Local,
                &record,
                self.anchor,
            );
        }
        DeregisterOutcome::Removed
    }

    /// Marks `worker_id` draining: no route goes to it from now on, and the
    /// change is published (watchers, the cluster store). Draining twice is
    /// one change.
    pub fn drain(
        &mut self,
        worker_id: &str,
        instance: Option<&str>,
        _now: Now,
    ) -> Result<(), RegistryError> {
        let record = self
            .workers
            .get_mut(worker_id)
            .ok_or_else(|| RegistryError::UnknownWorker(worker_id.to_owned()))?;
        if !record.is_current(instance) {
            // A rolling restart: the old process stops, the new one serves.
            return Err(RegistryError::Superseded {
                worker_id: worker_id.to_owned(),
                instance: instance.unwrap_or_default().to_owned(),
            });
        }
        if record.draining {
            return Ok(());
        }
        record.draining = true;
        log::info!("worker {worker_id} is draining: no new routes go to it");
        self.journal
            .note(ChangeKind::Draining, Origin::Local, record, self.anchor);
        Ok(())
    }

    /// Chooses a provider of `query` by its strategy (the configured default
    /// when it names none); see [`router`].
    pub fn route(&mut self, query: &RouteQuery, now: Now) -> Result<RouteChoice, NoRoute> {
        self.route_explained(query, now, false)
    }

    /// [`Registry::route`], and when `explain` is set, the choice also
    /// says why the other providers were passed over (every provider judged:
    /// a traced route's attributes, not worth the scan otherwise).
    pub fn route_explained(
        &mut self,
        query: &RouteQuery,
        now: Now,
        explain: bool,
    ) -> Result<RouteChoice, NoRoute> {
        let key = query.key.as_str();
        let strategy = query.strategy.unwrap_or(self.settings.default_strategy);
        let Some((providers, due)) = self.index.rotation(key) else {
            return Err(NoRoute {
                capability: key.to_owned(),
                rejected: Vec::new(),
                ignored_constraints: Vec::new(),
            });
        };
        let narrowed = router::declared_constraints(query, providers, &self.workers);
        let (query, ignored_constraints) = match &narrowed {
            Some((narrowed, ignored)) => (narrowed, ignored.clone()),
            None => (query, Vec::new()),
        };
        let no_route = |rejected| NoRoute {
            capability: key.to_owned(),
            rejected,
            ignored_constraints: ignored_constraints.clone(),
        };
        let judge = Judge {
            query,
            liveness: &self.liveness,
            now: now.mono,
            load_max_age: self.settings.stale_after / 2,
            by_load: strategy != Strategy::RoundRobin,
        };
        let rejected = match explain {
            true => router::rejections(providers, &self.workers, &judge),
            false => Vec::new(),
        };
        let candidates = providers.len();
        let chosen = router::choose(
            providers,
            due,
            &self.workers,
            &judge,
            strategy,
            &mut self.rng,
        )
        .map_err(no_route)?;
        let slot = chosen.slot;
        let id = chosen.record.id.clone();
        let choice = RouteChoice {
            worker_id: id.to_string(),
            worker_url: chosen.record.url.to_string(),
            capability: key.to_owned(),
            version: chosen.capability.version.to_string(),
            ignored_constraints,
            strategy,
            candidates,
            rejected,
        };
        let service_time = router::service_time(chosen.record, key);
        self.index.advance_past(key, slot);
        if let Some(record) = self.workers.get_mut(&id) {
            record.tally.note_route(now.mono, service_time);
        }
        Ok(choice)
    }

    /// A caller's report of a call to `worker_id`: failures in a row eject it
    /// from routing, a success brings it back.
    pub fn report(&mut self, report: &CallReport, now: Now) -> Result<ReportAck, RegistryError> {
        let worker_id = report.worker_id.as_str();
        let record = self
            .workers
            .get_mut(worker_id)
            .ok_or_else(|| RegistryError::UnknownWorker(worker_id.to_owned()))?;
        let was_ejected = record.tally.is_ejected();
        // A route counts in flight for about the worker's service time; any
        // capability's serves here, as the tally is the worker's.
        let service_time = record
            .capabilities
            .capabilities
            .first()
            .map_or(router::DEFAULT_SERVICE_TIME, |c| {
                router::service_time(record, &c.key)
            });
        record
            .tally
            // A failure's latency says nothing of the provider's speed (a
            // refused connection is fast): only successes feed the estimate.
            .note_call(
                report.latency.filter(|_| report.success),
                report.load,
                now.mono,
                service_time,
            );
        let ejected_for = record.tally.note_outcome(report.success, now.mono);
        if let Some(length) = ejected_for {
            self.ejected.insert(record.id.clone());
            log::warn!(
                "worker {worker_id} ejected from routing for {} s: {} failures reported in a row",
                length.as_secs(),
                router::EJECT_AFTER_FAILURES
            );
        } else if was_ejected && !record.tally.is_ejected() {
            self.ejected.remove(worker_id);
            log::info!("worker {worker_id} reported answering again: routing to it resumes");
        }
        Ok(ReportAck { ejected_for })
    }

    /// Every worker, ordered by id.
    pub fn list(&self, now: Now) -> Vec<WorkerView> {
        let mut workers: Vec<WorkerView> = self
            .workers
            .values()
            .map(|record| self.view(record, now))
            .collect();
        workers.sort_by(|a, b| a.worker_id.cmp(&b.worker_id));
        workers
    }

    /// The full record of one worker.
    pub fn detail(&self, worker_id: &str, now: Now) -> Option<WorkerDetailView> {
        let record = self.workers.get(worker_id)?;
        Some(WorkerDetailView {
            worker: self.view(record, now),
            registered_by: record.registered_by.to_string(),
            owner: match &record.owner {
                Owner::Local => self.journal.controller().map(|c| c.to_string()),
                Owner::Remote { controller, .. } => Some(controller.to_string()),
            },
            load: record.load.as_ref().map(WorkerLoad::to_wire),
            capabilities: record
                .capabilities
                .capabilities
                .iter()
                .map(|c| c.to_wire())
                .collect(),
        })
    }

    /// The wall-clock time of `at`, from the anchor.
    fn wall_of(&self, at: Instant, now: Now) -> DateTime<Utc> {
        self.anchor.unwrap_or(now).wall_of(at)
    }

    fn view(&self, record: &WorkerRecord, now: Now) -> WorkerView {
        WorkerView {
            worker_id: record.id.to_string(),
            worker_url: record.url.to_string(),
            status: self.liveness.status(record, now.mono),
            last_heartbeat: self.wall_of(record.last_seen, now),
            registered_at: self.wall_of(record.registered_at, now),
            since_heartbeat: now.mono.saturating_duration_since(record.last_seen),
            ejected_until: record.tally.ejected_until.map(|at| self.wall_of(at, now)),
            capability_keys: record
                .capabilities
                .keys
                .iter()
                .map(|k| k.to_string())
                .collect(),
        }
    }

    /// Providers per capability, healthy and in all.
    pub fn capabilities(&self, now: Now) -> BTreeMap<String, CapabilityCount> {
        self.index
            .iter()
            .map(|(key, providers)| {
                let healthy_workers = providers
                    .iter()
                    .filter_map(|id| self.workers.get(id))
                    .filter(|record| self.liveness.is_routable(record, now.mono))
                    .count();
                let count = CapabilityCount {
                    workers: providers.len(),
                    healthy_workers,
                };
                (key.to_string(), count)
            })
            .collect()
    }

    /// Counts that cost nothing to read: no walk over the fleet.
    pub fn counts(&self) -> (usize, usize, usize) {
        (
            self.workers.len(),
            self.workers.len() - self.marked_stale,
            self.index.len(),
        )
    }

    /// Registry-wide counters, given the sweep timings the actor keeps.
    pub fn stats(&self, sweeps: u64, last_sweep: Duration, longest: Duration) -> RegistryStats {
        let (workers, healthy_workers, capabilities) = self.counts();
        RegistryStats {
            workers,
            healthy_workers,
            capabilities,
            sweeps,
            last_sweep,
            longest_sweep_step: longest,
        }
    }

    pub(super) fn remove(&mut self, id: &str) -> Option<Box<WorkerRecord>> {
        let record = self.workers.remove(id)?;
        self.index.remove(id, &record.capabilities.keys);
        self.forget(&record);
        Some(record)
    }

    /// Removes many workers at once, with one pass over each affected index list.
    pub(super) fn remove_many(
        &mut self,
        ids: &HashSet<Rc<str>>,
        now: Now,
    ) -> Vec<(Rc<str>, Box<str>, Duration)> {
        let mut keys: HashSet<Rc<str>> = HashSet::new();
        let mut removed = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(record) = self.workers.remove(&**id) {
                keys.extend(record.capabilities.keys.iter().cloned());
                self.forget(&record);
                self.journal
                    .note(ChangeKind::Evicted, Origin::Local, &record, self.anchor);
                let silent = now.mono.saturating_duration_since(record.last_seen);
                removed.push((record.id, record.url, silent));
            }
        }
        self.index.remove_many(ids, &keys);
        removed
    }

    /// Releases what a removed record shared.
    pub(super) fn forget(&mut self, record: &WorkerRecord) {
        if record.counts_as_stale() {
            self.marked_stale -= 1;
        }
        if record.tally.is_ejected() {
            self.ejected.remove(&record.id);
        }
        self.capability_sets.release(&record.capabilities);
    }

    pub(super) fn registrant(&mut self, identity: &str) -> Rc<str> {
        if let Some(shared) = self.registrants.get(identity) {
            return shared.clone();
        }
        let shared: Rc<str> = Rc::from(identity);
        self.registrants.insert(shared.clone());
        shared
    }

    #[cfg(test)]
    pub(crate) fn shared_capability_sets(&self) -> usize {
        self.capability_sets.len()
    }

    #[cfg(test)]
    pub(crate) fn queued_deadlines(&self) -> usize {
        self.deadlines.len()
    }

    /// The gauges a metrics scrape reads, from counts kept as the registry
    /// changes: no walk over the fleet, except to count suspects while a
    /// grace period is in force (rare, and bounded by its length).
    pub fn gauges(&mut self, now: Now) -> FleetGauges {
        let (workers, unmarked, _) = self.counts();
        let suspect = match self.liveness.grace_until(now.mono) {
            Some(_) => self
                .workers
                .values()
                .filter(|r| self.liveness.status(r, now.mono) == WorkerStatus::Suspect)
                .count(),
            None => 0,
        };
        FleetGauges {
            workers,
            healthy: unmarked - suspect,
            suspect,
            stale: self.marked_stale,
            ejected: self.ejected.len(),
            capabilities: self
                .index
                .iter()
                .map(|(key, providers)| (key.to_string(), providers.len()))
                .collect(),
            ..FleetGauges::default()
        }
    }
}
