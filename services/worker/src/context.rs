//! [`WorkerContext`]: the running worker as its handlers and its heartbeat see
//! it, and the `/health` every worker serves from it.

use crate::metrics::WorkerMetrics;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{web, HttpResponse};
use crank_agent::registration::{RegistrationState, RegistrationStatus};
use crank_proto::wire::{Health, HealthStatus, Load, Readiness, ReadyStatus};

use super::meter::CapabilityMeter;

/// The worker a request is served by: its service name, id, registration
/// state, uptime, and one [`CapabilityMeter`] per capability.
///
/// Every worker's app has it as app data, so a handler may take
/// `web::Data<WorkerContext>`; the heartbeat reads [`WorkerContext::take_load`].
#[derive(Debug)]
pub struct WorkerContext {
    service: String,
    worker_id: String,
    started: Instant,
    registration: RegistrationStatus,
    capacity: u32,
    meters: Vec<Arc<CapabilityMeter>>,
    /// Its `GET /metrics`: registration state, heartbeats by outcome and
    /// their round trip, requests by endpoint.
    pub metrics: Arc<WorkerMetrics>,
    /// Answers kept per `Idempotency-Key`, shared by every HTTP thread.
    pub replays: Arc<std::sync::Mutex<crate::replays::Replays>>,
}

impl WorkerContext {
    /// The context of worker `worker_id` of `service`, serving the capabilities
    /// `(<verb>:<name>, max_concurrency)` in `capabilities` (one meter each);
    /// `capacity` is what it reports when it serves none.
    pub fn new(
        service: &str,
        worker_id: &str,
        registration: RegistrationStatus,
        capacity: u32,
        capabilities: impl IntoIterator<Item = (String, u32)>,
    ) -> Arc<Self> {
        let meters: Vec<Arc<CapabilityMeter>> = capabilities
            .into_iter()
            .map(|(key, limit)| Arc::new(CapabilityMeter::new(key, limit)))
            .collect();
        // Each capability admits its own limit, so the worker's capacity is
        // their sum (its declared capacity when it serves no capability).
        let capacity = match meters.is_empty() {
            true => capacity,
            false => meters
                .iter()
                .fold(0u32, |sum, meter| sum.saturating_add(meter.limit())),
        };
        let replays = Arc::default();
        Arc::new(WorkerContext {
            service: service.to_owned(),
            worker_id: worker_id.to_owned(),
            started: Instant::now(),
            metrics: WorkerMetrics::new(registration.clone(), Arc::clone(&replays)),
            registration,
            capacity,
            meters,
            replays,
        })
    }

    /// The service's name, as `/health` gives it.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The id the worker registers.
    pub fn worker_id(&self) -> &str {
        &self.worker_id
    }

    /// Where the worker stands with its controller.
    pub fn registration(&self) -> RegistrationState {
        self.registration.get()
    }

    /// Time since the worker started.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// The meters, in the order the capabilities were declared.
    pub fn meters(&self) -> &[Arc<CapabilityMeter>] {
        &self.meters
    }

    /// Requests of any capability being answered now.
    pub fn in_flight(&self) -> u32 {
        self.meters.iter().map(|meter| meter.in_flight()).sum()
    }

    /// The load a heartbeat reports: requests in flight, the capacity, and each
    /// capability's window, which starts anew.
    pub fn take_load(&self) -> Load {
        Load {
            capabilities: self.meters.iter().map(|meter| meter.take()).collect(),
            ..Load::new(self.in_flight(), self.capacity)
        }
    }
}

/// `GET /health`: [`Health`] with the worker's id, uptime and registration state.
pub async fn health(context: web::Data<WorkerContext>) -> HttpResponse {
    HttpResponse::Ok().json(Health {
        status: HealthStatus::Healthy,
        service: context.service.clone(),
        worker_id: Some(context.worker_id.clone()),
        uptime_s: Some(context.uptime().as_secs_f64()),
        store: None,
        registration: Some(context.registration().as_str().into()),
        detail: None,
    })
}

/// `GET /ready`: 200 while the worker is registered with its controller (or
/// serves on its own), 503 while it registers or once another process took
/// its id over. Its liveness is `/health`: a worker whose registration or
/// heartbeat actor failed has exited (see docs/reliability.md, "Failure and
/// supervision"), so a worker that answers is one whose actors run.
pub async fn ready(context: web::Data<WorkerContext>) -> HttpResponse {
    let not_ready = match context.registration() {
        RegistrationState::Standalone | RegistrationState::Registered => Vec::new(),
        RegistrationState::Registering => {
            vec!["registration: not registered with its controller yet".to_owned()]
        }
        RegistrationState::Superseded => vec![
            "registration: another process registered this worker id; this one is not routed to"
                .to_owned(),
        ],
    };
    let readiness = Readiness::of(not_ready);
    match readiness.status {
        ReadyStatus::Ready => HttpResponse::Ok().json(readiness),
        ReadyStatus::NotReady => HttpResponse::ServiceUnavailable().json(readiness),
    }
}
