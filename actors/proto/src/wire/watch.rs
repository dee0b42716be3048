//! What `GET /watch` streams, as Server-Sent Events: a [`WatchSnapshot`] of the
//! fleet first, then one [`WatchEvent`] per change, and a [`Resync`] when a
//! consumer fell too far behind (a fresh snapshot follows it).
//!
//! Each SSE message's `event:` field is the [`WatchKind`] (or `snapshot`,
//! `resync`), its `id:` field the registry's event id, and its `data:` field one
//! of these bodies as JSON.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::WorkerSummary;

/// The SSE `event:` name of a [`WatchSnapshot`].
pub const SNAPSHOT_EVENT: &str = "snapshot";
/// The SSE `event:` name of a [`Resync`].
pub const RESYNC_EVENT: &str = "resync";

/// What happened to a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WatchKind {
    /// Registered, or registered again (replacing its record).
    Registered,
    Deregistered,
    /// No heartbeat for `stale_after`: no longer routed to.
    Stale,
    /// A stale worker heartbeated again.
    Healthy,
    /// Stale for `evict_after`: removed.
    Evicted,
    /// With the cluster store: another controller took over judging it.
    Owned,
    /// Finishing its calls before it stops: no new routes go to it.
    Draining,
}

impl WatchKind {
    /// Its name, as in the SSE `event:` field.
    pub fn as_str(self) -> &'static str {
        match self {
            WatchKind::Registered => "registered",
            WatchKind::Deregistered => "deregistered",
            WatchKind::Stale => "stale",
            WatchKind::Healthy => "healthy",
            WatchKind::Evicted => "evicted",
            WatchKind::Owned => "owned",
            WatchKind::Draining => "draining",
        }
    }

    /// The kind named `name`, as in the SSE `event:` field.
    pub fn parse(name: &str) -> Option<Self> {
        [
            WatchKind::Registered,
            WatchKind::Deregistered,
            WatchKind::Stale,
            WatchKind::Healthy,
            WatchKind::Evicted,
            WatchKind::Draining,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == name)
    }

    /// Whether the worker is gone from the registry after it.
    pub fn removes(self) -> bool {
        matches!(self, WatchKind::Deregistered | WatchKind::Evicted)
    }
}

/// One change to the registry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WatchEvent {
    /// The registry's event id: 1 for its first change, one more for each
    /// after it, never reused while the controller runs.
    pub id: u64,
    pub kind: WatchKind,
    pub worker_id: String,
    /// Where the worker serves (absent from older controllers' events),
    /// so a client balancing on its own can call it without asking.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_url: Option<String>,
    /// `<verb>:<name>` of each capability the worker serves.
    pub capabilities: Vec<String>,
    /// When the controller published it (wall clock).
    #[serde(with = "super::timestamp")]
    pub at: DateTime<Utc>,
}

/// Why a snapshot was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotReason {
    /// The stream began.
    Start,
    /// The consumer fell behind (a [`Resync`] came before it).
    Resync,
    /// The consumer asked to resume after a `Last-Event-ID` the controller no
    /// longer remembers (or never sent): the fleet as it is now instead.
    ResumeUnavailable,
}

/// The whole fleet at one point of the event stream: every event with an id
/// above [`WatchSnapshot::last_event_id`] follows it; none at or below it does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WatchSnapshot {
    pub reason: SnapshotReason,
    /// The id of the last change the snapshot includes (0: none yet).
    pub last_event_id: u64,
    /// Every worker, ordered by id, as `GET /workers` lists them.
    pub workers: Vec<WorkerSummary>,
}

/// The consumer missed events: it read the stream too slowly, and the
/// controller does not hold a backlog for it past a bound. A fresh
/// [`WatchSnapshot`] follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resync {
    /// How many events it missed.
    pub missed: u64,
}
