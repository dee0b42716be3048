//! `RegistrationActor` makes the controller know this worker. It registers on start
//! and, on failure, retries with exponential backoff and full jitter (1 s doubling to
//! a 30 s cap by default) for as long as the process lives: a worker outliving its
//! controller must come back on its own once the controller does. After five minutes
//! of failures it says so once at error level, since by then someone should look.
//!
//! It owns the worker's `HeartbeatActor`: every successful registration (re)starts
//! the beat, and the beat reports back with `ControllerForgotWorker` when the
//! controller answers `unknown_worker`. Registration never blocks serving: the HTTP
//! server runs whatever state this actor is in, and `/health` shows that state.

use crank_supervision as supervision;
use std::rc::Rc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::clock::Instant;
use actix::prelude::*;

use crate::backoff::Backoff;
use crate::heartbeat::{
    BeatListeners, ControllerForgotWorker, HeartbeatActor, InstanceSuperseded, LoadProbe,
    StartBeating, StopBeating,
};
use crate::link::{ControllerLink, LinkError};
use crank_proto::wire::RegisterRequest;

/// After failing to register for this long, log an error (once per outage).
pub const OUTAGE_ALARM_AFTER: Duration = Duration::from_secs(5 * 60);
/// Default time allowed for the deregistration on shutdown.
pub const DEFAULT_DEREGISTER_TIMEOUT: Duration = Duration::from_secs(2);

/// Stop heartbeating and deregister, bounded by the deregister timeout; the
/// actors stop afterwards.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "Result<(), LinkError>")]
pub struct Shutdown;

/// Where the worker stands with its controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationState {
    /// No controller configured: the worker serves on its own.
    Standalone,
    /// Trying to register (first time, or again after the controller forgot us).
    Registering,
    /// The controller knows this worker.
    Registered,
    /// Another process registered this worker id since; this one no longer
    /// heartbeats or registers, and only serves direct calls.
    Superseded,
}

impl RegistrationState {
    pub fn as_str(self) -> &'static str {
        match self {
            RegistrationState::Standalone => "standalone",
            RegistrationState::Registering => "registering",
            RegistrationState::Registered => "registered",
            RegistrationState::Superseded => "superseded",
        }
    }
}

/// The registration state, readable from any thread (the HTTP workers' `/health`).
#[derive(Debug, Clone)]
pub struct RegistrationStatus(Arc<AtomicU8>);

impl RegistrationStatus {
    pub fn new(state: RegistrationState) -> Self {
        let status = RegistrationStatus(Arc::new(AtomicU8::new(0)));
        status.set(state);
        status
    }

    pub fn get(&self) -> RegistrationState {
        match self.0.load(Ordering::Acquire) {
            0 => RegistrationState::Standalone,
            1 => RegistrationState::Registering,
            2 => RegistrationState::Registered,
            _ => RegistrationState::Superseded,
        }
    }

    fn set(&self, state: RegistrationState) {
        let value = match state {
            RegistrationState::Standalone => 0,
            RegistrationState::Registering => 1,
            RegistrationState::Registered => 2,
            RegistrationState::Superseded => 3,
        };
        self.0.store(value, Ordering::Release);
    }
}

/// Timing of the worker-side actors.
#[derive(Debug, Clone)]
pub struct WorkerTiming {
    pub heartbeat_interval: Duration,
    pub backoff: Backoff,
    pub deregister_timeout: Duration,
}

impl Default for WorkerTiming {
    fn default() -> Self {
        WorkerTiming {
            heartbeat_interval: crate::heartbeat::DEFAULT_HEARTBEAT_INTERVAL,
            backoff: Backoff::default(),
            deregister_timeout: DEFAULT_DEREGISTER_TIMEOUT,
        }
    }
}

