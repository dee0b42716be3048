//! [`CallReport`]: a checked [`ReportRequest`].

use std::time::Duration;

use super::load::{latency_ms, ObservedLoad};
use super::{CapabilityKey, FieldError, WorkerId};
use crate::wire::{Outcome, ReportRequest};

/// How a caller's call to a worker went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallReport {
    pub worker_id: WorkerId,
    pub success: bool,
    pub latency: Option<Duration>,
    /// What the worker's answer said of its load.
    pub load: Option<ObservedLoad>,
    /// The capability called.
    pub capability: Option<CapabilityKey>,
}

impl TryFrom<&ReportRequest> for CallReport {
    type Error = FieldError;

    fn try_from(request: &ReportRequest) -> Result<Self, FieldError> {
        let worker_id = WorkerId::parse("worker_id", &request.worker_id)?;
        let latency = request
            .latency_ms
            .map(|ms| latency_ms("latency_ms", ms))
            .transpose()?;
        Ok(CallReport {
            worker_id,
            success: request.outcome == Outcome::Success,
            latency,
            load: request
                .load
                .as_ref()
                .map(ObservedLoad::try_from)
                .transpose()?,
            capability: request
                .capability
                .as_deref()
                .map(|key| CapabilityKey::parse_key("capability", key))
                .transpose()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_negative_latency_is_refused() {
        let request = ReportRequest {
            worker_id: "w1".into(),
            outcome: Outcome::Failure,
            latency_ms: Some(-1.0),
            load: None,
            capability: None,
        };
        assert_eq!(
            CallReport::try_from(&request).unwrap_err().field,
            "latency_ms"
        );
    }

    #[test]
    fn an_absurd_load_names_its_field() {
        let request = ReportRequest {
            worker_id: "w1".into(),
            outcome: Outcome::Success,
            latency_ms: Some(1.0),
            load: Some(crate::wire::AnswerLoad {
                in_flight: 1,
                capacity: 8,
                service_ms: f64::INFINITY,
            }),
            capability: None,
        };
        assert_eq!(
            CallReport::try_from(&request).unwrap_err().field,
            "load.service_ms"
        );
    }
}
