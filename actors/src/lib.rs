//! crank's domain: the wire protocol ([`wire`]), validated domain values
//! ([`domain`]), the controller's [`RegistryActor`](registry::RegistryActor) and
//! [`StalenessSweeper`](sweeper::StalenessSweeper), and the worker's
//! [`RegistrationActor`](registration::RegistrationActor) and
//! [`HeartbeatActor`](heartbeat::HeartbeatActor), and the [`WatchHub`](watch::WatchHub)
//! that fans the registry's changes out to watchers. No HTTP and no TLS live here;
//! the worker actors reach their controller through the
//! [`ControllerLink`](link::ControllerLink) trait.

pub mod backoff;
pub mod domain;
pub mod heartbeat;
pub mod link;
pub mod registration;
pub mod registry;
pub mod sweeper;
pub mod watch;
pub mod wire;

#[cfg(test)]
mod testing;
#[cfg(test)]
mod worker_tests;
