//! What every crank process stands on: mutual TLS and peer identity, the
//! HTTP server and client, request bodies and the one table from error to
//! status, the configuration framework, metrics plumbing, SSE, signals.
//! Nothing here knows the registry, a worker's actors or the controller.
//!
//! | module | holds |
//! |---|---|
//! | [`tls`], [`identity`], [`caller`], [`certs`], [`cert_files`], [`bundle`], [`service_ids`] | certificates, who a peer is, what it may act for |
//! | [`server`], [`connections`], [`on_demand`], [`https`] | the mTLS server with its limits, and the HTTPS client |
//! | [`body`], [`error`], [`fallback`] | JSON bodies in, errors out (one table from error to status and code) |
//! | [`config`] | each setting declared once: file < env < flags |
//! | [`metrics`] | OpenMetrics exposition, request and transport metrics |
//! | [`sse`] | the one Server-Sent Events codec |
//! | [`process`] | start errors, shutdown signals, the open-file limit |

pub mod body;
pub mod bundle;
pub mod caller;
pub mod cert_files;
pub mod certs;
pub mod config;
pub mod connections;
pub mod error;
pub mod fallback;
pub mod https;
pub mod identity;
pub mod metrics;
pub mod on_demand;
pub mod process;
pub mod server;
pub mod service_ids;
pub mod sse;
pub mod tls;
