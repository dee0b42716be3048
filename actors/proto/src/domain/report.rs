//! [`CallReport`]: a checked [`ReportRequest`].

use std::time::Duration;

use super::load::latency_ms;
use super::{FieldError, WorkerId};
use crate::wire::{Outcome, ReportRequest};

/// How a caller's call to a worker went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallReport {
    pub worker_id: WorkerId,
    pub success: bool,
    pub latency: Option<Duration>,
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
        };
        assert_eq!(
            CallReport::try_from(&request).unwrap_err().field,
            "latency_ms"
        );
    }
}
