//! [`CallReport`]: a checked [`ReportRequest`].

use std::time::Duration;

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
            .map(|ms| {
                if ms.is_finite() && (0.0..=86_400_000.0).contains(&ms) {
                    Ok(Duration::from_secs_f64(ms / 1000.0))
                } else {
                    Err(FieldError::new(
                        "latency_ms",
                        format!("{ms} is not a latency in milliseconds (0 to a day)"),
                    ))
                }
            })
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