/// The registration side of one worker.
pub struct RegistrationActor {
    link: Rc<dyn ControllerLink>,
    request: RegisterRequest,
    backoff: Backoff,
    deregister_timeout: Duration,
    heartbeat: Addr<HeartbeatActor>,
    status: RegistrationStatus,
    failed_attempts: u32,
    failing_since: Option<Instant>,
    outage_reported: bool,
    attempt_in_flight: bool,
    retry_timer: Option<SpawnHandle>,
    shutting_down: bool,
    /// Wakes a shutdown waiting for the registration that was in flight.
    attempt_settled: Rc<tokio::sync::Notify>,
}

impl RegistrationActor {
    /// Starts the registration and heartbeat actors of one worker. Each gets its
    /// own link, so each keeps its own connection to the controller.
    pub fn launch(
        registration_link: Rc<dyn ControllerLink>,
        heartbeat_link: Rc<dyn ControllerLink>,
        request: RegisterRequest,
        timing: WorkerTiming,
        status: RegistrationStatus,
        load_probe: Option<LoadProbe>,
    ) -> Addr<RegistrationActor> {
        RegistrationActor::create(move |ctx| {
            let heartbeat = HeartbeatActor::new(
                heartbeat_link,
                request.worker_id.clone(),
                request.instance.clone(),
                timing.heartbeat_interval,
                BeatListeners {
                    forgot: ctx.address().recipient(),
                    superseded: ctx.address().recipient(),
                },
                load_probe,
            )
            .start();
            RegistrationActor {
                link: registration_link,
                request,
                backoff: timing.backoff,
                deregister_timeout: timing.deregister_timeout,
                heartbeat,
                status,
                failed_attempts: 0,
                failing_since: None,
                outage_reported: false,
                attempt_in_flight: false,
                retry_timer: None,
                shutting_down: false,
                attempt_settled: Rc::new(tokio::sync::Notify::new()),
            }
        })
    }

    fn attempt(&mut self, ctx: &mut Context<Self>) {
        let _handling = supervision::handling("registration", "attempt");
        if self.shutting_down || self.attempt_in_flight {
            return;
        }
        self.retry_timer = None;
        self.attempt_in_flight = true;
        self.status.set(RegistrationState::Registering);
        // Named before the call: a failover link may move on when it fails.
        let controller = self.link.describe();
        let sent = self.link.register(self.request.clone());
        ctx.spawn(sent.into_actor(self).map(move |result, actor, ctx| {
            let _handling = supervision::handling("registration", "registration answer");
            actor.attempt_in_flight = false;
            if actor.shutting_down {
                actor.attempt_settled.notify_one();
                return;
            }
            match result {
                Ok(answer) => {
                    // Whatever the controller says, a nonsensical advice (zero,
                    // negative, NaN, absurdly large) must not stop the heartbeat.
                    let advised_interval = answer
                        .heartbeat_interval_s
                        .and_then(|s| Duration::try_from_secs_f64(s).ok())
                        .filter(|d| !d.is_zero());
                    log::info!(
                        "worker {} registered with controller {} (capabilities registered: {}){}",
                        actor.request.worker_id,
                        controller,
                        answer.capabilities_registered,
                        match actor.failed_attempts {
                            0 => String::new(),
                            n => format!(" after {n} failed attempts"),
                        }
                    );
                    actor.failed_attempts = 0;
                    actor.failing_since = None;
                    actor.outage_reported = false;
                    actor.status.set(RegistrationState::Registered);
                    actor.heartbeat.do_send(StartBeating { advised_interval });
                }
                Err(error) => actor.retry_later(&controller, error, ctx),
            }
        }));
    }

