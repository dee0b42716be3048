//! `crank watch`: the registry's changes as they happen (`GET /watch`), one
//! line each, or with `--json` each message's body as sent (a
//! [`WatchSnapshot`], a [`WatchEvent`] or a [`Resync`]). When the connection
//! drops it reconnects, as a browser's `EventSource` does, resuming after the
//! last id it saw.

use std::time::Duration;

use anyhow::{Context, Result};
use crank_actors::wire::watch::{RESYNC_EVENT, SNAPSHOT_EVENT};
use crank_actors::wire::{Resync, WatchEvent, WatchKind, WatchSnapshot};
use crank_services::watch::{SseMessage, SseParser};
use futures_util::StreamExt;

use crate::client::Client;

/// How long to wait before reconnecting after the stream ended.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

/// Runs until interrupted, or until the controller cannot be reached at all.
pub async fn watch(client: Client) -> Result<()> {
    let mut last_id: Option<String> = None;
    let mut connected_once = false;
    loop {
        let response = client.stream("/watch", last_id.as_deref()).await;
        let mut response = match response {
            Ok(response) => response,
            // Never reached: say why and stop. Reached before: keep trying.
            Err(e) if !connected_once => return Err(e),
            Err(e) => {
                eprintln!("! {e:#}; retrying");
                actix_rt::time::sleep(RECONNECT_AFTER).await;
                continue;
            }
        };
        connected_once = true;
        let mut parser = SseParser::default();
        while let Some(chunk) = response.next().await {
            let Ok(chunk) = chunk else { break };
            for message in parser.feed(&chunk) {
                if message.id.is_some() {
                    last_id = message.id.clone();
                }
                println!("{}", line(&message, client.json)?);
            }
        }
        eprintln!("! the stream ended; reconnecting");
        actix_rt::time::sleep(RECONNECT_AFTER).await;
    }
}

/// What `crank watch` prints for `message`.
pub fn line(message: &SseMessage, json: bool) -> Result<String> {
    let read = || format!("an unreadable {} message: {}", message.event, message.data);
    if json {
        return Ok(message.data.clone());
    }
    Ok(match message.event.as_str() {
        SNAPSHOT_EVENT => {
            let snapshot: WatchSnapshot = serde_json::from_str(&message.data).with_context(read)?;
            let mut text = format!(
                "= {} worker{} ({}, through change {})",
                snapshot.workers.len(),
                if snapshot.workers.len() == 1 { "" } else { "s" },
                serde_json::to_value(snapshot.reason)?
                    .as_str()
                    .unwrap_or_default(),
                snapshot.last_event_id
            );
            for worker in &snapshot.workers {
                text.push_str(&format!(
                    "\n  {}  {}  {}",
                    worker.worker_id,
                    worker.status.as_str(),
                    worker.capabilities.join(",")
                ));
            }
            text
        }
        RESYNC_EVENT => {
            let resync: Resync = serde_json::from_str(&message.data).with_context(read)?;
            format!(
                "! fell behind and missed {} changes; a fresh snapshot follows",
                resync.missed
            )
        }
        _ => {
            let event: WatchEvent = serde_json::from_str(&message.data).with_context(read)?;
            let mark = match event.kind {
                WatchKind::Registered => '+',
                WatchKind::Deregistered => '-',
                WatchKind::Evicted => 'x',
                WatchKind::Stale | WatchKind::Healthy | WatchKind::Owned => '~',
            };
            format!(
                "{mark} {} {} ({})  #{}",
                event.worker_id,
                event.kind.as_str(),
                event.capabilities.join(","),
                event.id
            )
        }
    })
}
