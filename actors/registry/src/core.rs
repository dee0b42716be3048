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
use super::liveness::{GraceReason, Liveness};
use super::messages::{
    DeregisterOutcome, HeartbeatAck, RegisterAck, RegistryError, RegistryStats, ReportAck,
    RouteChoice, WorkerDetailView, WorkerView,
};
use super::observe::FleetGauges;
use super::record::Owner;
use super::record::{CapabilitySets, WorkerRecord};
use super::router::{self, Judge, NoRoute, Tally};
use super::store::{ChangeKind, Origin, RegistryEvent};
use super::{RegistrySettings, MIN_PROTECTED_FLEET};
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

/// The clock, read once per message: monotonic time judges liveness, wall time
/// is for people.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    pub mono: Instant,
    pub wall: DateTime<Utc>,
}

impl Now {
    pub fn read() -> Self {
        Now {
            mono: Instant::now(),
            wall: Utc::now(),
        }
    }

    /// The wall-clock time of the monotonic instant `at`, taking this reading
    /// as the anchor between the two clocks.
    pub fn wall_of(&self, at: Instant) -> DateTime<Utc> {
        let delta = |d: Duration| chrono::Duration::from_std(d).unwrap_or(chrono::TimeDelta::MAX);
        if at >= self.mono {
            self.wall + delta(at - self.mono)
        } else {
            self.wall - delta(self.mono - at)
        }
    }
}

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

    /// Records a heartbeat; a stale worker becomes healthy again.
    pub fn heartbeat(
        &mut self,
        worker_id: &str,
        instance: Option<&str>,
        load: Option<WorkerLoad>,
        now: Now,
    ) -> Result<HeartbeatAck, RegistryError> {
        let ack = self.note_alive(worker_id, instance, load, now)?;
        if let Some(record) = self.workers.get_mut(worker_id) {
            record.heartbeated = true;
        }
        Ok(ack)
    }

    /// The records this controller should check itself (`GET /health`), with
    /// their URLs: those that asked for it, and with `silent` those that have
    /// sent no heartbeat one advised interval after registering (the original
    /// system's workers never do). Only records judged here.
    pub fn due_checks(&self, silent: bool, now: Now) -> Vec<(String, String)> {
        let interval = self.settings.advised_heartbeat_interval();
        self.workers
            .values()
            .filter(|r| r.owner == Owner::Local)
            .filter(|r| {
                r.active_check
                    || (silent
                        && !r.heartbeated
                        && now.mono.saturating_duration_since(r.registered_at) >= interval)
            })
            .map(|r| (r.id.to_string(), r.url.to_string()))
            .collect()
    }

    /// A check of `worker_id` at `url` answered: it counts as a heartbeat
    /// without a load, unless the record changed its URL meanwhile.
    pub fn check_passed(&mut self, worker_id: &str, url: &str, now: Now) -> bool {
        if self
            .workers
            .get(worker_id)
            .is_none_or(|record| &*record.url != url)
        {
            return false;
        }
        self.note_alive(worker_id, None, None, now).is_ok()
    }

    /// A sign of life of `worker_id`: a heartbeat, or a passed check.
    fn note_alive(
        &mut self,
        worker_id: &str,
        instance: Option<&str>,
        load: Option<WorkerLoad>,
        now: Now,
    ) -> Result<HeartbeatAck, RegistryError> {
        let record = self
            .workers
            .get_mut(worker_id)
            .ok_or_else(|| RegistryError::UnknownWorker(worker_id.to_owned()))?;
        if !record.is_current(instance) {
            log::info!(
                "heartbeat of worker {worker_id} from instance {} refused: instance {} registered it since",
                instance.unwrap_or("?"),
                record.instance.as_deref().unwrap_or("(none)")
            );
            return Err(RegistryError::Superseded {
                worker_id: worker_id.to_owned(),
                instance: instance.unwrap_or_default().to_owned(),
            });
        }
        let was = self.liveness.status(record, now.mono);
        let was_stale = was == WorkerStatus::Stale;
        let adopted = matches!(record.owner, Owner::Remote { .. });
        if let Owner::Remote { controller, .. } = &record.owner {
            // It beats here now: this controller judges it from here on.
            log::info!(
                "worker {worker_id} now heartbeats here (it was owned by controller {controller}); this controller judges it from now on"
            );
        }
        // Queued again where no entry of its own is left: one another
        // controller judged (this one dropped its entry), or one marked stale
        // with no eviction to wait for (marking dropped it; without this it
        // would never be judged again: found by the simulation, seed 3).
        let unqueued = matches!(record.owner, Owner::Remote { .. })
            || (record.stale_since.is_some() && self.settings.evict_after.is_none());
        if unqueued {
            self.deadlines
                .push(record.id.clone(), now.mono + self.settings.stale_after);
        }
        if record.counts_as_stale() {
            self.marked_stale -= 1;
        }
        record.owner = Owner::Local;
        record.stale_since = None;
        record.last_seen = now.mono;
        let with_load = load.is_some();
        if with_load {
            record.load = load;
        }
        if record.tally.note_heartbeat(now.mono, with_load) {
            self.ejected.remove(worker_id);
            log::info!(
                "worker {worker_id} heartbeats after its ejection ended: routing to it resumes"
            );
        }
        if was_stale {
            log::info!(
                "worker {worker_id} is healthy again: heartbeat received; routing to it resumes"
            );
            self.journal
                .note(ChangeKind::Healthy, Origin::Local, record, self.anchor);
        }
        if adopted && !was_stale {
            self.journal
                .note(ChangeKind::Owned, Origin::Local, record, self.anchor);
        }
        Ok(HeartbeatAck {
            revived: was != WorkerStatus::Healthy,
        })
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

    /// Chooses a provider of `query` by its strategy (the configured default
    /// when it names none); see [`router`].
    pub fn route(&mut self, query: &RouteQuery, now: Now) -> Result<RouteChoice, NoRoute> {
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

    /// One sweep step: handles at most `budget` due deadlines, marking workers
    /// stale at `stale_after` and evicting them `evict_after` later. A worker
    /// that heartbeated since it was queued goes back in the queue at its true
    /// deadline.
    pub fn sweep_step(&mut self, now: Now, budget: usize) -> SweepStep {
        let RegistrySettings {
            stale_after,
            evict_after,
            protect_threshold,
            ..
        } = self.settings;
        let mut step = SweepStep::default();
        self.end_remote_ejections(now);
        let mut evicted: HashSet<Rc<str>> = HashSet::new();
        let mut due = Vec::new();
        while due.len() < budget {
            let Some(queued) = self.deadlines.pop_due(now.mono) else {
                break;
            };
            step.examined += 1;
            // Dropped if the worker is gone or registered again since (its new
            // record has its own entry).
            // Also dropped if another controller judges it now.
            if let Some(record) = self.workers.get(&queued) {
                if Rc::ptr_eq(&record.id, &queued) && record.owner == Owner::Local {
                    due.push(queued);
                }
            }
        }
        let mut grace_until = self.liveness.grace_until(now.mono);
        if grace_until.is_none() && self.liveness.may_protect(now.mono) {
            let fleet = self.workers.len();
            let going_stale = due
                .iter()
                .filter_map(|id| self.workers.get(id))
                .filter(|r| r.stale_since.is_none() && self.liveness.is_silent(r, now.mono))
                .count();
            let share = (self.marked_stale + going_stale) as f64 / fleet.max(1) as f64;
            if fleet >= MIN_PROTECTED_FLEET && going_stale > 0 && share > protect_threshold {
                grace_until = Some(self.liveness.begin_grace(now.mono));
                step.protected = Some(share);
            }
        }
        for queued in due {
            let Some(record) = self.workers.get_mut(&queued) else {
                continue;
            };
            let silent = now.mono.saturating_duration_since(record.last_seen);
            if record.stale_since.is_none() && silent >= stale_after {
                if let Some(until) = grace_until {
                    // Silent since before the grace period began: suspect, not
                    // stale, until it ends.
                    if self.liveness.status(record, now.mono) == WorkerStatus::Suspect {
                        self.deadlines.push(queued, until);
                        continue;
                    }
                }
            }
            match record.stale_since {
                None if silent >= stale_after => {
                    record.stale_since = Some(now.mono);
                    self.marked_stale += 1;
                    step.newly_stale.push((queued.clone(), silent));
                    self.journal
                        .note(ChangeKind::Stale, Origin::Local, record, self.anchor);
                    if let Some(evict_after) = evict_after {
                        self.deadlines.push(queued, now.mono + evict_after);
                    }
                }
                None => self.deadlines.push(queued, record.last_seen + stale_after),
                Some(since) => match evict_after {
                    Some(evict_after) if now.mono.duration_since(since) >= evict_after => {
                        evicted.insert(queued);
                    }
                    Some(evict_after) => self.deadlines.push(queued, since + evict_after),
                    None => {}
                },
            }
        }
        step.more = self.deadlines.has_due(now.mono);
        if let Some(share) = step.protected {
            self.log_grace(GraceReason::MassExpiry { share });
        }
        if !evicted.is_empty() {
            step.evicted = self.remove_many(&evicted, now);
        }
        step
    }

    /// Ends the ejections, their interval over, of records another
    /// controller owns: their heartbeats go to their owner, so here the
    /// owner still publishing them live is the evidence a heartbeat gives.
    fn end_remote_ejections(&mut self, now: Now) {
        let over: Vec<Rc<str>> = self
            .ejected
            .iter()
            .filter(|id| {
                self.workers.get(*id).is_some_and(|record| {
                    matches!(record.owner, Owner::Remote { .. })
                        && record
                            .tally
                            .ejected_until
                            .is_some_and(|until| until <= now.mono)
                })
            })
            .cloned()
            .collect();
        for id in over {
            if let Some(record) = self.workers.get_mut(&id) {
                record.tally.end_ejection();
                log::info!("worker {id}'s ejection is over and its owner still publishes it live: routing to it resumes");
            }
            self.ejected.remove(&id);
        }
    }

    /// Begins a grace period at `now` for `reason`: every worker silent since
    /// before it is suspect, not stale, until it ends. Returns its end.
    pub fn begin_grace(&mut self, now: Now, reason: GraceReason) -> Instant {
        let until = self.liveness.begin_grace(now.mono);
        self.log_grace(reason);
        until
    }

    /// One line for the operator: why the registry holds back, and how long.
    fn log_grace(&self, reason: GraceReason) {
        let grace = self.liveness.grace_period();
        match reason {
            GraceReason::Paused { unseen_for } => log::warn!(
                "the controller was not running for {:.1} s (no sweep since); workers get {:.1} s to heartbeat before any is judged stale, and are routed to as suspect meanwhile",
                unseen_for.as_secs_f64(),
                grace.as_secs_f64()
            ),
            GraceReason::MassExpiry { share } => log::warn!(
                "{:.0} % of the fleet would be stale at once, more than the {:.0} % protect threshold; holding back for {:.1} s: silent workers are routed to as suspect until they heartbeat or the grace period ends",
                share * 100.0,
                self.settings.protect_threshold * 100.0,
                grace.as_secs_f64()
            ),
        }
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
    fn remove_many(
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
