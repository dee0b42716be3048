//! [`RegistryActor`]: the actor that owns the [`Registry`]. Nothing else holds or
//! mutates worker state: HTTP handlers and the
//! [`StalenessSweeper`](crate::sweeper::StalenessSweeper) only send it messages,
//! so there are no locks and every change is ordered. Each handler reads the
//! clock once and delegates to the core.

use crank_supervision as supervision;
use std::collections::BTreeMap;
use std::time::Duration;

use actix::clock::Instant;
use actix::prelude::*;

use super::core::{Now, Registry, SweepStep, SWEEP_STEP_ENTRIES};
use super::liveness::GraceReason;
use super::messages::*;
use super::observe::{FleetGauges, FleetSnapshot, GetGauges, Snapshot};
use super::router::NoRoute;
use super::store::ChangeSink;
use super::RegistrySettings;
use crank_proto::wire::CapabilityCount;

/// Workers of one sweep named one by one in the log; the rest are summed up
/// in one line when the sweep ends.
const WORKERS_LOGGED_ONE_BY_ONE: usize = 10;

/// Continue a sweep that had more due deadlines than one step handles.
#[derive(Message)]
#[rtype(result = "()")]
struct ContinueSweep;

/// The actor that owns the registry.
pub struct RegistryActor {
    registry: Registry,
    sinks: Vec<Box<dyn ChangeSink>>,
    sweeps: u64,
    /// Registry time of the sweep in progress, all its steps so far.
    sweep_so_far: Duration,
    last_sweep: Duration,
    longest_sweep_step: Duration,
    /// How often sweeps are due, when a sweeper drives this registry.
    sweep_interval: Option<Duration>,
    /// When the last sweep arrived: a long silence means this controller
    /// was not running (paused, stalled), not that its workers died.
    last_sweep_heard: Option<Instant>,
    sweep_log: SweepLog,
    /// Changes handed to the sinks so far: the id of the last one.
    published: u64,
    /// Told how long each complete sweep took (a metrics histogram).
    sweep_observer: Option<Box<dyn FnMut(Duration)>>,
}

/// No sweep for this long, when one is due every `interval`, means the
/// controller itself was not running: two missed sweeps and a second of slack
/// for a busy machine.
fn pause_threshold(interval: Duration) -> Duration {
    interval * 2 + Duration::from_secs(1)
}

impl RegistryActor {
    /// A registry kept in memory only (the embedded default).
    pub fn new(settings: RegistrySettings) -> Self {
        RegistryActor {
            registry: Registry::new(settings),
            sinks: Vec::new(),
            sweeps: 0,
            sweep_so_far: Duration::ZERO,
            last_sweep: Duration::ZERO,
            longest_sweep_step: Duration::ZERO,
            sweep_interval: None,
            last_sweep_heard: None,
            sweep_log: SweepLog::default(),
            published: 0,
            sweep_observer: None,
        }
    }

    /// Also tells `observer` how long each complete sweep took, all its steps
    /// together, on the registry's thread (it must not block).
    pub fn with_sweep_observer(mut self, observer: Box<dyn FnMut(Duration)>) -> Self {
        self.sweep_observer = Some(observer);
        self
    }

    /// Also hands every change to `sink`, after the sinks added before it.
    pub fn with_sink(mut self, sink: Box<dyn ChangeSink>) -> Self {
        self.registry.record_events();
        self.sinks.push(sink);
        self
    }

    /// Cluster mode: this controller is `controller_id`, and its local changes
    /// carry the record for the store.
    pub fn replicating_as(mut self, controller_id: &str) -> Self {
        self.registry.replicate_as(controller_id);
        self
    }

    /// Expects a sweep every `interval`, and treats a much longer silence as a
    /// pause of this controller (see [`liveness`](super::liveness)).
    pub fn expecting_sweeps_every(mut self, interval: Duration) -> Self {
        self.sweep_interval = Some(interval);
        self
    }

    /// Reads the clock, and begins a grace period if sweeps stopped arriving
    /// for far longer than their interval: this controller was not running.
    fn now(&mut self) -> Now {
        let now = Now::read();
        if let (Some(interval), Some(last)) = (self.sweep_interval, self.last_sweep_heard) {
            let unseen_for = now.mono.saturating_duration_since(last);
            if unseen_for > pause_threshold(interval) {
                // Once per pause: the next sweep is due from here.
                self.last_sweep_heard = Some(now.mono);
                self.registry
                    .begin_grace(now, GraceReason::Paused { unseen_for });
            }
        }
        now
    }

