//! crank's domain: the wire protocol ([`wire`]), validated domain values
//! ([`domain`]), the controller's [`RegistryActor`](registry::RegistryActor) and
//! [`StalenessSweeper`](sweeper::StalenessSweeper), and the worker's
//! [`RegistrationActor`](registration::RegistrationActor) and
//! [`HeartbeatActor`](heartbeat::HeartbeatActor), and the [`WatchHub`](watch::WatchHub)
//! that fans the registry's changes out to watchers. No HTTP and no TLS live here;
//! the worker actors reach their controller through the
//! [`ControllerLink`](link::ControllerLink) trait.

// Nothing a peer sends may panic the core (see `supervision`): outside tests,
// no unwrap/expect (a `None` from a peer value is an error to answer), no
// indexing that can be out of bounds (use `get`), no `panic!`, and no
// `Duration::from_secs_f64`/`mul_f64` family (they panic on values a peer can
// send; clippy.toml lists them). Each is explained in the README.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic,
        clippy::disallowed_methods
    )
)]
#![cfg_attr(test, allow(clippy::disallowed_methods))]

pub mod backoff;
pub mod domain;
pub mod heartbeat;
pub mod link;
pub mod registration;
pub mod registry;
pub mod supervision;
pub mod sweeper;
pub mod watch;
pub mod wire;

#[cfg(test)]
mod testing;
#[cfg(test)]
mod worker_tests;
