//! The controller's registry of workers: who serves what, who is alive, who a
//! route hands out. No HTTP and no TLS: the controller's handlers send its
//! actor messages.
//!
//! | file | answers |
//! |---|---|
//! | [`messages`] | what the [`RegistryActor`] is asked and answers (its public contract) |
//! | [`actor`] | [`RegistryActor`]: one short handler per message, delegating to the core |
//! | [`core`] | [`Registry`]: state and algorithms, synchronous, the clock passed in (its heartbeats and checks in `beats.rs`, its sweep in `sweep.rs`) |
//! | [`index`] | [`CapabilityIndex`]: providers per capability and the round-robin cursor |
//! | [`router`] | which provider a route hands out: filters, strategies, expected wait, ejection |
//! | [`rejection`] | why a provider was skipped, and why a route found none |
//! | [`liveness`] | [`Liveness`]: healthy, suspect or stale, and the grace after a pause or a mass expiry |
//! | [`deadlines`] | [`DeadlineQueue`]: expiry in deadline order, so a sweep costs what expires |
//! | [`record`] | [`WorkerRecord`] and the shared [`CapabilitySet`]s |
//! | [`replication`] | the cluster store's side of the core: replicas applied, owners and orphans |
//! | [`journal`] | [`Journal`](journal::Journal): changes noted for the sinks, with replicas in cluster mode |
//! | [`observe`] | [`Snapshot`] and [`GetGauges`]: what the watch stream and a metrics scrape ask |
//! | [`store`] | [`RegistryEvent`], [`ChangeSink`]: where changes go besides memory (a replicated store, the watch stream) |
//! | [`sweeper`] | [`StalenessSweeper`](sweeper::StalenessSweeper): the tick that marks workers stale and evicts them |
//! | [`watch`] | [`WatchHub`](watch::WatchHub): the registry's changes, numbered, fanned out to watchers |
//!
//! Liveness is measured on the controller's monotonic clock
//! (`actix::clock::Instant`, which a paused tokio clock controls in tests); the
//! RFC 3339 timestamps on the wire are for people and never compared.

// Nothing a peer sends may panic the core (see `crank_supervision`): outside
// tests, no unwrap/expect, no indexing that can be out of bounds, no
// `panic!`, and none of the `Duration` float conversions clippy.toml lists.
// docs/reliability.md says why each is there.
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

pub mod actor;
mod beats;
pub mod core;
pub mod deadlines;
pub mod index;
pub mod journal;
pub mod liveness;
pub mod messages;
pub mod now;
pub mod observe;
pub mod record;
pub mod rejection;
pub mod replication;
pub mod router;
pub mod store;
mod sweep;
pub mod sweeper;
pub mod tally;
pub mod watch;

#[cfg(test)]
mod core_tests;
#[cfg(test)]
mod router_tests;
#[cfg(test)]
mod router_wait_tests;
#[cfg(test)]
mod simulation;
#[cfg(test)]
mod test_clock;
#[cfg(test)]
mod tests;

use std::time::Duration;

use crank_proto::domain::Strategy;

pub use self::actor::RegistryActor;
pub use self::core::{Now, Registry};
pub use self::deadlines::DeadlineQueue;
pub use self::index::CapabilityIndex;
pub use self::liveness::{GraceReason, Liveness};
pub use self::messages::*;
pub use self::observe::{FleetGauges, FleetSnapshot, GetGauges, Snapshot};
pub use self::record::{CapabilitySet, Owner, WorkerRecord};
pub use self::router::NoRoute;
pub use self::store::{ChangeKind, ChangeSink, Origin, RegistryEvent};

/// Default time without a heartbeat after which a worker is stale.
pub const DEFAULT_STALE_AFTER: Duration = Duration::from_secs(120);
/// Default time a worker may stay stale before it is removed.
pub const DEFAULT_EVICT_AFTER: Duration = Duration::from_secs(600);
/// The shortest `stale_after` a controller accepts: its workers are advised
/// to beat every quarter of it, and faster than four times a second is a
/// misconfiguration, not a liveness policy.
pub const MIN_STALE_AFTER: Duration = Duration::from_secs(1);

/// Default share of the fleet that may go stale before the registry suspects
/// itself rather than the workers (see [`liveness`]).
pub const DEFAULT_PROTECT_THRESHOLD: f64 = 0.5;
/// Fleets smaller than this are never protected: one of two workers dying is
/// half the fleet, and no reason to doubt the judge.
pub const MIN_PROTECTED_FLEET: usize = 3;

/// How the registry judges liveness.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RegistrySettings {
    /// No heartbeat for this long makes a worker stale.
    pub stale_after: Duration,
    /// A worker stale for this long is removed; `None` keeps stale workers forever.
    pub evict_after: Option<Duration>,
    /// When more than this share of the fleet would be stale, hold back for a
    /// grace period instead (1.0 never holds back).
    pub protect_threshold: f64,
    /// How routes that name no `strategy` choose.
    pub default_strategy: Strategy,
}

impl Default for RegistrySettings {
    fn default() -> Self {
        RegistrySettings {
            stale_after: DEFAULT_STALE_AFTER,
            evict_after: Some(DEFAULT_EVICT_AFTER),
            protect_threshold: DEFAULT_PROTECT_THRESHOLD,
            default_strategy: Strategy::default(),
        }
    }
}

impl RegistrySettings {
    /// The heartbeat interval the controller advises workers: four heartbeats fit in
    /// one `stale_after`, so a single lost heartbeat never makes a worker stale.
    pub fn advised_heartbeat_interval(&self) -> Duration {
        self.stale_after / 4
    }
}
