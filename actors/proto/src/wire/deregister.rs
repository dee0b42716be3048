//! `DELETE /deregister/{worker_id}`: a worker leaves (also answered for an
//! unknown id, as the original controller does); and `POST
//! /drain/{worker_id}`, which comes before it when the worker stops
//! gracefully (its query is the same [`DeregisterQuery`]).

use serde::{Deserialize, Serialize};

/// The `status` of a deregistration answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeregisterStatus {
    Deregistered,
}

/// `DELETE /deregister/{worker_id}?instance=…`: the optional instance that
/// asks. A deregistration naming an instance that is no longer the registered
/// one removes nothing and is answered 409 `superseded`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeregisterQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
}

/// `DELETE /deregister/{worker_id}` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeregisterResponse {
    pub status: DeregisterStatus,
    pub worker_id: String,
}

/// The `status` of a drain answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DrainStatus {
    Draining,
}

/// `POST /drain/{worker_id}` answer: no new routes go to the worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrainResponse {
    pub status: DrainStatus,
    pub worker_id: String,
}
