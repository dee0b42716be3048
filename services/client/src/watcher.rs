//! The task that keeps a local-mode client's [`Providers`] live: it follows
//! `GET /watch` (a snapshot, then every change), resumes after a drop with
//! `Last-Event-ID` on the next controller of the list, and keeps the last
//! known set while no controller answers, so calls go on.
//!
//! It holds the set weakly and ends once the client is gone.

use std::cell::RefCell;
use std::rc::{Rc, Weak};
use std::time::Duration;

use crank_proto::wire::watch::{RESYNC_EVENT, SNAPSHOT_EVENT};
use crank_proto::wire::{WatchEvent, WatchSnapshot};
use futures_util::StreamExt;
use tokio::sync::Notify;

use super::events::events;
use super::providers::Providers;

/// How long to wait before trying the next controller after a drop.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

/// What the client and its watcher share.
#[derive(Default)]
pub struct LocalView {
    pub providers: RefCell<Providers>,
    /// Woken at every snapshot, for the first call waiting on one.
    pub loaded: Notify,
}

/// Follows the watch stream of `controllers` (tried in turn) into `view`
/// until the client drops it.
pub async fn follow(view: Weak<LocalView>, http: awc::Client, controllers: Vec<String>) {
    let mut broken = false;
    for url in controllers.iter().cycle() {
        let Some(last_id) = view.upgrade().map(|v| v.providers.borrow().last_event_id()) else {
            return;
        };
        let mut request = http.get(format!("{url}/watch"));
        if let Some(id) = last_id {
            request = request.insert_header(("Last-Event-ID", id.to_string()));
        }
        match request.send().await {
            Ok(response) if response.status().is_success() => {
                if broken {
                    log::info!("watching {url} again: local balancing follows the fleet");
                    broken = false;
                }
                let mut stream = events(response, format!("{url}/watch"));
                while let Some(Ok(event)) = stream.next().await {
                    let Some(view) = view.upgrade() else { return };
                    apply(&view, event.event.as_deref(), &event.data);
                }
            }
            Ok(response) => log::debug!("{url}/watch answered {}", response.status()),
            Err(error) => log::debug!("{url}/watch: {error}"),
        }
        if !broken {
            log::warn!(
                "lost the watch stream of {url}; calls go on with the last known providers, \
                 and the stream is resumed on the next controller in {} s",
                RECONNECT_AFTER.as_secs()
            );
            broken = true;
        }
        actix_rt::time::sleep(RECONNECT_AFTER).await;
    }
}

/// One message of the stream applied to the view.
fn apply(view: &LocalView, event: Option<&str>, data: &str) {
    match event {
        Some(SNAPSHOT_EVENT) => match serde_json::from_str::<WatchSnapshot>(data) {
            Ok(snapshot) => {
                view.providers.borrow_mut().apply_snapshot(&snapshot);
                view.loaded.notify_waiters();
            }
            Err(error) => log::warn!("an unreadable watch snapshot was ignored: {error}"),
        },
        // A fresh snapshot follows it.
        Some(RESYNC_EVENT) => {}
        Some(_) => match serde_json::from_str::<WatchEvent>(data) {
            Ok(change) => view.providers.borrow_mut().apply_event(&change),
            Err(error) => log::warn!("an unreadable watch event was ignored: {error}"),
        },
        None => {}
    }
}

/// Waits until `view` has a snapshot, or `deadline` passed.
pub async fn loaded(view: &Rc<LocalView>, deadline: Duration) -> bool {
    let wait = async {
        loop {
            let notified = view.loaded.notified();
            if view.providers.borrow().loaded() {
                return;
            }
            notified.await;
        }
    };
    tokio::time::timeout(deadline, wait).await.is_ok()
}
