//! `POST /report`: a caller tells the controller how a call to a worker went,
//! so the controller stops routing to a worker that keeps failing.

use serde::{Deserialize, Serialize};

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    /// No answer, or a server error (5xx).
    Failure,
}

/// `POST /report` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportRequest {
    pub worker_id: String,
    pub outcome: Outcome,
    /// How long the call took, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    /// The worker's load as its answer's `crank-load` header said it
    /// ([`AnswerLoad`](super::AnswerLoad)); absent when it sent none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<super::AnswerLoad>,
    /// `verb:name` of the capability called, for its SLO; absent from older
    /// callers' reports, which then count for no SLO.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capability: Option<String>,
}

/// The `status` of a [`ReportResponse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportStatus {
    Recorded,
}

/// `POST /report` answer: `{"status":"recorded"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportResponse {
    pub status: ReportStatus,
}

impl ReportResponse {
    pub fn recorded() -> Self {
        ReportResponse {
            status: ReportStatus::Recorded,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_reads_with_or_without_latency() {
        let read: ReportRequest =
            serde_json::from_str(r#"{"worker_id":"w1","outcome":"failure"}"#).unwrap();
        assert_eq!(read.outcome, Outcome::Failure);
        assert_eq!(read.latency_ms, None);
        assert_eq!(read.load, None);
        assert_eq!(
            serde_json::to_string(&ReportResponse::recorded()).unwrap(),
            r#"{"status":"recorded"}"#
        );
    }
}
