//! The wire protocol (v1): every JSON body controller, workers and clients
//! exchange, as serde types that the writer and every reader share.
//!
//! The shapes are a superset of the original Python controller's API, so a worker
//! written against that API works unchanged. These types say what is on the wire
//! and nothing more: turning an untrusted request into a value the registry can
//! trust is [`crate::domain`]'s job.
//!
//! | file | bodies |
//! |---|---|
//! | [`capability`] | [`Capability`], the routing key [`capability_key`] |
//! | [`register`] | [`RegisterRequest`], [`RegisterResponse`] |
//! | [`heartbeat`] | [`HeartbeatRequest`], [`Load`] and its [`CapabilityLoad`]s, both answers as [`HeartbeatAnswer`] |
//! | [`deregister`] | [`DeregisterResponse`] |
//! | [`route`] | [`RouteRequest`] with its [`SloConstraints`], [`RouteResponse`] |
//! | [`report`] | [`ReportRequest`], [`ReportResponse`]: how a call to a worker went |
//! | [`fleet`] | [`WorkerList`], [`WorkerDetail`], [`CapabilityList`], [`Stats`], [`Health`], [`Readiness`] |
//! | [`watch`] | `GET /watch`: [`WatchSnapshot`], [`WatchEvent`], [`Resync`] |
//! | [`error`] | [`ErrorBody`], every error answer |
//! | [`replica`] | [`ReplicatedWorker`], [`ControllerAnnouncement`]: what controllers share through etcd |

pub mod answer_load;
pub mod capability;
pub mod deregister;
pub mod error;
pub mod fleet;
pub mod heartbeat;
pub mod idempotency;
pub mod register;
pub mod replica;
pub mod report;
pub mod route;
pub mod slo;
mod timestamp;
pub mod watch;

pub use answer_load::{AnswerLoad, CRANK_LOAD_HEADER};
pub use capability::{capability_key, Capability};
pub use deregister::{
    DeregisterQuery, DeregisterResponse, DeregisterStatus, DrainResponse, DrainStatus,
};
pub use error::ErrorBody;
pub use fleet::{
    CapabilityCount, CapabilityList, Health, HealthStatus, Readiness, ReadyStatus, Stats,
    WorkerDetail, WorkerList, WorkerStatus, WorkerSummary,
};
pub use heartbeat::{
    CapabilityLoad, HeartbeatAnswer, HeartbeatRequest, HeartbeatStatus, Load, HEARTBEAT_OK_BODY,
};
pub use idempotency::{IDEMPOTENCY_KEY_HEADER, IDEMPOTENT_REPLAY_HEADER};
pub use register::{RegisterRequest, RegisterResponse, RegisterStatus};
pub use replica::{ControllerAnnouncement, ReplicatedWorker};
pub use report::{Outcome, ReportRequest, ReportResponse, ReportStatus};
pub use route::{RouteRequest, RouteResponse, SloConstraints};
pub use slo::{SloList, SloStatus};
pub use watch::{Resync, SnapshotReason, WatchEvent, WatchKind, WatchSnapshot};
