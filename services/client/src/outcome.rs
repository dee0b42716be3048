//! [`CallOutcome`] and [`OutcomeSink`]: what became of each attempt of a
//! [`CrankClient::call`](super::CrankClient::call), and where it goes.
//!
//! Every attempt is reported to the controller (`POST /report`), so that
//! routing ejects providers that keep failing their callers; a caller that
//! wants them too gives a sink
//! ([`CrankClient::on_outcome`](super::CrankClient::on_outcome)).

use std::time::Duration;

/// One attempt of a call: which worker it went to, for which capability, how
/// long it took, and whether the worker did its part.
#[derive(Debug, Clone, PartialEq)]
pub struct CallOutcome {
    pub worker_id: String,
    /// `<verb>:<name>` as the route named it.
    pub capability: String,
    /// 1 for the first provider, 2 for the one tried after it failed.
    pub attempt: u8,
    /// The answer's status, if there was an answer.
    pub status: Option<u16>,
    /// Time to the answer's head, or to the failure.
    pub latency: Duration,
    /// Why the worker failed the call (unreachable, not who the route named,
    /// timed out, a 5xx); `None` if it answered, a 4xx included, which is the
    /// request's fault.
    pub failure: Option<String>,
    /// The worker's load as its answer's `crank-load` header stated it.
    pub load: Option<crank_proto::domain::ObservedLoad>,
}

impl CallOutcome {
    /// Whether the worker did its part.
    pub fn succeeded(&self) -> bool {
        self.failure.is_none()
    }
}

/// Receives the [`CallOutcome`] of every attempt a client makes.
pub trait OutcomeSink {
    fn record(&self, outcome: &CallOutcome);
}
