//! `ControllerLink` is how the worker-side actors reach their controller. In
//! production it is HTTPS with mutual TLS (`crank_worker::link`); in actor tests
//! it is an in-memory controller. Futures are `'static` and not `Send` because each
//! link lives on the actor's own thread, as awc's client does.

use futures_util::future::LocalBoxFuture;

use crank_proto::wire::{HeartbeatRequest, RegisterRequest, RegisterResponse};

/// Why a call to the controller failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// The controller answered `404 unknown_worker`: it restarted or evicted us.
    #[error("the controller does not know this worker")]
    UnknownWorker,
    /// Another process registered this worker id since: this instance no
    /// longer speaks for the record.
    #[error("another process registered this worker id since; this instance was replaced")]
    Superseded,
    /// The controller answered, but refused the request.
    #[error("the controller refused the request with HTTP {status}: {detail}")]
    Rejected { status: u16, detail: String },
    /// The controller asked to come back later (`429`, or `503` with
    /// `Retry-After`): the next attempt waits at least `retry_after`.
    #[error("the controller asked to retry after {retry_after:?}: {detail}")]
    Throttled {
        retry_after: std::time::Duration,
        detail: String,
    },
    /// The controller could not be reached (connection, TLS, DNS).
    #[error("the controller is unreachable: {0}")]
    Unreachable(String),
    /// The controller did not answer in time.
    #[error("the controller did not answer within {0:?}")]
    Timeout(std::time::Duration),
}

/// The three calls a worker makes to its controller.
pub trait ControllerLink {
    fn register(
        &self,
        request: RegisterRequest,
    ) -> LocalBoxFuture<'static, Result<RegisterResponse, LinkError>>;

    fn heartbeat(
        &self,
        request: HeartbeatRequest,
    ) -> LocalBoxFuture<'static, Result<(), LinkError>>;

    /// Deregisters `worker_id` on behalf of `instance` (the process that
    /// registered it, if it named itself).
    fn deregister(
        &self,
        worker_id: &str,
        instance: Option<&str>,
    ) -> LocalBoxFuture<'static, Result<(), LinkError>>;

    /// Where the controller is, for log lines.
    fn describe(&self) -> String;
}
