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

use std::rc::Rc;
use std::time::Duration;

use actix::prelude::*;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::link::{ControllerLink, LinkError};
use crate::wire::{HeartbeatRequest, Load};

/// Default time between heartbeats.
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(30);
/// Each interval is drawn from `interval * (1 ± HEARTBEAT_JITTER)`.
pub const HEARTBEAT_JITTER: f64 = 0.1;

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

/// Reports the worker's current load, sent with each heartbeat.
pub type LoadProbe = Box<dyn Fn() -> Load>;

/// The heartbeat loop of one worker.
pub struct HeartbeatActor {
    link: Rc<dyn ControllerLink>,
    worker_id: String,
    configured_interval: Duration,
    interval: Duration,
    /// The controller's advice: no wait may exceed it, jitter included.
    advised_ceiling: Option<Duration>,
    registration: Recipient<ControllerForgotWorker>,
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
        configured_interval: Duration,
        registration: Recipient<ControllerForgotWorker>,
        load_probe: Option<LoadProbe>,
    ) -> Self {
        HeartbeatActor {
            link,
            worker_id,
            configured_interval,
            interval: configured_interval,
            advised_ceiling: None,
            registration,
            load_probe,
            rng: SmallRng::from_os_rng(),
            timer: None,
            generation: 0,
        }
    }

    fn next_delay(&mut self) -> Duration {
        let factor = 1.0 + self.rng.random_range(-HEARTBEAT_JITTER..=HEARTBEAT_JITTER);
        let delay = self.interval.mul_f64(factor);
        match self.advised_ceiling {
            Some(ceiling) => delay.min(ceiling),
            None => delay,
        }
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
        self.timer = None;
        let generation = self.generation;
        let request = HeartbeatRequest {
            worker_id: self.worker_id.clone(),
            load: self.load_probe.as_ref().map(|probe| probe()),
        };
        let sent = self.link.heartbeat(request);
        ctx.spawn(sent.into_actor(self).map(move |result, actor, ctx| {
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
                        actor.link.describe(),
                        actor.worker_id
                    );
                    actor.generation += 1;
                    actor.registration.do_send(ControllerForgotWorker);
                }
                Err(error) => {
                    let delay = actor.next_delay();
                    log::warn!(
                        "heartbeat of worker {} to {} failed: {error}; will try again in {:.1} s",
                        actor.worker_id,
                        actor.link.describe(),
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
        self.cancel(ctx);
        self.advised_ceiling = msg.advised_interval;
        self.interval = match msg.advised_interval {
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
        self.cancel(ctx);
    }
}
