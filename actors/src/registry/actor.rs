//! [`RegistryActor`]: the actor that owns the [`Registry`]. Nothing else holds or
//! mutates worker state: HTTP handlers and the
//! [`StalenessSweeper`] only send it messages,
//! so there are no locks and every change is ordered. Each handler reads the
//! clock once and delegates to the core.

use std::collections::BTreeMap;
use std::time::Duration;

use actix::prelude::*;

use super::core::{Now, Registry, SweepStep, SWEEP_STEP_ENTRIES};
use super::messages::*;
use super::store::{ChangeSink, MemoryOnly};
use super::RegistrySettings;
use crate::sweeper::StalenessSweeper;
use crate::wire::CapabilityCount;

/// Lines of one sweep step logged one by one; the rest are summed up in one
/// line, so a fleet going stale together does not flood the log.
const WORKERS_LOGGED_ONE_BY_ONE: usize = 100;

/// Continue a sweep that had more due deadlines than one step handles.
#[derive(Message)]
#[rtype(result = "()")]
struct ContinueSweep;

/// The actor that owns the registry.
pub struct RegistryActor {
    registry: Registry,
    sink: Box<dyn ChangeSink>,
    sweeps: u64,
    /// Registry time of the sweep in progress, all its steps so far.
    sweep_so_far: Duration,
    last_sweep: Duration,
    longest_sweep_step: Duration,
}

impl RegistryActor {
    /// A registry kept in memory only (the embedded default).
    pub fn new(settings: RegistrySettings) -> Self {
        Self::with_sink(settings, Box::new(MemoryOnly))
    }

    /// A registry whose changes also go to `sink`.
    pub fn with_sink(settings: RegistrySettings, sink: Box<dyn ChangeSink>) -> Self {
        RegistryActor {
            registry: Registry::new(settings),
            sink,
            sweeps: 0,
            sweep_so_far: Duration::ZERO,
            last_sweep: Duration::ZERO,
            longest_sweep_step: Duration::ZERO,
        }
    }

    /// Starts a registry and its [`StalenessSweeper`] on the current thread's
    /// actix system.
    pub fn start_with_sweeper(
        settings: RegistrySettings,
        sweep_interval: Duration,
    ) -> Addr<RegistryActor> {
        let registry = RegistryActor::new(settings).start();
        StalenessSweeper::new(registry.clone(), sweep_interval).start();
        registry
    }

    /// Hands the changes of the last message to the sink.
    fn publish(&mut self) {
        let events = self.registry.take_events();
        if !events.is_empty() {
            self.sink.publish(events);
        }
    }

    /// Runs one sweep step, logs it, and schedules the next if one is due.
    fn sweep_step(&mut self, ctx: &mut Context<Self>) -> SweepStep {
        // Wall time, not the (possibly paused) tokio clock: this is a cost.
        let started = std::time::Instant::now();
        let step = self.registry.sweep_step(Now::read(), SWEEP_STEP_ENTRIES);
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
        }
        step
    }

    fn log_step(&self, step: &SweepStep) {
        let settings = self.registry.settings();
        for (id, silent) in step.newly_stale.iter().take(WORKERS_LOGGED_ONE_BY_ONE) {
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
        if step.newly_stale.len() > WORKERS_LOGGED_ONE_BY_ONE {
            log::warn!(
                "{} more workers are stale (no heartbeat for {} s); they are no longer routed to until they heartbeat",
                step.newly_stale.len() - WORKERS_LOGGED_ONE_BY_ONE,
                settings.stale_after.as_secs()
            );
        }
        for (id, url, silent) in step.evicted.iter().take(WORKERS_LOGGED_ONE_BY_ONE) {
            log::warn!(
                "evicted worker {id} ({url}): no heartbeat for {:.0} s; it must register again",
                silent.as_secs_f64()
            );
        }
        if step.evicted.len() > WORKERS_LOGGED_ONE_BY_ONE {
            log::warn!(
                "evicted {} more workers in this sweep (no heartbeat for over {} s); they must register again",
                step.evicted.len() - WORKERS_LOGGED_ONE_BY_ONE,
                (settings.stale_after + settings.evict_after.unwrap_or_default()).as_secs()
            );
        }
    }
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
        let ack = self
            .registry
            .register(msg.registration, &msg.registered_by, Now::read());
        self.publish();
        MessageResult(ack)
    }
}

impl Handler<Heartbeat> for RegistryActor {
    type Result = Result<HeartbeatAck, RegistryError>;

    fn handle(&mut self, msg: Heartbeat, _: &mut Self::Context) -> Self::Result {
        let instance = msg.instance.as_ref().map(|i| i.as_str());
        let ack = self
            .registry
            .heartbeat(msg.worker_id.as_str(), instance, msg.load, Now::read());
        self.publish();
        ack
    }
}

impl Handler<Deregister> for RegistryActor {
    type Result = MessageResult<Deregister>;

    fn handle(&mut self, msg: Deregister, _: &mut Self::Context) -> Self::Result {
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
        MessageResult(self.registry.list(Now::read()))
    }
}

impl Handler<GetWorker> for RegistryActor {
    type Result = Option<WorkerDetailView>;

    fn handle(&mut self, msg: GetWorker, _: &mut Self::Context) -> Self::Result {
        self.registry.detail(&msg.worker_id, Now::read())
    }
}

impl Handler<ListCapabilities> for RegistryActor {
    type Result = MessageResult<ListCapabilities>;

    fn handle(&mut self, _: ListCapabilities, _: &mut Self::Context) -> Self::Result {
        let counts: BTreeMap<String, CapabilityCount> = self.registry.capabilities(Now::read());
        MessageResult(counts)
    }
}

impl Handler<Route> for RegistryActor {
    type Result = Option<RouteChoice>;

    fn handle(&mut self, msg: Route, _: &mut Self::Context) -> Self::Result {
        self.registry.route(&msg.query, Now::read())
    }
}

impl Handler<Sweep> for RegistryActor {
    type Result = MessageResult<Sweep>;

    fn handle(&mut self, _: Sweep, ctx: &mut Self::Context) -> Self::Result {
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
        self.sweep_step(ctx);
    }
}

impl Handler<GetStats> for RegistryActor {
    type Result = MessageResult<GetStats>;

    fn handle(&mut self, _: GetStats, _: &mut Self::Context) -> Self::Result {
        MessageResult(
            self.registry
                .stats(self.sweeps, self.last_sweep, self.longest_sweep_step),
        )
    }
}
