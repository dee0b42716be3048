//! `HeartbeatActor` keeps a registered worker alive in its controller's eyes: it
//! sends a heartbeat every `heartbeat_interval` (±10 % jitter, so a fleet started
//! together does not beat in lockstep). No wait is ever longer than the interval
//! the controller advised at registration, jitter included, so a worker can never
//! fall stale just by being configured for a slower controller.
//!
//! A failed heartbeat is logged and the loop goes on; the controller will mark the
//! worker stale if failures last. A `404 unknown_worker` means the controller
//! restarted or evicted us: beating stops and the `RegistrationActor` is asked to
//! register again, which restarts the beat.
//!
//! The loop is a chain of `run_later` rather than one `run_interval`: each wait is
//! drawn anew for the jitter, and the next beat is scheduled only once the previous
//! one was answered, so a slow controller never receives overlapping heartbeats.

use crate::backoff::scaled;
use crank_supervision as supervision;
use std::rc::Rc;
use std::time::Duration;

use actix::prelude::*;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::link::{ControllerLink, LinkError};
use crank_proto::wire::{HeartbeatRequest, Load};

/// Default time between heartbeats.
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(30);
/// Each interval is drawn from `interval * (1 ± HEARTBEAT_JITTER)`.
pub const HEARTBEAT_JITTER: f64 = 0.1;
/// The shortest interval a worker beats at, whatever a controller advises: a
/// misconfigured controller must not make its fleet flood it.
pub const MIN_HEARTBEAT_INTERVAL: Duration = Duration::from_millis(100);

/// Start (or restart) beating; sent by the `RegistrationActor` after each successful
/// registration with the interval the controller advised.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct StartBeating {
    pub advised_interval: Option<Duration>,
}

/// Stop beating until the next `StartBeating`.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct StopBeating;

/// The controller answered a heartbeat with `unknown_worker`: it no longer
/// knows this worker. Sent to whoever registers it (the
/// [`RegistrationActor`](crate::registration::RegistrationActor)), which
/// registers again.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct ControllerForgotWorker;

/// The controller answered a heartbeat with `superseded`: another process
/// registered this worker id since. Beating has stopped for good; sent to
/// whoever registers it, which must not register again.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct InstanceSuperseded;

/// Where the heartbeat loop reports what the controller said of the worker.
pub struct BeatListeners {
    pub forgot: Recipient<ControllerForgotWorker>,
    pub superseded: Recipient<InstanceSuperseded>,
}

/// Reports the worker's current load, sent with each heartbeat.
pub type LoadProbe = Box<dyn Fn() -> Load>;

/// The heartbeat loop of one worker.
pub struct HeartbeatActor {
    link: Rc<dyn ControllerLink>,
    worker_id: String,
    instance: Option<String>,
    configured_interval: Duration,
    interval: Duration,
    /// The controller's advice: no wait may exceed it, jitter included.
    advised_ceiling: Option<Duration>,
    listeners: BeatListeners,
    load_probe: Option<LoadProbe>,
    rng: SmallRng,
    timer: Option<SpawnHandle>,
    /// Bumped on every start and stop, so the answer to a heartbeat sent before
    /// a stop cannot schedule another beat after it.
    generation: u64,
}

impl HeartbeatActor {
    pub fn new(
        link: Rc<dyn ControllerLink>,
        worker_id: String,
        instance: Option<String>,
        configured_interval: Duration,
        listeners: BeatListeners,
        load_probe: Option<LoadProbe>,
    ) -> Self {
        HeartbeatActor {
            link,
            worker_id,
            instance,
            configured_interval,
            interval: configured_interval,
            advised_ceiling: None,
            listeners,
            load_probe,
            rng: SmallRng::from_os_rng(),
            timer: None,
            generation: 0,
        }
    }

    /// The next wait: `interval ± 10 %`, the window shifted down (not clipped)
    /// where it would pass the advised ceiling. Clipping would pile the upper
    /// half of the draws onto the ceiling itself and put a fleet started
    /// together back in lockstep.
    fn next_delay(&mut self) -> Duration {
        let width = scaled(self.interval, 2.0 * HEARTBEAT_JITTER);
        let mut upper = scaled(self.interval, 1.0 + HEARTBEAT_JITTER);
        if let Some(ceiling) = self.advised_ceiling {
            upper = upper.min(ceiling);
        }
        let lower = upper.saturating_sub(width);
        lower.saturating_add(scaled(width, self.rng.random_range(0.0..=1.0)))
    }