    /// Hands the changes of the last message to the sinks.
    fn publish(&mut self) {
        if self.sinks.is_empty() {
            return;
        }
        let events = self.registry.take_events();
        self.published += events.len() as u64;
        if !events.is_empty() {
            for sink in &mut self.sinks {
                sink.publish(&events);
            }
        }
    }

    /// Runs one sweep step, logs it, and schedules the next if one is due.
    fn sweep_step(&mut self, ctx: &mut Context<Self>) -> SweepStep {
        // Wall time, not the (possibly paused) tokio clock: this is a cost.
        let started = std::time::Instant::now();
        let now = self.now();
        self.last_sweep_heard = Some(now.mono);
        let step = self.registry.sweep_step(now, SWEEP_STEP_ENTRIES);
        self.log_step(&step);
        self.publish();
        let spent = started.elapsed();
        self.sweep_so_far += spent;
        self.longest_sweep_step = self.longest_sweep_step.max(spent);
        if step.more {
            ctx.notify(ContinueSweep);
        } else {
            self.sweeps += 1;
            self.last_sweep = std::mem::take(&mut self.sweep_so_far);
            if let Some(observe) = &mut self.sweep_observer {
                observe(self.last_sweep);
            }
        }
        step
    }

    fn log_step(&mut self, step: &SweepStep) {
        let settings = *self.registry.settings();
        for (id, silent) in &step.newly_stale {
            if !self.sweep_log.may_name_stale() {
                continue;
            }
            match settings.evict_after {
                Some(evict_after) => log::warn!(
                    "worker {id} is stale: no heartbeat for {:.1} s; it is no longer routed to and will be evicted in {} s unless it heartbeats",
                    silent.as_secs_f64(),
                    evict_after.as_secs()
                ),
                None => log::warn!(
                    "worker {id} is stale: no heartbeat for {:.1} s; it is no longer routed to until it heartbeats",
                    silent.as_secs_f64()
                ),
            }
        }
        for (id, url, silent) in &step.evicted {
            if self.sweep_log.may_name_evicted() {
                log::warn!(
                    "evicted worker {id} ({url}): no heartbeat for {:.0} s; it must register again",
                    silent.as_secs_f64()
                );
            }
        }
        if step.more {
            return;
        }
        // The sweep is over: what was not named gets one line each.
        let (stale, evicted) = self.sweep_log.finish();
        if stale > 0 {
            log::warn!(
                "{stale} more workers went stale in this sweep (no heartbeat for {} s); they are no longer routed to until they heartbeat",
                settings.stale_after.as_secs()
            );
        }
        if evicted > 0 {
            log::warn!(
                "evicted {evicted} more workers in this sweep (no heartbeat for over {} s); they must register again",
                (settings.stale_after + settings.evict_after.unwrap_or_default()).as_secs()
            );
        }
    }
}

/// How much of one sweep (all its steps) was named in the log: the first few
/// workers by name, the rest in one line when the sweep ends, so a fleet
/// going stale together is a few lines, not one per worker.
#[derive(Debug, Default)]
struct SweepLog {
    stale_named: usize,
    stale_more: usize,
    evicted_named: usize,
    evicted_more: usize,
}

impl SweepLog {
    fn may_name_stale(&mut self) -> bool {
        if self.stale_named < WORKERS_LOGGED_ONE_BY_ONE {
            self.stale_named += 1;
            true
        } else {
            self.stale_more += 1;
            false
        }
    }

    fn may_name_evicted(&mut self) -> bool {
        if self.evicted_named < WORKERS_LOGGED_ONE_BY_ONE {
            self.evicted_named += 1;
            true
        } else {
            self.evicted_more += 1;
            false
        }
    }

    /// The workers not named, stale and evicted; starts the next sweep's count.
    fn finish(&mut self) -> (usize, usize) {
        let unnamed = (self.stale_more, self.evicted_more);
        *self = SweepLog::default();
        unnamed
    }
}

impl Actor for RegistryActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Registrations arrive in bursts after a controller restart; a larger
        // mailbox keeps senders from being back-pressured by the default of 16.
        ctx.set_mailbox_capacity(4096);
        // Sweeps are expected from now on: a pause before the first one is a
        // pause too (a controller stopped 90 ms after it started, before its
        // first sweep, was seen to judge its whole fleet instead).
        if self.sweep_interval.is_some() {
            self.last_sweep_heard = Some(Now::read().mono);
        }
    }
}

