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

use awc::http::StatusCode;
use crank_proto::wire::report::{Outcome, ReportRequest};
use crank_proto::wire::AnswerLoad;
use tokio::time::Instant;

use super::error::retry_after;
use super::fleet::traced;
use super::{CallOutcome, CrankClient};

/// Until when reports are paused, after a `429`; shared with the tasks that
/// read the answers.
#[derive(Debug, Clone, Default)]
pub(crate) struct ReportPause(Rc<Cell<Option<Instant>>>);

impl ReportPause {
    fn paused(&self, now: Instant) -> bool {
        self.0.get().is_some_and(|until| now < until)
    }
}

impl CrankClient {
    /// Tells the controller how the attempt went, unless reports are paused.
    /// A controller that does not know the endpoint answers 404, which
    /// changes nothing.
    pub(super) fn report(&self, outcome: &CallOutcome) {
        if self.report_pause.paused(Instant::now()) {
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
        let pause = self.report_pause.clone();
        actix_rt::spawn(async move {
            let Ok(mut answer) = sent.await else {
                return;
            };
            if answer.status() == StatusCode::TOO_MANY_REQUESTS {
                if let Some(wait) = retry_after(answer.headers()) {
                    pause.0.set(Some(Instant::now() + wait));
                }
            }
            // Read to the end, so the connection goes back to the pool.
            let _ = answer.body().await;
        });
    }
}