    fn schedule_beat(&mut self, delay: Duration, ctx: &mut Context<Self>) {
        self.timer = Some(ctx.run_later(delay, |actor, ctx| actor.beat(ctx)));
    }

    fn cancel(&mut self, ctx: &mut Context<Self>) {
        self.generation += 1;
        if let Some(timer) = self.timer.take() {
            ctx.cancel_future(timer);
        }
    }

    fn beat(&mut self, ctx: &mut Context<Self>) {
        let _handling = supervision::handling("heartbeat", "beat");
        self.timer = None;
        let generation = self.generation;
        let request = HeartbeatRequest {
            worker_id: self.worker_id.clone(),
            load: self.load_probe.as_ref().map(|probe| probe()),
            instance: self.instance.clone(),
        };
        // Named before the call: a failover link may move on when it fails.
        let controller = self.link.describe();
        let sent = self.link.heartbeat(request);
        ctx.spawn(sent.into_actor(self).map(move |result, actor, ctx| {
            let _handling = supervision::handling("heartbeat", "heartbeat answer");
            if actor.generation != generation {
                return;
            }
            match result {
                Ok(()) => {
                    log::debug!("heartbeat of worker {} acknowledged", actor.worker_id);
                    let delay = actor.next_delay();
                    actor.schedule_beat(delay, ctx);
                }
                Err(LinkError::UnknownWorker) => {
                    log::warn!(
                        "controller {} does not know worker {} (it restarted or evicted us); registering again",
                        controller,
                        actor.worker_id
                    );
                    actor.generation += 1;
                    actor.listeners.forgot.do_send(ControllerForgotWorker);
                }
                Err(LinkError::Superseded) => {
                    log::warn!(
                        "controller {} says another process registered worker id {} since (instance {} was replaced); this process stops heartbeating and keeps serving direct calls. If both should run, give one another --worker-id",
                        controller,
                        actor.worker_id,
                        actor.instance.as_deref().unwrap_or("?")
                    );
                    actor.generation += 1;
                    actor.listeners.superseded.do_send(InstanceSuperseded);
                }
                Err(error) => {
                    let delay = actor.next_delay();
                    log::warn!(
                        "heartbeat of worker {} to {} failed: {error}; will try again in {:.1} s",
                        actor.worker_id,
                        controller,
                        delay.as_secs_f64()
                    );
                    actor.schedule_beat(delay, ctx);
                }
            }
        }));
    }
}

impl Actor for HeartbeatActor {
    type Context = Context<Self>;
}

impl Handler<StartBeating> for HeartbeatActor {
    type Result = ();

    fn handle(&mut self, msg: StartBeating, ctx: &mut Self::Context) {
        let _handling = supervision::handling("heartbeat", "StartBeating");
        self.cancel(ctx);
        if msg
            .advised_interval
            .is_some_and(|advised| advised < MIN_HEARTBEAT_INTERVAL)
        {
            log::warn!(
                "controller {} advises worker {} to heartbeat every {:?}; beating every {:?} instead, the shortest interval a worker keeps",
                self.link.describe(),
                self.worker_id,
                msg.advised_interval.unwrap_or_default(),
                MIN_HEARTBEAT_INTERVAL
            );
        }
        let advised = msg
            .advised_interval
            .map(|advised| advised.max(MIN_HEARTBEAT_INTERVAL));
        self.advised_ceiling = advised;
        self.interval = match advised {
            Some(advised) if advised < self.configured_interval => {
                log::info!(
                    "worker {} heartbeats every {:.1} s, as the controller advises (configured {:.1} s)",
                    self.worker_id,
                    advised.as_secs_f64(),
                    self.configured_interval.as_secs_f64()
                );
                advised
            }
            _ => self.configured_interval,
        };
        let delay = self.next_delay();
        self.schedule_beat(delay, ctx);
    }
}

impl Handler<StopBeating> for HeartbeatActor {
    type Result = ();

    fn handle(&mut self, _: StopBeating, ctx: &mut Self::Context) {
        let _handling = supervision::handling("heartbeat", "StopBeating");
        self.cancel(ctx);
    }
}
