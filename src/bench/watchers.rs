//! [`Watchers`]: many `GET /watch` streams held open on a thread of their own,
//! each checking that it sees every change, in order, with no resync; the
//! `watch` scenario's observers.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crank_controller::watch::SseParser;
use futures_util::StreamExt;
use rustls::ClientConfig;

use super::load::client;

/// What the watchers saw, all together.
#[derive(Debug, Default)]
pub struct Tally {
    /// Streams that began (their snapshot arrived).
    pub connected: AtomicU64,
    /// Streams that could not be opened, or ended early.
    pub failed: AtomicU64,
    /// `registered` events received, across all watchers.
    pub events: AtomicU64,
    /// Watchers that saw all the expected events, in order, with no resync.
    pub complete: AtomicU64,
    /// Events whose id was not the one after the last, across all watchers.
    pub out_of_order: AtomicU64,
    pub resyncs: AtomicU64,
}

impl Tally {
    fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Watchers done one way or another: complete, failed or resynced.
    fn settled(&self) -> u64 {
        Self::get(&self.complete) + Self::get(&self.failed) + Self::get(&self.resyncs)
    }
}

/// See the [module](self) docs.
pub struct Watchers {
    pub tally: Arc<Tally>,
    count: u64,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Watchers {
    /// Opens `count` streams on `base`, each expecting `expected` registrations.
    pub fn start(base: &str, tls: Arc<ClientConfig>, count: usize, expected: u64) -> Self {
        let tally = Arc::new(Tally::default());
        let stop = Arc::new(AtomicBool::new(false));
        let url = format!("{base}/watch");
        let thread = {
            let (tally, stop) = (tally.clone(), stop.clone());
            std::thread::spawn(move || {
                actix_rt::System::new().block_on(async move {
                    let client = client(tls, count);
                    for _ in 0..count {
                        let (client, url, tally) = (client.clone(), url.clone(), tally.clone());
                        actix_rt::spawn(watch_one(client, url, tally, expected));
                    }
                    while !stop.load(Ordering::Relaxed) {
                        actix_rt::time::sleep(Duration::from_millis(50)).await;
                    }
                })
            })
        };
        Watchers {
            tally,
            count: count as u64,
            stop,
            thread: Some(thread),
        }
    }

    /// Waits until every stream began (or failed); false past `deadline`.
    pub fn connected_within(&self, deadline: Duration) -> bool {
        let tally = &self.tally;
        wait(deadline, || {
            Tally::get(&tally.connected) + Tally::get(&tally.failed) >= self.count
        })
    }

    /// Waits until every watcher is complete, failed or resynced; false past
    /// `deadline`.
    pub fn settled_within(&self, deadline: Duration) -> bool {
        wait(deadline, || self.tally.settled() >= self.count)
    }
}

impl Drop for Watchers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn wait(deadline: Duration, done: impl Fn() -> bool) -> bool {
    let started = Instant::now();
    while !done() {
        if started.elapsed() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

async fn watch_one(client: awc::Client, url: String, tally: Arc<Tally>, expected: u64) {
    let count = |counter: &AtomicU64| {
        counter.fetch_add(1, Ordering::Relaxed);
    };
    // 500 handshakes at once on two cores: a few may time out; try again.
    let mut tries = 0;
    let mut stream = loop {
        match client.get(&url).send().await {
            Ok(stream) => break stream,
            Err(_) if tries < 5 => {
                tries += 1;
                actix_rt::time::sleep(Duration::from_millis(200)).await;
            }
            Err(_) => return count(&tally.failed),
        }
    };
    let mut parser = SseParser::default();
    let mut next_id: Option<u64> = None;
    let (mut registered, mut clean) = (0u64, true);
    while let Some(Ok(chunk)) = stream.next().await {
        for message in parser.feed(&chunk) {
            let id = message.id.as_deref().and_then(|id| id.parse::<u64>().ok());
            match message.event.as_str() {
                "snapshot" => {
                    if next_id.is_none() {
                        count(&tally.connected);
                    }
                    next_id = id.map(|id| id + 1);
                }
                "resync" => {
                    clean = false;
                    count(&tally.resyncs);
                }
                kind => {
                    if id.is_none() || id != next_id {
                        clean = false;
                        count(&tally.out_of_order);
                    }
                    next_id = id.map(|id| id + 1);
                    if kind == "registered" {
                        registered += 1;
                        count(&tally.events);
                        if registered == expected && clean {
                            count(&tally.complete);
                        }
                    }
                }
            }
        }
    }
    if registered < expected && clean {
        count(&tally.failed);
    }
}
