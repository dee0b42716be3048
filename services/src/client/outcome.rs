//! [`CallOutcome`] and [`OutcomeSink`]: what became of each attempt of a
//! [`CrankClient::call`](super::CrankClient::call), and where it goes.
//!
//! This is the hook for reporting outcomes to the controller, so that routing
//! can learn which providers fail their callers. The controller has no
//! `POST /report` yet, so nothing is sent anywhere by default: a client
//! reports only to the sink it is given
//! ([`CrankClient::on_outcome`](super::CrankClient::on_outcome)). Once the
//! endpoint exists, a sink that posts each outcome there is all that is needed.

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
