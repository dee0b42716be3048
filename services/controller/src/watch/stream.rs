//! [`Watcher`]: one `GET /watch` stream, from its first snapshot (or the
//! changes it missed) to the end of the connection.
//!
//! The resync rule: a watcher reads its changes from a bounded
//! [`Subscription`]; when it falls more than the hub's backlog behind (the
//! connection is slow, or its reader stopped reading, so actix stopped
//! pulling from this stream), the channel drops what it missed, and the next
//! read says how many. The watcher then sends a [`Resync`] event and a fresh
//! [`WatchSnapshot`](crank_proto::wire::WatchSnapshot), and goes on from there. So what the controller holds for
//! a slow watcher is bounded by the backlog and by one snapshot, and the
//! registry never waits for it.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use actix_web::web::Bytes;
use crank_proto::wire::watch::RESYNC_EVENT;
use crank_proto::wire::{Resync, SnapshotReason};
use crank_registry::watch::{HubEvent, Subscription, WatchHub};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

use super::snapshots::Snapshots;
use crate::metrics::RegistryMailbox;
use crank_net::error::ApiError;
use crank_net::sse::frame;

/// A comment sent when nothing else was for this long, so proxies and
/// clients keep the connection, and a closed one is noticed.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Most bytes of changes sent in one chunk, when many are waiting.
const CHUNK_BYTES: usize = 64 * 1024;
/// How long a browser waits before it reconnects (SSE `retry:`), in ms.
const RECONNECT_MS: u64 = 1000;

/// See the [module](self) docs.
pub struct Watcher {
    hub: Arc<WatchHub>,
    registry: RegistryMailbox,
    snapshots: Arc<Snapshots>,
    subscription: Subscription,
    /// Changes up to this id are in what was already sent (a snapshot).
    sent_through: u64,
    /// What goes out before the next change: the opening, a snapshot.
    pending: VecDeque<Bytes>,
    /// Which capabilities this watcher may see (an enforcing access policy):
    /// `None` shows everything, from the frames encoded once for all.
    visible: Option<Visible>,
}

/// Whether a watcher may see a capability (`verb:name`).
pub type Visible = Arc<dyn Fn(&str) -> bool + Send + Sync>;

impl Watcher {
    /// A stream starting at `last_event_id` if the hub still remembers what
    /// came after it, and at a snapshot otherwise.
    pub async fn start(
        hub: Arc<WatchHub>,
        registry: RegistryMailbox,
        snapshots: Arc<Snapshots>,
        last_event_id: Option<u64>,
    ) -> Result<Self, ApiError> {
        let mut first = format!("retry: {RECONNECT_MS}\n\n");
        let mut pending = VecDeque::new();
        let resumed = last_event_id.and_then(|after| Some((after, hub.resume(after)?)));
        let (subscription, sent_through) = match resumed {
            Some((after, (missed, subscription))) => {
                for event in &missed {
                    push(&mut first, event);
                }
                pending.push_back(Bytes::from(first));
                (subscription, missed.last().map_or(after, |e| e.event.id))
            }
            None => {
                let reason = match last_event_id {
                    Some(_) => SnapshotReason::ResumeUnavailable,
                    None => SnapshotReason::Start,
                };
                let (subscription, through, snapshot) =
                    snapshots.take(&hub, &registry, reason).await?;
                pending.extend([Bytes::from(first), snapshot]);
                (subscription, through)
            }
        };
        Ok(Watcher {
            hub,
            registry,
            snapshots,
            subscription,
            sent_through,
            pending,
            visible: None,
        })
    }

    /// Shows this watcher only the capabilities `visible` admits: workers
    /// and changes with none of them are left out.
    pub fn only(mut self, visible: Visible) -> Self {
        self.visible = Some(visible);
        self
    }

    /// `chunk` as this watcher may see it.
    fn seen(&self, chunk: Bytes) -> Bytes {
        match &self.visible {
            Some(visible) => filter_chunk(&chunk, visible.as_ref()),
            None => chunk,
        }
    }

