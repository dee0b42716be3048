//! [`Snapshots`]: the fleet snapshots watch streams start from, shared by the
//! watchers that start at the same point within a moment. A hundred browsers
//! (or five hundred bench watchers) connecting at once then cost the registry
//! one walk and the controller one serialized snapshot in memory, not one each.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::web::Bytes;
use crank_proto::wire::watch::SNAPSHOT_EVENT;
use crank_proto::wire::{SnapshotReason, WatchSnapshot};
use crank_registry::watch::{Subscription, WatchHub};
use crank_registry::Snapshot;

use crate::metrics::RegistryMailbox;
use crate::views;
use crank_net::error::ApiError;
use crank_net::sse::frame;

/// How long a snapshot is shared: heartbeats are not changes, so a shared
/// snapshot's heartbeat times are at most this old.
pub const SHARED_FOR: Duration = Duration::from_secs(1);

/// A snapshot as sent: the SSE message, the change it runs to, and when.
#[derive(Clone)]
struct Taken {
    reason: SnapshotReason,
    last_event_id: u64,
    at: Instant,
    message: Bytes,
}

/// See the [module](self) docs.
#[derive(Default)]
pub struct Snapshots {
    /// One at a time asks the registry; the others wait and share its answer.
    asking: tokio::sync::Mutex<()>,
    latest: Mutex<Vec<Taken>>,
}

impl Snapshots {
    pub fn new() -> Arc<Self> {
        Arc::new(Snapshots::default())
    }

    fn shared(&self, reason: SnapshotReason, last_event_id: u64) -> Option<Bytes> {
        let latest = self.latest.lock().unwrap_or_else(|e| e.into_inner());
        latest
            .iter()
            .find(|t| {
                t.reason == reason
                    && t.last_event_id == last_event_id
                    && t.at.elapsed() < SHARED_FOR
            })
            .map(|t| t.message.clone())
    }

    fn keep(&self, taken: Taken) {
        let mut latest = self.latest.lock().unwrap_or_else(|e| e.into_inner());
        latest.retain(|t| t.reason != taken.reason);
        latest.push(taken);
    }

    /// Subscribes to `hub`, then the snapshot message to send first: every
    /// change after the returned id reaches the subscription, and those up to
    /// it (which the snapshot includes) are to be skipped.
    pub async fn take(
        &self,
        hub: &WatchHub,
        registry: &RegistryMailbox,
        reason: SnapshotReason,
    ) -> Result<(Subscription, u64, Bytes), ApiError> {
        let subscription = hub.subscribe();
        let _asking = self.asking.lock().await;
        // Read after subscribing: changes after this id reach the subscription.
        let last_event_id = hub.last_id();
        if let Some(message) = self.shared(reason, last_event_id) {
            return Ok((subscription, last_event_id, message));
        }
        let fleet = registry.send(Snapshot).await?;
        let snapshot = WatchSnapshot {
            reason,
            last_event_id: fleet.last_event_id,
            workers: fleet
                .workers
                .into_iter()
                .map(views::worker_summary)
                .collect(),
        };
        let body = serde_json::to_string(&snapshot).expect("a snapshot serializes");
        let mut message = String::with_capacity(body.len() + 48);
        frame(
            &mut message,
            SNAPSHOT_EVENT,
            Some(fleet.last_event_id),
            &body,
        );
        let message = Bytes::from(message);
        self.keep(Taken {
            reason,
            last_event_id: fleet.last_event_id,
            at: Instant::now(),
            message: message.clone(),
        });
        Ok((subscription, fleet.last_event_id, message))
    }
}
