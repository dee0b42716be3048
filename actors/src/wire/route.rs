//! `POST /route`: which worker serves this capability right now?

use serde::{Deserialize, Serialize};

/// `POST /route` body. Unknown fields (the original's `slo_constraints`, …) are
/// accepted and ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteRequest {
    pub verb: String,
    pub capability: String,
    /// A semver requirement such as `^1` or `>=1.2, <2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

impl RouteRequest {
    pub fn new(verb: &str, capability: &str) -> Self {
        RouteRequest {
            verb: verb.to_owned(),
            capability: capability.to_owned(),
            version: None,
        }
    }
}

/// `POST /route` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteResponse {
    pub worker_id: String,
    pub worker_url: String,
    /// `<verb>:<name>`.
    pub capability: String,
    /// The version of the capability the chosen worker serves.
    #[serde(default)]
    pub version: Option<String>,
}