impl Handler<Ping> for RegistryActor {
    type Result = ();

    fn handle(&mut self, _: Ping, _: &mut Self::Context) {
        let _handling = supervision::handling("registry", "Ping");
    }
}

impl Handler<DueChecks> for RegistryActor {
    type Result = MessageResult<DueChecks>;

    fn handle(&mut self, msg: DueChecks, _: &mut Self::Context) -> Self::Result {
        let _handling = supervision::handling("registry", "DueChecks");
        let now = self.now();
        MessageResult(self.registry.due_checks(msg.silent, now))
    }
}

impl Handler<CheckPassed> for RegistryActor {
    type Result = bool;

    fn handle(&mut self, msg: CheckPassed, _: &mut Self::Context) -> bool {
        let _handling = supervision::handling("registry", "CheckPassed");
        let now = self.now();
        let passed = self.registry.check_passed(&msg.worker_id, &msg.url, now);
        self.publish();
        passed
    }
}

impl Handler<Register> for RegistryActor {
    type Result = MessageResult<Register>;

    fn handle(&mut self, msg: Register, _: &mut Self::Context) -> Self::Result {
        let _handling = supervision::handling("registry", "Register");
        let now = self.now();
        let ack = self
            .registry
            .register(msg.registration, &msg.registered_by, now);
        self.publish();
        MessageResult(ack)
    }
}

impl Handler<Heartbeat> for RegistryActor {
    type Result = Result<HeartbeatAck, RegistryError>;

    fn handle(&mut self, msg: Heartbeat, _: &mut Self::Context) -> Self::Result {
        let _handling = supervision::handling("registry", "Heartbeat");
        let now = self.now();
        let instance = msg.instance.as_ref().map(|i| i.as_str());
        let ack = self
            .registry
            .heartbeat(msg.worker_id.as_str(), instance, msg.load, now);
        self.publish();
        ack
    }
}

impl Handler<Deregister> for RegistryActor {
    type Result = MessageResult<Deregister>;

    fn handle(&mut self, msg: Deregister, _: &mut Self::Context) -> Self::Result {
        let _handling = supervision::handling("registry", "Deregister");
        let outcome = self
            .registry
            .deregister(&msg.worker_id, msg.instance.as_deref());
        self.publish();
        MessageResult(outcome)
    }
}

impl Handler<ListWorkers> for RegistryActor {
    type Result = MessageResult<ListWorkers>;

    fn handle(&mut self, _: ListWorkers, _: &mut Self::Context) -> Self::Result {
        let _handling = supervision::handling("registry", "ListWorkers");
        let now = self.now();
        MessageResult(self.registry.list(now))
    }
}

impl Handler<GetWorker> for RegistryActor {
    type Result = Option<WorkerDetailView>;

    fn handle(&mut self, msg: GetWorker, _: &mut Self::Context) -> Self::Result {
        let _handling = supervision::handling("registry", "GetWorker");
        let now = self.now();
        self.registry.detail(&msg.worker_id, now)
    }
}

impl Handler<ListCapabilities> for RegistryActor {
    type Result = MessageResult<ListCapabilities>;

    fn handle(&mut self, _: ListCapabilities, _: &mut Self::Context) -> Self::Result {
        let _handling = supervision::handling("registry", "ListCapabilities");
        let now = self.now();
        let counts: BTreeMap<String, CapabilityCount> = self.registry.capabilities(now);
        MessageResult(counts)
    }
}

impl Handler<Route> for RegistryActor {
    type Result = Result<RouteChoice, NoRoute>;

    fn handle(&mut self, msg: Route, _: &mut Self::Context) -> Self::Result {
        let _handling = supervision::handling("registry", "Route");
        let now = self.now();
        self.registry.route_explained(&msg.query, now, msg.explain)
    }
}

impl Handler<Drain> for RegistryActor {
    type Result = Result<(), RegistryError>;

    fn handle(&mut self, msg: Drain, _: &mut Self::Context) -> Self::Result {
        let _handling = supervision::handling("registry", "Drain");
        let now = self.now();
        let drained = self
            .registry
            .drain(&msg.worker_id, msg.instance.as_deref(), now);
        self.publish();
        drained
    }
}

impl Handler<Report> for RegistryActor {
    type Result = Result<ReportAck, RegistryError>;

