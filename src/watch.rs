//! `crank watch`: the registry's changes as they happen (`GET /watch`), one
//! line each, or with `--json` each message's body as sent (a
//! [`WatchSnapshot`], a [`WatchEvent`] or a [`Resync`]). When the connection
//! drops it reconnects, as a browser's `EventSource` does, resuming after the
//! last id it saw. A controller with no `/watch` (the original system's) is
//! polled instead: `GET /workers` every [`POLL_INTERVAL`], its changes
//! printed in the same form.

use std::time::Duration;

use anyhow::{Context, Result};
use crank_controller::watch::{SseMessage, SseParser};
use crank_proto::wire::watch::{RESYNC_EVENT, SNAPSHOT_EVENT};
use crank_proto::wire::{Resync, WatchEvent, WatchKind, WatchSnapshot, WorkerList, WorkerSummary};
use futures_util::StreamExt;

use crate::client::{Client, NoSuchStream};

/// How long to wait before reconnecting after the stream ended.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);
/// How often a controller without `/watch` is polled.
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// Runs until interrupted, or until the controller cannot be reached at all.
pub async fn watch(client: Client) -> Result<()> {
    let mut last_id: Option<String> = None;
    let mut connected_once = false;
    loop {
        let response = client.stream("/watch", last_id.as_deref()).await;
        let mut response = match response {
            Ok(response) => response,
            Err(e) if !connected_once && e.downcast_ref::<NoSuchStream>().is_some() => {
                return poll(client).await;
            }
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

/// Watches a controller that has no `/watch` by polling `GET /workers`.
async fn poll(client: Client) -> Result<()> {
    eprintln!(
        "! the controller has no /watch (the original system?); polling /workers every {} s",
        POLL_INTERVAL.as_secs()
    );
    let mut previous: Option<Vec<WorkerSummary>> = None;
    loop {
        match client.get::<WorkerList>("/workers").await {
            Ok(list) => {
                for line in poll_lines(previous.as_deref(), &list.workers, client.json)? {
                    println!("{line}");
                }
                previous = Some(list.workers);
            }
            Err(e) => eprintln!("! {e:#}; polling again"),
        }
        actix_rt::time::sleep(POLL_INTERVAL).await;
    }
}

/// What a poll prints: the first list as a snapshot, then each change (a
/// worker added, gone, or changed status); with `json` the list whenever it
/// changed.
pub fn poll_lines(
    previous: Option<&[WorkerSummary]>,
    now: &[WorkerSummary],
    json: bool,
) -> Result<Vec<String>> {
    let row = |w: &WorkerSummary| (w.status, w.capabilities.clone());
    let changed = previous.map_or(true, |before| {
        before.len() != now.len()
            || before
                .iter()
                .zip(now)
                .any(|(a, b)| a.worker_id != b.worker_id || row(a) != row(b))
    });
    if !changed {
        return Ok(Vec::new());
    }
    if json {
        return Ok(vec![serde_json::to_string(&WorkerList {
            workers: now.to_vec(),
        })?]);
    }
    let Some(before) = previous else {
        let mut text = format!(
            "= {} worker{} (polled)",
            now.len(),
            if now.len() == 1 { "" } else { "s" }
        );
        for worker in now {
            text.push_str(&format!(
                "\n  {}  {}  {}",
                worker.worker_id,
                worker.status.as_str(),
                worker.capabilities.join(",")
            ));
        }
        return Ok(vec![text]);
    };
    let find = |list: &[WorkerSummary], id: &str| list.iter().find(|w| w.worker_id == id).cloned();
    let mut lines = Vec::new();
    for worker in now {
        match find(before, &worker.worker_id) {
            None => lines.push(format!(
                "+ {} registered ({})",
                worker.worker_id,
                worker.capabilities.join(",")
            )),
            Some(old) if old.status != worker.status => lines.push(format!(
                "~ {} {} ({})",
                worker.worker_id,
                worker.status.as_str(),
                worker.capabilities.join(",")
            )),
            Some(_) => {}
        }
    }
    for worker in before {
        if find(now, &worker.worker_id).is_none() {
            lines.push(format!(
                "- {} gone ({})",
                worker.worker_id,
                worker.capabilities.join(",")
            ));
        }
    }
    Ok(lines)
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
                WatchKind::Stale | WatchKind::Healthy | WatchKind::Owned | WatchKind::Draining => {
                    '~'
                }
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
