//! crank's one typed protocol, shared by every crate that speaks it.
//!
//! - [`wire`]: every JSON body of protocol v1 as a serde type, for writers and
//!   readers alike (lenient readers of the original system's shapes).
//! - [`domain`]: what an untrusted body becomes once parsed (`TryFrom`), every
//!   value bounded, so nothing past the HTTP edge checks it again.
//!
//! No actor, HTTP or TLS crate: the worker and client libraries use this
//! without the registry, and the registry without HTTP.

// Parsing is where peer values are bounded, so it must not panic on any:
// the same guard as the registry's (docs/reliability.md).
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

pub mod domain;
pub mod wire;
