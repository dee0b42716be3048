//! crank's services: the controller and hello-world actix-web apps, mutual TLS,
//! peer identity, the awc `ControllerLink`, configuration and certificates.

pub mod body;
pub mod bundle;
pub mod caller;
pub mod certs;
pub mod config;
pub mod connections;
pub mod controller;
pub mod controller_state;
pub mod error;
pub mod fallback;
pub mod hello;
pub mod identity;
pub mod link;
pub mod metrics;
pub mod process;
pub mod server;
pub mod tls;
pub mod ui;
pub mod views;
pub mod watch;
