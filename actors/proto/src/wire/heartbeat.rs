//! `POST /heartbeat`: a registered worker says it is alive, with its load.

use serde::{Deserialize, Serialize};

/// What a worker reports of its own load with a heartbeat.
///
/// `in_flight` and `capacity` are what every crank worker sends; workers built
/// with crank's worker library add `capabilities`, one [`CapabilityLoad`] per
/// capability they serve. A reader that does not know that field (an older
/// controller, the original system) ignores it, and a worker that does not
/// send it is read with none.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Load {
    pub in_flight: u32,
    pub capacity: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<CapabilityLoad>,
}

impl Load {
    /// A load of `in_flight` requests out of `capacity`, with no per-capability figures.
    pub fn new(in_flight: u32, capacity: u32) -> Self {
        Load {
            in_flight,
            capacity,
            capabilities: Vec::new(),
        }
    }
}

/// One capability's share of a [`Load`], measured over a window: the time since
/// the worker's previous heartbeat. Latencies are to the answer's head (for a
/// stream, its first byte); a request is in flight until its answer's last byte.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CapabilityLoad {
    /// `<verb>:<name>`.
    pub capability: String,
    /// Requests being answered now.
    pub in_flight: u32,
    /// Requests answered in the window.
    pub requests: u64,
    /// Length of the window, in seconds.
    pub window_s: f64,
    /// Median latency in the window, in milliseconds; absent without requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p50_ms: Option<f64>,
    /// 95th percentile latency in the window, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p95_ms: Option<f64>,
    /// Share of the window's requests answered with a server error (5xx) or
    /// not answered at all, from 0 to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_rate: Option<f64>,
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
    fn per_capability_load_is_optional_both_ways() {
        let plain = Load::new(2, 8);
        assert_eq!(
            serde_json::to_string(&plain).unwrap(),
            r#"{"in_flight":2,"capacity":8}"#
        );
        let read: Load = serde_json::from_str(r#"{"in_flight":2,"capacity":8}"#).unwrap();
        assert_eq!(read, plain);
        let measured = Load {
            capabilities: vec![CapabilityLoad {
                capability: "invoke:echo.say".into(),
                in_flight: 1,
                requests: 10,
                window_s: 30.0,
                p50_ms: Some(1.5),
                p95_ms: Some(4.0),
                error_rate: Some(0.1),
            }],
            ..plain
        };
        let text = serde_json::to_string(&measured).unwrap();
        assert_eq!(serde_json::from_str::<Load>(&text).unwrap(), measured);
        // A reader of only the two original fields accepts it.
        #[derive(Deserialize)]
        struct Original {
            in_flight: u32,
            capacity: u32,
        }
        let original: Original = serde_json::from_str(&text).unwrap();
        assert_eq!((original.in_flight, original.capacity), (2, 8));
    }

    #[test]
    fn the_original_controllers_404_reads_as_unknown_worker() {
        let answer: HeartbeatAnswer =
            serde_json::from_str(r#"{"status":"unknown_worker","acknowledged":false}"#).unwrap();
        assert_eq!(answer.status, HeartbeatStatus::UnknownWorker);
    }
}
