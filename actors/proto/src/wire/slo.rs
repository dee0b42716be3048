//! `GET /slos`: each capability's SLO as the controller measures it over
//! its window, from callers' outcome reports.

use serde::{Deserialize, Serialize};

/// One capability's SLO and how it stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SloStatus {
    /// `verb:name`.
    pub capability: String,
    /// Calls reported in the window.
    pub samples: u64,
    pub p95_ms: Option<f64>,
    pub p95_target_ms: Option<f64>,
    pub availability: Option<f64>,
    pub availability_target: Option<f64>,
    /// 1: no failure in the window; 0: the budget is spent.
    pub error_budget_remaining: f64,
    /// Why it breaches, while it does: routes of priority `low` are shed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breach: Option<String>,
}

/// `GET /slos` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SloList {
    pub slos: Vec<SloStatus>,
}