    /// The next chunk to send; `None` ends the stream.
    pub async fn next_chunk(&mut self) -> Option<Bytes> {
        if let Some(first) = self.pending.pop_front() {
            return Some(self.seen(first));
        }
        let mut out = String::new();
        loop {
            match tokio::time::timeout(KEEP_ALIVE, self.subscription.recv()).await {
                Err(_) => return Some(Bytes::from_static(b": keep-alive\n\n")),
                Ok(Ok(event)) => {
                    // Changes a snapshot already holds are skipped.
                    self.push(&mut out, &event);
                    if !out.is_empty() {
                        break;
                    }
                }
                Ok(Err(RecvError::Lagged(missed))) => {
                    self.resync(missed, &mut out).await?;
                    return self.pending.pop_front().map(|chunk| self.seen(chunk));
                }
                Ok(Err(RecvError::Closed)) => return None,
            }
        }
        // Whatever else is waiting goes in the same chunk: one write for many.
        while out.len() < CHUNK_BYTES {
            match self.subscription.try_recv() {
                Ok(event) => self.push(&mut out, &event),
                Err(TryRecvError::Lagged(missed)) => {
                    self.resync(missed, &mut out).await?;
                    return self.pending.pop_front().map(|chunk| self.seen(chunk));
                }
                Err(TryRecvError::Empty | TryRecvError::Closed) => break,
            }
        }
        Some(self.seen(Bytes::from(out)))
    }

    fn push(&mut self, out: &mut String, event: &HubEvent) {
        if event.event.id > self.sent_through {
            push(out, event);
            self.sent_through = event.event.id;
        }
    }

    /// Tells the watcher it missed `missed` changes (after what `out` holds),
    /// and starts it again from a fresh snapshot: both are queued, `out`
    /// first. `None` if the registry is gone.
    async fn resync(&mut self, missed: u64, out: &mut String) -> Option<()> {
        let body = serde_json::to_string(&Resync { missed }).ok()?;
        frame(out, RESYNC_EVENT, None, &body);
        let (subscription, sent_through, snapshot) = self
            .snapshots
            .take(&self.hub, &self.registry, SnapshotReason::Resync)
            .await
            .ok()?;
        self.subscription = subscription;
        self.sent_through = sent_through;
        self.pending
            .extend([Bytes::from(std::mem::take(out)), snapshot]);
        Some(())
    }
}

/// The SSE messages of `chunk` with only the capabilities `visible` admits:
/// a snapshot's workers and a change's capabilities are narrowed, and those
/// left with none are dropped. Only an enforcing policy pays for this.
fn filter_chunk(chunk: &[u8], visible: &(dyn Fn(&str) -> bool + Send + Sync)) -> Bytes {
    let mut parser = crank_net::sse::SseParser::default();
    let mut out = String::new();
    let narrow = |capabilities: &mut Vec<String>| {
        capabilities.retain(|c| visible(c));
        !capabilities.is_empty()
    };
    for message in parser.feed(chunk) {
        let id = message.id.as_deref().and_then(|id| id.parse::<u64>().ok());
        let body = if message.event == crank_proto::wire::watch::SNAPSHOT_EVENT {
            serde_json::from_str::<crank_proto::wire::WatchSnapshot>(&message.data)
                .ok()
                .and_then(|mut snapshot| {
                    snapshot.workers.retain_mut(|w| narrow(&mut w.capabilities));
                    serde_json::to_string(&snapshot).ok()
                })
        } else if message.event == RESYNC_EVENT {
            Some(message.data.clone())
        } else {
            serde_json::from_str::<crank_proto::wire::WatchEvent>(&message.data)
                .ok()
                .and_then(|mut event| {
                    narrow(&mut event.capabilities).then(|| serde_json::to_string(&event).ok())?
                })
        };
        if let Some(body) = body {
            frame(&mut out, &message.event, id, &body);
        }
    }
    if out.is_empty() {
        // Everything was hidden: a comment keeps the connection's rhythm.
        return Bytes::from_static(b": \n\n");
    }
    Bytes::from(out)
}

/// Appends `event` as an SSE message, encoded once for all watchers.
fn push(out: &mut String, event: &HubEvent) {
    out.push_str(event.encoded(|event, json| {
        let mut message = String::with_capacity(json.len() + 48);
        frame(&mut message, event.kind.as_str(), Some(event.id), json);
        message
    }));
}
