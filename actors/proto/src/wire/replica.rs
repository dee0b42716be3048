//! What controllers share through the cluster store: each worker's record
//! ([`ReplicatedWorker`]) and each live controller ([`ControllerAnnouncement`]).
//! They are stored as JSON under the store's prefix; see docs/cluster.md
//! for the keys.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Capability, WorkerStatus};

/// A worker record as the controllers replicate it. Written on registration,
/// deregistration, a change of state (stale, healthy again) or of owner; never
/// on a heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplicatedWorker {
    pub worker_id: String,
    pub worker_url: String,
    pub capabilities: Vec<Capability>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// The identity that registered it.
    pub registered_by: String,
    #[serde(with = "super::timestamp")]
    pub registered_at: DateTime<Utc>,
    /// The controller that judges its liveness: the one it heartbeats to.
    pub owner: String,
    /// Healthy or stale, as its owner last judged it.
    pub status: WorkerStatus,
}

/// A live controller, kept in the store under its session lease: the key
/// disappears when the controller stops renewing it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControllerAnnouncement {
    pub controller_id: String,
    /// Where workers and clients reach it.
    pub url: String,
    #[serde(with = "super::timestamp")]
    pub started_at: DateTime<Utc>,
}
