//! `POST /heartbeat`: a registered worker says it is alive, with its load.

use serde::{Deserialize, Serialize};

/// What a worker reports of its own load with a heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Load {
    pub in_flight: u32,
    pub capacity: u32,
}

/// `POST /heartbeat` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeartbeatRequest {
    pub worker_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<Load>,
    /// The instance that registered, as in its [`RegisterRequest`](super::RegisterRequest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
}

/// The `status` of a heartbeat answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeartbeatStatus {
    /// 200: the beat was recorded.
    Ok,
    /// 404: the controller does not know the worker (it restarted, or evicted
    /// it); the worker registers again. The original controller's shape, which
    /// workers key their re-registration on.
    UnknownWorker,
    /// 409: another process registered this worker id since (a rolling
    /// restart, or a duplicate id); this instance's beats no longer count and
    /// it stops beating. Only ever sent to a heartbeat that names an instance.
    Superseded,
}

/// Every heartbeat answer: `200 {"status":"ok","acknowledged":true}`,
/// `404 {"status":"unknown_worker","acknowledged":false, "error", "detail"}` and
/// `409 {"status":"superseded", …}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatAnswer {
    pub status: HeartbeatStatus,
    pub acknowledged: bool,
    /// The error code crank adds to a refusal for clients that read `error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// [`HeartbeatAnswer::ok`] serialized: the hottest answer of all, written once
/// rather than built per beat.
pub const HEARTBEAT_OK_BODY: &str = r#"{"status":"ok","acknowledged":true}"#;

impl HeartbeatAnswer {
    pub fn ok() -> Self {
        HeartbeatAnswer {
            status: HeartbeatStatus::Ok,
            acknowledged: true,
            error: None,
            detail: None,
        }
    }

    /// The 404 answer for a worker the controller does not know.
    pub fn unknown_worker(worker_id: &str) -> Self {
        HeartbeatAnswer {
            status: HeartbeatStatus::UnknownWorker,
            acknowledged: false,
            error: Some("unknown_worker".into()),
            detail: Some(format!(
                "worker {worker_id} is not registered; register it again"
            )),
        }
    }
}

impl HeartbeatAnswer {
    /// The 409 answer to an instance that another process replaced.
    pub fn superseded(worker_id: &str, instance: &str) -> Self {
        HeartbeatAnswer {
            status: HeartbeatStatus::Superseded,
            acknowledged: false,
            error: Some("superseded".into()),
            detail: Some(format!(
                "instance {instance} of worker {worker_id} was replaced by a newer registration of that id; stop heartbeating"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_static_ok_body_is_the_serialized_ok_answer() {
        assert_eq!(
            serde_json::to_string(&HeartbeatAnswer::ok()).unwrap(),
            HEARTBEAT_OK_BODY
        );
    }

    #[test]
    fn the_original_controllers_404_reads_as_unknown_worker() {
        let answer: HeartbeatAnswer =
            serde_json::from_str(r#"{"status":"unknown_worker","acknowledged":false}"#).unwrap();
        assert_eq!(answer.status, HeartbeatStatus::UnknownWorker);
    }
}
