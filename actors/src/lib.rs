//! crank's domain: the wire protocol, the controller's `RegistryActor` and
//! `StalenessSweeper`, and the worker's `RegistrationActor` and `HeartbeatActor`.
//! No HTTP and no TLS live here; the worker actors reach their controller through
//! the `ControllerLink` trait.

pub mod backoff;
pub mod heartbeat;
pub mod link;
pub mod registration;
pub mod registry;
pub mod sweeper;
pub mod wire;

#[cfg(test)]
mod testing;
#[cfg(test)]
mod worker_tests;