    fn handle(&mut self, msg: Report, _: &mut Self::Context) -> Self::Result {
        let _handling = supervision::handling("registry", "Report");
        let now = self.now();
        self.registry.report(&msg.report, now)
    }
}

impl Handler<Sweep> for RegistryActor {
    type Result = MessageResult<Sweep>;

    fn handle(&mut self, _: Sweep, ctx: &mut Self::Context) -> Self::Result {
        let _handling = supervision::handling("registry", "Sweep");
        let step = self.sweep_step(ctx);
        MessageResult(SweepReport {
            newly_stale: step
                .newly_stale
                .iter()
                .map(|(id, _)| id.to_string())
                .collect(),
            evicted: step.evicted.iter().map(|(id, ..)| id.to_string()).collect(),
        })
    }
}

impl Handler<ContinueSweep> for RegistryActor {
    type Result = ();

    fn handle(&mut self, _: ContinueSweep, ctx: &mut Self::Context) {
        let _handling = supervision::handling("registry", "ContinueSweep");
        self.sweep_step(ctx);
    }
}

impl Handler<ApplyReplica> for RegistryActor {
    type Result = ();

    fn handle(&mut self, msg: ApplyReplica, _: &mut Self::Context) {
        let _handling = supervision::handling("registry", "ApplyReplica");
        let now = self.now();
        let worker_id = msg.0.worker_id.clone();
        if let Err(problem) = self.registry.apply_replica(msg.0, now) {
            log::warn!("ignored the stored record of worker {worker_id}: {problem}");
        }
        self.publish();
    }
}

impl Handler<RemoveReplica> for RegistryActor {
    type Result = ();

    fn handle(&mut self, msg: RemoveReplica, _: &mut Self::Context) {
        let _handling = supervision::handling("registry", "RemoveReplica");
        self.registry.apply_removal(&msg.0);
        self.publish();
    }
}

impl Handler<LoadReplicas> for RegistryActor {
    type Result = ();

    fn handle(&mut self, msg: LoadReplicas, _: &mut Self::Context) {
        let _handling = supervision::handling("registry", "LoadReplicas");
        let now = self.now();
        self.registry.load_replicas(msg.0, now);
        self.publish();
    }
}

impl Handler<AdoptOrphans> for RegistryActor {
    type Result = usize;

    fn handle(&mut self, msg: AdoptOrphans, _: &mut Self::Context) -> usize {
        let _handling = supervision::handling("registry", "AdoptOrphans");
        let now = self.now();
        let last_seen = now.mono.checked_sub(msg.silent_for).unwrap_or(now.mono);
        let adopted = self.registry.adopt_orphans(&msg.live, last_seen);
        self.publish();
        adopted
    }
}

impl Handler<OwnedReplicas> for RegistryActor {
    type Result = MessageResult<OwnedReplicas>;

    fn handle(&mut self, _: OwnedReplicas, _: &mut Self::Context) -> Self::Result {
        let _handling = supervision::handling("registry", "OwnedReplicas");
        MessageResult(self.registry.owned_replicas())
    }
}

impl Handler<GetStats> for RegistryActor {
    type Result = MessageResult<GetStats>;

    fn handle(&mut self, _: GetStats, _: &mut Self::Context) -> Self::Result {
        let _handling = supervision::handling("registry", "GetStats");
        MessageResult(
            self.registry
                .stats(self.sweeps, self.last_sweep, self.longest_sweep_step),
        )
    }
}

impl Handler<Snapshot> for RegistryActor {
    type Result = MessageResult<Snapshot>;

    fn handle(&mut self, _: Snapshot, _: &mut Self::Context) -> Self::Result {
        let _handling = supervision::handling("registry", "Snapshot");
        let now = self.now();
        MessageResult(FleetSnapshot {
            workers: self.registry.list(now),
            last_event_id: self.published,
        })
    }
}

impl Handler<GetGauges> for RegistryActor {
    type Result = MessageResult<GetGauges>;

    fn handle(&mut self, _: GetGauges, _: &mut Self::Context) -> Self::Result {
        let _handling = supervision::handling("registry", "GetGauges");
        let started = std::time::Instant::now();
        let now = self.now();
        let gauges = self.registry.gauges(now);
        MessageResult(FleetGauges {
            sweeps: self.sweeps,
            longest_sweep_step: self.longest_sweep_step,
            held_for: started.elapsed(),
            ..gauges
        })
    }
}
