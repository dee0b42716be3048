//! crank's services: the controller and hello-world actix-web apps, the worker
//! library ([`worker`]) and the client library ([`client`]), mutual TLS, peer
//! identity, the awc `ControllerLink`, configuration and certificates.

pub mod body;
pub mod bundle;
pub mod caller;
pub mod certs;
pub mod checker;
pub mod client;
pub mod cluster;
pub mod config;
pub mod connections;
pub mod controller;
pub mod controller_state;
pub mod error;
pub mod failover;
pub mod fallback;
pub mod hello;
pub mod identity;
pub mod link;
pub mod metrics;
pub mod on_demand;
pub mod process;
pub mod readiness;
pub mod registry_host;
pub mod server;
pub mod service_ids;
pub mod stream;
pub mod tls;
pub mod ui;
pub mod views;
pub mod watch;
pub mod worker;
