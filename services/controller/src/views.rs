//! Registry answers as wire bodies: the one place domain values (times as
//! `DateTime` and `Duration`) become the protocol's JSON shapes, on the HTTP
//! threads rather than on the registry's.

use crank_proto::wire::{
    RegisterResponse, RegisterStatus, RouteResponse, Stats, WorkerDetail, WorkerSummary,
};
use crank_registry::{RegisterAck, RegistryStats, RouteChoice, WorkerDetailView, WorkerView};

use crank_net::server::HandshakeCounter;

/// `POST /register`'s answer.
pub fn registered(worker_id: String, ack: &RegisterAck) -> RegisterResponse {
    RegisterResponse {
        status: RegisterStatus::Registered,
        worker_id,
        capabilities_registered: ack.capabilities_registered,
        heartbeat_interval_s: Some(ack.heartbeat_interval.as_secs_f64()),
        stale_after_s: Some(ack.stale_after.as_secs_f64()),
    }
}

/// `POST /route`'s answer.
pub fn route(choice: RouteChoice) -> RouteResponse {
    RouteResponse {
        worker_id: choice.worker_id,
        worker_url: choice.worker_url,
        capability: choice.capability,
        version: Some(choice.version),
    }
}

/// One row of `GET /workers`.
pub fn worker_summary(view: WorkerView) -> WorkerSummary {
    WorkerSummary {
        is_healthy: view.status.is_routable(),
        worker_id: view.worker_id,
        worker_url: view.worker_url,
        status: view.status,
        last_heartbeat: view.last_heartbeat,
        registered_at: Some(view.registered_at),
        capabilities: view.capability_keys,
        ejected_until: view.ejected_until,
    }
}

/// `GET /workers/{id}`.
pub fn worker_detail(detail: WorkerDetailView) -> WorkerDetail {
    let view = detail.worker;
    WorkerDetail {
        is_healthy: view.status.is_routable(),
        worker_id: view.worker_id,
        worker_url: view.worker_url,
        status: view.status,
        last_heartbeat: view.last_heartbeat,
        registered_at: view.registered_at,
        seconds_since_heartbeat: view.since_heartbeat.as_secs_f64(),
        registered_by: detail.registered_by,
        owner: detail.owner,
        load: detail.load,
        capabilities: detail.capabilities,
        ejected_until: view.ejected_until,
    }
}

/// `GET /stats`, with the server's TLS handshake counts if it keeps them.
pub fn stats(stats: RegistryStats, handshakes: Option<&HandshakeCounter>) -> Stats {
    Stats {
        workers: stats.workers,
        healthy_workers: stats.healthy_workers,
        capabilities: stats.capabilities,
        sweeps: stats.sweeps,
        last_sweep_ms: stats.last_sweep.as_secs_f64() * 1000.0,
        max_sweep_ms: stats.longest_sweep_step.as_secs_f64() * 1000.0,
        tls_handshakes: handshakes.map(HandshakeCounter::completed),
        tls_resumed: handshakes.map(HandshakeCounter::resumed),
    }
}

/// The SLOs' states as `GET /slos` answers them.
pub fn slos(states: &[crate::protection::slo::SloState]) -> crank_proto::wire::SloList {
    crank_proto::wire::SloList {
        slos: states
            .iter()
            .map(|state| crank_proto::wire::SloStatus {
                capability: state.spec.capability.clone(),
                samples: state.samples as u64,
                p95_ms: state.p95_ms,
                p95_target_ms: state.spec.p95_ms,
                availability: state.availability,
                availability_target: state.spec.availability,
                error_budget_remaining: state.budget_remaining,
                breach: state.breach.as_ref().map(ToString::to_string),
            })
            .collect(),
    }
}
