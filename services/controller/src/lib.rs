//! crank's controller: the actix-web handlers over the registry (a thin
//! layer: parse, authorize, one message, answer), the watch stream, the
//! dashboard, the controller's metrics, active health checks, probes, and the
//! cluster store (feature `etcd`). It never depends on the worker or client
//! libraries.
//!
//! | module | holds |
//! |---|---|
//! | [`controller`] | the app: one handler per endpoint |
//! | [`views`] | domain answers to wire bodies |
//! | [`controller_state`], [`registry_host`] | the registry, its hub and metrics, started once per process |
//! | [`watch`], [`ui`] | `GET /watch` (SSE) and the dashboard |
//! | [`metrics`] | what the controller counts, and its `GET /metrics` |
//! | [`protection`] | who may call what and how much: access policy, rate limits, SLO shedding |
//! | [`checker`], [`readiness`] | active health checks of workers; `/health` and `/ready` |
//! | [`file_store`] | the durable embedded store: a checksummed log and snapshots in a data directory |
//! | [`cluster`] | the etcd store: writer, watcher, session |
//! | [`config`], [`process`] | `crank controller`'s settings and wiring |

pub mod checker;
pub mod cluster;
pub mod config;
pub mod controller;
pub mod controller_state;
pub mod file_store;
pub mod metrics;
pub mod process;
pub mod protection;
pub mod readiness;
pub mod registry_host;
pub mod tracing;
pub mod ui;
pub mod views;
pub mod watch;
