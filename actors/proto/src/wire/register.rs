//! `POST /register`: a worker announces itself and what it serves.

use serde::{Deserialize, Serialize};

use super::Capability;

/// `POST /register` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegisterRequest {
    pub worker_id: String,
    pub worker_url: String,
    pub capabilities: Vec<Capability>,
    /// This worker process's instance: a random token fixed for the life of
    /// the process, so the controller can tell a restarted process from the
    /// one it replaced. Workers of the original system send none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// How the controller learns it is alive: `"heartbeat"` (the default: it
    /// sends heartbeats) or `"active"` (it cannot: the controller calls its
    /// `GET /health` at the heartbeat interval instead, as Consul's checks do).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<String>,
}

/// The `status` of a successful registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegisterStatus {
    Registered,
}

/// `POST /register` answer. The original controller answers only
/// `{"status": "registered"}`, so everything else is optional to a reader.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegisterResponse {
    pub status: RegisterStatus,
    #[serde(default)]
    pub worker_id: String,
    #[serde(default)]
    pub capabilities_registered: usize,
    /// How often the controller advises this worker to heartbeat (`stale_after / 4`).
    #[serde(default)]
    pub heartbeat_interval_s: Option<f64>,
    #[serde(default)]
    pub stale_after_s: Option<f64>,
}
