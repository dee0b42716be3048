//! The worker library: any actix-web service becomes a crank worker.
//!
//! Declare the capabilities and mount the resources that serve them; the
//! library brings the rest:
//!
//! - mutual TLS from the cert directory: callers need a certificate of the
//!   fleet's CA, and handlers learn who called with the
//!   [`Caller`] extractor;
//! - registration with the controller and heartbeats (the
//!   [`RegistrationActor`](crank_agent::registration::RegistrationActor) and
//!   its `HeartbeatActor`), retried with backoff for as long as the worker runs;
//! - the load each heartbeat reports, measured by middleware around each
//!   capability's resources: requests in flight, and per window p50/p95
//!   latency and error rate ([`CapabilityLoad`](crank_proto::wire::CapabilityLoad));
//! - `GET /health`, and crank's JSON 404 and 405;
//! - graceful shutdown: on SIGTERM or SIGINT it deregisters, then stops serving;
//! - configuration as `crank worker` reads it, file < environment < flags,
//!   with the same keys ([`WorkerConfig`](crate::config::WorkerConfig)).
//!
//! `examples/echo_worker.rs`, which docs/libraries.md shows:
//!
//! ```no_run
//! use actix_web::{web, HttpResponse};
//! use crank_worker::{ApiJson, Caller, Capability, Worker};
//! use serde_json::{json, Value};
//!
//! /// `POST /echo`: the JSON it was sent, and the caller's identity.
//! async fn echo(caller: Caller, ApiJson(body): ApiJson<Value>) -> HttpResponse {
//!     HttpResponse::Ok().json(json!({"echo": body, "caller": caller.0.to_string()}))
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     Worker::new("echo")
//!         .serve(Capability::new("invoke", "echo.say", "1.0.0"), || {
//!             web::resource("/echo").route(web::post().to(echo))
//!         })
//!         .main()
//! }
//! ```
//!
//! | file | what |
//! |---|---|
//! | [`builder`] | [`Worker`]: the capabilities, their resources, the app |
//! | [`command`] | [`Worker::main`]: the whole program, `crank worker`'s flags |
//! | [`run`] | [`Worker::run`]: serve, register, heartbeat, deregister |
//! | [`context`] | [`WorkerContext`]: id, registration, uptime, load; `/health` |
//! | [`measure`] | [`Measure`](measure::Measure): the middleware that measures each capability |
//! | [`idempotency`], [`replays`] | `Idempotency-Key`: the middleware and the answers it keeps |
//! | [`meter`] | [`CapabilityMeter`]: one capability's in-flight count and latency window |

pub mod builder;
pub mod command;
pub mod config;
pub mod context;
mod drain;
pub mod failover;
#[cfg(feature = "fault-injection")]
pub mod fault;
pub mod hello;
pub mod idempotency;
pub mod link;
pub mod measure;
pub mod meter;
pub mod metrics;
pub mod replays;
pub mod run;
pub mod stream;

pub use builder::{Worker, DEFAULT_CAPACITY};
pub use context::WorkerContext;
pub use meter::CapabilityMeter;

/// What a handler needs most, from where it lives: the capability type, the
/// caller's identity, and a JSON body with crank's errors (400, 413, 415).
pub use crank_net::body::ApiJson;
pub use crank_net::caller::Caller;
pub use crank_proto::wire::Capability;
