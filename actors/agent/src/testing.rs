//! An in-memory controller for actor tests of the worker side: it records every
//! call with the (paused) tokio clock's time and can be told to fail.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use actix::clock::Instant;
use futures_util::future::{ready, LocalBoxFuture};
use futures_util::FutureExt;

use crate::link::{ControllerLink, LinkError};
use crank_proto::wire::{HeartbeatRequest, RegisterRequest, RegisterResponse};

#[derive(Default)]
struct State {
    known: HashMap<String, RegisterRequest>,
    registrations: Vec<Instant>,
    heartbeats: Vec<Instant>,
    deregistrations: Vec<String>,
    failing_registrations: u32,
    throttled_registrations: Option<(u32, Duration)>,
    failing_heartbeats: u32,
    advised_interval: Option<Duration>,
    registration_delay: Option<Duration>,
}

/// A controller that lives in the test's memory.
#[derive(Clone, Default)]
pub struct InMemoryController {
    state: Rc<RefCell<State>>,
}

impl InMemoryController {
    pub fn new() -> Self {
        Self::default()
    }

    /// The next `n` registrations fail as if the controller were down.
    pub fn fail_next_registrations(&self, n: u32) {
        self.state.borrow_mut().failing_registrations = n;
    }

    /// The next `n` registrations are refused as over the caller's rate,
    /// asking to retry after `wait`.
    pub fn throttle_next_registrations(&self, n: u32, wait: Duration) {
        self.state.borrow_mut().throttled_registrations = Some((n, wait));
    }

    /// The next `n` heartbeats fail as if the network dropped them.
    pub fn fail_next_heartbeats(&self, n: u32) {
        self.state.borrow_mut().failing_heartbeats = n;
    }

    /// Advise this heartbeat interval in registration answers.
    pub fn advise_heartbeat_interval(&self, interval: Duration) {
        self.state.borrow_mut().advised_interval = Some(interval);
    }

    /// Answer registrations only after `delay`, as a slow controller would.
    pub fn delay_registrations(&self, delay: Duration) {
        self.state.borrow_mut().registration_delay = Some(delay);
    }

    /// Forget a worker, as a restarted controller would.
    /// Another process registers `worker_id` as `instance`, as a rolling
    /// restart's new process would.
    pub fn replace_instance(&self, worker_id: &str, instance: &str) {
        if let Some(record) = self.state.borrow_mut().known.get_mut(worker_id) {
            record.instance = Some(instance.to_owned());
        }
    }

    pub fn forget(&self, worker_id: &str) {
        self.state.borrow_mut().known.remove(worker_id);
    }

    pub fn registered(&self, worker_id: &str) -> Option<RegisterRequest> {
        self.state.borrow().known.get(worker_id).cloned()
    }

    /// When each registration attempt (failed or not) arrived.
    pub fn registration_times(&self) -> Vec<Instant> {
        self.state.borrow().registrations.clone()
    }

    /// When each successful heartbeat arrived.
    pub fn heartbeat_times(&self) -> Vec<Instant> {
        self.state.borrow().heartbeats.clone()
    }

    pub fn deregistrations(&self) -> Vec<String> {
        self.state.borrow().deregistrations.clone()
    }
}

impl ControllerLink for InMemoryController {
    fn register(
        &self,
        request: RegisterRequest,
    ) -> LocalBoxFuture<'static, Result<RegisterResponse, LinkError>> {
        let mut state = self.state.borrow_mut();
        state.registrations.push(Instant::now());
        if state.failing_registrations > 0 {
            state.failing_registrations -= 1;
            return ready(Err(LinkError::Unreachable("connection refused".into()))).boxed_local();
        }
        if let Some((n, wait)) = state.throttled_registrations.filter(|(n, _)| *n > 0) {
            state.throttled_registrations = Some((n - 1, wait));
            let throttled = LinkError::Throttled {
                retry_after: wait,
                detail: "over its rate for /register".into(),
            };
            return ready(Err(throttled)).boxed_local();
        }
        let answer = RegisterResponse {
            status: crank_proto::wire::RegisterStatus::Registered,
            worker_id: request.worker_id.clone(),
            capabilities_registered: request.capabilities.len(),
            heartbeat_interval_s: state.advised_interval.map(|d| d.as_secs_f64()),
            stale_after_s: None,
        };
        match state.registration_delay {
            // The request is on the wire: it lands after the delay whether or not
            // the worker still waits for the answer.
            Some(delay) => {
                let shared = self.state.clone();
                let landed = tokio::task::spawn_local(async move {
                    tokio::time::sleep(delay).await;
                    shared
                        .borrow_mut()
                        .known
                        .insert(request.worker_id.clone(), request);
                });
                async move {
                    landed
                        .await
                        .map_err(|e| LinkError::Unreachable(e.to_string()))?;
                    Ok(answer)
                }
                .boxed_local()
            }
            None => {
                state.known.insert(request.worker_id.clone(), request);
                ready(Ok(answer)).boxed_local()
            }
        }
    }

    fn heartbeat(
        &self,
        request: HeartbeatRequest,
    ) -> LocalBoxFuture<'static, Result<(), LinkError>> {
        let mut state = self.state.borrow_mut();
        if state.failing_heartbeats > 0 {
            state.failing_heartbeats -= 1;
            return ready(Err(LinkError::Timeout(Duration::from_secs(5)))).boxed_local();
        }
        let Some(registered) = state.known.get(&request.worker_id) else {
            return ready(Err(LinkError::UnknownWorker)).boxed_local();
        };
        if request.instance.is_some() && request.instance != registered.instance {
            return ready(Err(LinkError::Superseded)).boxed_local();
        }
        state.heartbeats.push(Instant::now());
        ready(Ok(())).boxed_local()
    }

    fn deregister(
        &self,
        worker_id: &str,
        instance: Option<&str>,
    ) -> LocalBoxFuture<'static, Result<(), LinkError>> {
        let mut state = self.state.borrow_mut();
        let current = state
            .known
            .get(worker_id)
            .is_none_or(|r| instance.is_none() || r.instance.as_deref() == instance);
        if !current {
            return ready(Err(LinkError::Superseded)).boxed_local();
        }
        state.known.remove(worker_id);
        state.deregistrations.push(worker_id.to_owned());
        ready(Ok(())).boxed_local()
    }

    fn describe(&self) -> String {
        "in-memory".into()
    }
}
