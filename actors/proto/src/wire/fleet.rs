//! What a controller tells about its fleet: `GET /workers`, `GET /workers/{id}`,
//! `GET /capabilities`, `GET /stats` and `GET /health`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Capability, Load};

/// `healthy`, `suspect`, `stale` or `draining`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkerStatus {
    Healthy,
    /// Silent for `stale_after`, but the controller is in a grace period (it
    /// was paused, or too much of the fleet fell silent at once): still routed
    /// to until it heartbeats or the grace period ends.
    Suspect,
    Stale,
    /// Finishing its calls before it stops (`POST /drain/{id}`, or its own
    /// SIGTERM): no longer routed to.
    Draining,
}

impl WorkerStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkerStatus::Healthy => "healthy",
            WorkerStatus::Suspect => "suspect",
            WorkerStatus::Stale => "stale",
            WorkerStatus::Draining => "draining",
        }
    }

    /// Whether a worker in this status is routed to (`is_healthy` on the wire).
    pub fn is_routable(self) -> bool {
        !matches!(self, WorkerStatus::Stale | WorkerStatus::Draining)
    }
}

/// `GET /workers` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerList {
    pub workers: Vec<WorkerSummary>,
}

/// One row of [`WorkerList`].
///
/// crank writes every field; it reads the original controller's rows too,
/// which have no `status` (derived from `is_healthy`), no `registered_at`, and
/// times without a zone (see `WorkerSummaryV1`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "WorkerSummaryV1")]
pub struct WorkerSummary {
    pub worker_id: String,
    pub worker_url: String,
    pub is_healthy: bool,
    pub status: WorkerStatus,
    #[serde(with = "super::timestamp")]
    pub last_heartbeat: DateTime<Utc>,
    /// Absent from the original controller's rows.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "super::timestamp::optional"
    )]
    pub registered_at: Option<DateTime<Utc>>,
    /// `<verb>:<name>` of each capability served.
    pub capabilities: Vec<String>,
    /// Present while the worker is ejected from routing after failures its
    /// callers reported: not handed out until then, and after it until its
    /// next heartbeat or a reported success. `status` does not change.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "super::timestamp::optional"
    )]
    pub ejected_until: Option<DateTime<Utc>>,
}

/// How a [`WorkerSummary`] is read: every v1 shape, crank's and the
/// original's. Lenient readers, strict writers.
#[derive(Deserialize)]
struct WorkerSummaryV1 {
    worker_id: String,
    worker_url: String,
    is_healthy: bool,
    #[serde(default)]
    status: Option<WorkerStatus>,
    #[serde(with = "super::timestamp")]
    last_heartbeat: DateTime<Utc>,
    #[serde(default, with = "super::timestamp::optional")]
    registered_at: Option<DateTime<Utc>>,
    #[serde(default)]
    capabilities: Vec<String>,
    #[serde(default, with = "super::timestamp::optional")]
    ejected_until: Option<DateTime<Utc>>,
}

impl From<WorkerSummaryV1> for WorkerSummary {
    fn from(v1: WorkerSummaryV1) -> Self {
        WorkerSummary {
            status: v1.status.unwrap_or(if v1.is_healthy {
                WorkerStatus::Healthy
            } else {
                WorkerStatus::Stale
            }),
            worker_id: v1.worker_id,
            worker_url: v1.worker_url,
            is_healthy: v1.is_healthy,
            last_heartbeat: v1.last_heartbeat,
            registered_at: v1.registered_at,
            capabilities: v1.capabilities,
            ejected_until: v1.ejected_until,
        }
    }
}

/// `GET /workers/{id}`: everything the registry knows of one worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerDetail {
    pub worker_id: String,
    pub worker_url: String,
    pub is_healthy: bool,
    pub status: WorkerStatus,
    #[serde(with = "super::timestamp")]
    pub last_heartbeat: DateTime<Utc>,
    #[serde(with = "super::timestamp")]
    pub registered_at: DateTime<Utc>,
    /// Seconds since the last heartbeat, on the controller's monotonic clock.
    pub seconds_since_heartbeat: f64,
    /// The identity that registered it, e.g. `worker/hello-world-1`.
    pub registered_by: String,
    /// With the cluster store: the controller that judges its liveness.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    pub load: Option<Load>,
    pub capabilities: Vec<Capability>,
    /// As in [`WorkerSummary::ejected_until`].
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "super::timestamp::optional"
    )]
    pub ejected_until: Option<DateTime<Utc>>,
}

/// `GET /capabilities` answer, keyed by `<verb>:<name>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapabilityList {
    pub capabilities: BTreeMap<String, CapabilityCount>,
}

/// One entry of [`CapabilityList`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapabilityCount {
    pub workers: usize,
    pub healthy_workers: usize,
}

/// `GET /stats`: counters for operators and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub workers: usize,
    /// Workers not marked stale by the last sweep.
    pub healthy_workers: usize,
    pub capabilities: usize,
    pub sweeps: u64,
    /// Registry time of the last sweep, in milliseconds (all its steps).
    pub last_sweep_ms: f64,
    /// Longest single sweep step so far, in milliseconds: the longest the
    /// registry held back heartbeats and routes to sweep.
    pub max_sweep_ms: f64,
    /// TLS handshakes the controller's server has completed, full and resumed
    /// (absent from controllers that do not count them, and from an app
    /// served without crank's mTLS server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_handshakes: Option<u64>,
    /// Of those, the handshakes that resumed an earlier TLS session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_resumed: Option<u64>,
}

/// The `status` of [`Health`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    Healthy,
    /// 503: the process cannot do its job (its registry does not answer).
    Unhealthy,
}

/// `GET /health` answer of the controller and of workers. Workers add their id,
/// uptime and registration state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Health {
    pub status: HealthStatus,
    pub service: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uptime_s: Option<f64>,
    /// The controller's store: `memory`, or with etcd `ok` or `unreachable`
    /// (still 200: the controller serves from its replica).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<String>,
    /// `standalone`, `registering` or `registered`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration: Option<String>,
    /// With [`HealthStatus::Unhealthy`]: what failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The `status` of [`Readiness`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadyStatus {
    Ready,
    NotReady,
}

/// `GET /ready` answer: `200 {"status":"ready"}`, or 503 with `not_ready`
/// naming each thing that is not (`registry`, `store`, `shutting_down`,
/// `registration`), each with why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Readiness {
    pub status: ReadyStatus,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_ready: Vec<String>,
}

impl Readiness {
    /// Ready when `not_ready` is empty.
    pub fn of(not_ready: Vec<String>) -> Self {
        Readiness {
            status: if not_ready.is_empty() {
                ReadyStatus::Ready
            } else {
                ReadyStatus::NotReady
            },
            not_ready,
        }
    }
}

impl Health {
    /// The controller's answer.
    pub fn controller() -> Self {
        Health {
            status: HealthStatus::Healthy,
            service: "crank-controller".into(),
            worker_id: None,
            uptime_s: None,
            store: None,
            registration: None,
            detail: None,
        }
    }
}
