//! A worker's side of the protocol: the [`RegistrationActor`](registration::RegistrationActor)
//! registers the worker and starts the [`HeartbeatActor`](heartbeat::HeartbeatActor),
//! which keeps it alive; both reach their controller through the
//! [`ControllerLink`](link::ControllerLink) trait, so no HTTP, no TLS and no
//! registry is compiled in (the worker library supplies the HTTPS link, the
//! tests an in-memory controller).
//!
//! | file | holds |
//! |---|---|
//! | [`registration`] | [`RegistrationActor`](registration::RegistrationActor), the registration state, shutdown |
//! | [`heartbeat`] | [`HeartbeatActor`](heartbeat::HeartbeatActor): jittered beats with the measured load |
//! | [`link`] | [`ControllerLink`](link::ControllerLink): what a controller answers, as the actors need it |
//! | [`backoff`] | [`Backoff`](backoff::Backoff): capped exponential retries with full jitter |

// The same guard as the registry's: see docs/reliability.md.
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
pub mod heartbeat;
pub mod link;
pub mod registration;

#[cfg(test)]
mod testing;
#[cfg(test)]
mod worker_tests;
