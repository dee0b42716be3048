//! The rule crank chooses a provider by, in one place for the controller's
//! router (`crank-registry`) and for clients that balance on their own
//! (`crank-client`'s local mode), so the two cannot drift.
//!
//! A provider's **expected wait** is its latency estimate times how many
//! rounds of its capacity are ahead of a new call: `latency × max(1,
//! (in_flight + 1) / capacity)`. The latency estimate is a Peak-EWMA
//! ([`PeakEwma`]), as linkerd's and Finagle's balancers
//! keep: a slower answer is taken at once, a faster one pulls the estimate
//! down over [`DECAY`](peak_ewma::DECAY), and an idle provider's estimate
//! decays towards zero, so it is tried again and re-measured.
//!
//! | file | holds |
//! |---|---|
//! | [`ejection`] | [`EJECT_AFTER_FAILURES`](ejection::EJECT_AFTER_FAILURES), [`ejection_length`](ejection::ejection_length): when a failing provider is left out, and how long |
//! | [`peak_ewma`] | [`PeakEwma`]: the latency estimate, fed per answer |
//! | [`wait`] | [`expected_wait`], [`better`]: the comparison a choice makes |

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

pub mod ejection;
pub mod peak_ewma;
pub mod wait;

pub use peak_ewma::PeakEwma;
pub use wait::{better, expected_wait};