    fn retry_later(&mut self, controller: &str, error: LinkError, ctx: &mut Context<Self>) {
        let mut delay = self.backoff.delay(self.failed_attempts);
        if let LinkError::Throttled { retry_after, .. } = &error {
            // The controller said when: sooner would only be refused again.
            delay = delay.max(*retry_after);
        }
        self.failed_attempts += 1;
        let failing_for = self
            .failing_since
            .get_or_insert_with(Instant::now)
            .elapsed();
        if failing_for >= OUTAGE_ALARM_AFTER && !self.outage_reported {
            self.outage_reported = true;
            log::error!(
                "worker {} has failed to register with controller {} for {} s ({} attempts): {error}; it keeps serving requests directly and keeps retrying, next in {:.1} s",
                self.request.worker_id,
                controller,
                failing_for.as_secs(),
                self.failed_attempts,
                delay.as_secs_f64()
            );
        } else {
            log::warn!(
                "registration of worker {} with controller {} failed: {error}; will retry in {:.1} s (attempt {})",
                self.request.worker_id,
                controller,
                delay.as_secs_f64(),
                self.failed_attempts
            );
        }
        self.retry_timer = Some(ctx.run_later(delay, |actor, ctx| actor.attempt(ctx)));
    }
}

impl Actor for RegistrationActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.attempt(ctx);
    }
}

impl Handler<ControllerForgotWorker> for RegistrationActor {
    type Result = ();

    fn handle(&mut self, _: ControllerForgotWorker, ctx: &mut Self::Context) {
        let _handling = supervision::handling("registration", "ControllerForgotWorker");
        // Already on it: one new registration per loss, however many heartbeats
        // told us about it.
        if self.attempt_in_flight
            || self.retry_timer.is_some()
            || self.shutting_down
            || self.status.get() == RegistrationState::Superseded
        {
            return;
        }
        self.failed_attempts = 0;
        self.attempt(ctx);
    }
}

impl Handler<InstanceSuperseded> for RegistrationActor {
    type Result = ();

    fn handle(&mut self, _: InstanceSuperseded, _: &mut Self::Context) {
        let _handling = supervision::handling("registration", "InstanceSuperseded");
        // The newer process owns the record: registering again would take it
        // back from a live process, so this one stays out for good.
        self.status.set(RegistrationState::Superseded);
    }
}

impl Handler<Shutdown> for RegistrationActor {
    type Result = ResponseActFuture<Self, Result<(), LinkError>>;

    fn handle(&mut self, _: Shutdown, ctx: &mut Self::Context) -> Self::Result {
        let _handling = supervision::handling("registration", "Shutdown");
        self.shutting_down = true;
        if let Some(timer) = self.retry_timer.take() {
            ctx.cancel_future(timer);
        }
        let stop_beating = self.heartbeat.send(StopBeating);
        // A registration still in flight could reach the controller after our
        // deregistration and leave a dead worker listed: let it land first.
        let in_flight = self.attempt_in_flight.then(|| self.attempt_settled.clone());
        let link = self.link.clone();
        let worker_id = self.request.worker_id.clone();
        let instance = self.request.instance.clone();
        let superseded = self.status.get() == RegistrationState::Superseded;
        let timeout = self.deregister_timeout;
        let done = async move {
            let _ = stop_beating.await;
            let deregister = async move {
                if let Some(settled) = in_flight {
                    settled.notified().await;
                }
                if superseded {
                    // The record is the newer process's; leave it alone.
                    return Err(LinkError::Superseded);
                }
                link.deregister(&worker_id, instance.as_deref()).await
            };
            match tokio::time::timeout(timeout, deregister).await {
                Ok(result) => result,
                Err(_) => Err(LinkError::Timeout(timeout)),
            }
        };
        Box::pin(done.into_actor(self).map(|result, actor, ctx| {
            match &result {
                Ok(()) => log::info!(
                    "worker {} deregistered from controller {}",
                    actor.request.worker_id,
                    actor.link.describe()
                ),
                Err(LinkError::Superseded) => log::info!(
                    "worker {} did not deregister: another process registered this id since and keeps its record",
                    actor.request.worker_id
                ),
                Err(error) => log::warn!(
                    "worker {} could not deregister from controller {}: {error}; the controller will mark it stale when its heartbeats stop",
                    actor.request.worker_id,
                    actor.link.describe()
                ),
            }
            // Dropping this actor drops the heartbeat's last address, which stops it.
            ctx.stop();
            result
        }))
    }
}
