//! Outcome reports: each attempt of a [`CrankClient::call`], told to the
//! controller (`POST /report`) without waiting for the answer, so that
//! routing ejects a worker that keeps failing its callers.
//!
//! Reports are advice. A controller that refuses one with `429` (the
//! client is over its `--report-rate`) gets no more from this client until
//! the `Retry-After` it named is over: the reports of that time are dropped,
//! not sent again at once, which the controller would hold (its tarpit) on
//! connections the client's routes need.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use awc::http::StatusCode;
use crank_proto::wire::report::{Outcome, ReportRequest};
use crank_proto::wire::AnswerLoad;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::error::retry_after;
use super::fleet::traced;
use super::{CallOutcome, CrankClient};

/// The reports of one client: until when they are paused after a `429`, and
/// how many are still on their way; shared with the tasks that send them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Reports {
    paused_until: Rc<Cell<Option<Instant>>>,
    in_flight: Rc<Cell<usize>>,
    sent: Rc<Notify>,
}

impl Reports {
    fn paused(&self, now: Instant) -> bool {
        self.paused_until.get().is_some_and(|until| now < until)
    }
}

/// One report on its way; dropping it (the task ends) counts it as sent.
struct OnItsWay(Reports);

impl OnItsWay {
    fn new(reports: &Reports) -> Self {
        reports.in_flight.set(reports.in_flight.get() + 1);
        OnItsWay(reports.clone())
    }
}

impl Drop for OnItsWay {
    fn drop(&mut self) {
        let in_flight = &self.0.in_flight;
        in_flight.set(in_flight.get().saturating_sub(1));
        self.0.sent.notify_waiters();
    }
}

impl CrankClient {
    /// Tells the controller how the attempt went, unless reports are paused.
    /// A controller that does not know the endpoint answers 404, which
    /// changes nothing.
    pub(super) fn report(&self, outcome: &CallOutcome) {
        if self.reports_state.paused(Instant::now()) {
            return;
        }
        let report = ReportRequest {
            worker_id: outcome.worker_id.clone(),
            outcome: if outcome.succeeded() {
                Outcome::Success
            } else {
                Outcome::Failure
            },
            latency_ms: Some(outcome.latency.as_secs_f64() * 1000.0),
            load: outcome.load.map(|load| AnswerLoad {
                in_flight: load.in_flight,
                capacity: load.capacity,
                service_ms: load.service_time.as_secs_f64() * 1000.0,
            }),
            capability: (!outcome.capability.is_empty()).then(|| outcome.capability.clone()),
        };
        let sent = traced(
            self.controller
                .post(format!("{}/report", self.controller_url)),
        )
        .send_json(&report);
        let on_its_way = OnItsWay::new(&self.reports_state);
        actix_rt::spawn(async move {
            let Ok(mut answer) = sent.await else {
                return;
            };
            if answer.status() == StatusCode::TOO_MANY_REQUESTS {
                if let Some(wait) = retry_after(answer.headers()) {
                    on_its_way.0.paused_until.set(Some(Instant::now() + wait));
                }
            }
            // Read to the end, so the connection goes back to the pool.
            let _ = answer.body().await;
            drop(on_its_way);
        });
    }

    /// Waits, at most `within`, until every report sent so far has its
    /// answer or has failed: a process about to exit calls it, or the last
    /// call's report is lost with the process.
    pub async fn flush_reports(&self, within: Duration) {
        let state = &self.reports_state;
        let deadline = Instant::now() + within;
        while state.in_flight.get() > 0 {
            let sent = state.sent.notified();
            if state.in_flight.get() == 0 {
                break;
            }
            if tokio::time::timeout_at(deadline, sent).await.is_err() {
                break;
            }
        }
    }
}
