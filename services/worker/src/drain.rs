//! A stopping worker's graceful drain: marked `draining` at a controller,
//! seen so by every controller it knows, its calls in flight finished, and
//! only then deregistered.
//!
//! Consul, Nacos and linkerd users are told to "add a sleep in preStop"; here
//! the worker waits for what it needs to know instead: that no controller of
//! its list still routes to it, and that the calls routed a moment ago are
//! answered.

use std::time::{Duration, Instant};

use crank_proto::wire::{WorkerDetail, WorkerStatus};

use crate::context::WorkerContext;

/// How often a draining worker looks whether its calls have finished.
const IN_FLIGHT_POLL: Duration = Duration::from_millis(20);
/// How long no call may have arrived before a drained worker deregisters:
/// the calls routed a moment before the drain, and those of local-mode
/// clients that had not yet read the `draining` event, arrive within it.
const QUIET: Duration = Duration::from_millis(250);
/// How often it asks a controller whether it shows the drain yet.
const CONFIRM_POLL: Duration = Duration::from_millis(50);

/// Marks `worker_id` draining at the first of `controllers` (a
/// comma-separated list) that answers; waits until each of them that
/// answers shows it `draining` (in a cluster, the others learn it through the
/// store), then until no call is in flight and none arrived for [`QUIET`];
/// all within `timeout`.
pub(crate) async fn drain(
    client: &awc::Client,
    controllers: &str,
    (worker_id, instance, url): (&str, Option<&str>, &str),
    context: &WorkerContext,
    timeout: Duration,
) {
    let urls: Vec<&str> = controllers
        .split(',')
        .map(|u| u.trim().trim_end_matches('/'))
        .filter(|u| !u.is_empty())
        .collect();
    let started = Instant::now();
    let deadline = started + timeout;
    if !mark(client, &urls, worker_id, instance).await {
        return;
    }
    if urls.len() > 1 {
        confirm(client, &urls, (worker_id, url), deadline).await;
    }
    let in_flight = || context.meters().iter().map(|m| m.in_flight()).sum::<u32>();
    let admitted = || context.meters().iter().map(|m| m.admitted()).sum::<u64>();
    log::info!(
        "worker {worker_id} is draining: no new routes; waiting up to {:?} for {} calls in flight",
        deadline.saturating_duration_since(Instant::now()),
        in_flight()
    );
    // Done when nothing is in flight and nothing arrived for QUIET: a call
    // routed just before the drain may still be on its way.
    let (mut seen, mut quiet_since) = (admitted(), Instant::now());
    while Instant::now() < deadline {
        let now = admitted();
        if now != seen {
            (seen, quiet_since) = (now, Instant::now());
        }
        if in_flight() == 0 && quiet_since.elapsed() >= QUIET {
            break;
        }
        actix_rt::time::sleep(IN_FLIGHT_POLL).await;
    }
    match in_flight() {
        0 => log::info!(
            "worker {worker_id} drained in {:.1} s; deregistering",
            started.elapsed().as_secs_f64()
        ),
        left => log::warn!(
            "worker {worker_id} still had {left} calls in flight after {timeout:?}; deregistering anyway"
        ),
    }
}

/// `POST /drain/{id}` at the first controller that takes it; `false` when
/// none did, or a newer instance of the id serves (nothing to drain).
async fn mark(
    client: &awc::Client,
    urls: &[&str],
    worker_id: &str,
    instance: Option<&str>,
) -> bool {
    let query = instance.map_or_else(String::new, |i| format!("?instance={i}"));
    for url in urls {
        let answer = client
            .post(format!("{url}/drain/{worker_id}{query}"))
            .send()
            .await;
        match answer {
            Ok(mut response) if response.status().is_success() => {
                let _ = response.body().await;
                return true;
            }
            Ok(response) if response.status() == awc::http::StatusCode::CONFLICT => {
                // Replaced by a newer process of this id: it serves on.
                log::info!("worker {worker_id} was replaced by a newer instance: nothing to drain");
                return false;
            }
            Ok(response) => log::warn!(
                "controller {url} did not mark worker {worker_id} draining (HTTP {}); deregistering without a drain",
                response.status()
            ),
            Err(error) => {
                log::warn!("cannot reach controller {url} to drain worker {worker_id}: {error}")
            }
        }
    }
    false
}

/// Failed answers in a row after which a controller is left out of the
/// confirmation (down, or shutting down).
const CONFIRM_FAILURES: u32 = 3;

/// Waits until every controller of `urls` that answers shows `worker_id`
/// draining, or no longer at `url` (a newer process took the id over), or
/// `deadline`; one line says how many did.
async fn confirm(
    client: &awc::Client,
    urls: &[&str],
    (worker_id, url): (&str, &str),
    deadline: Instant,
) {
    let mut pending: Vec<(&str, u32)> = urls.iter().map(|u| (*u, 0)).collect();
    let mut unreachable = 0;
    while !pending.is_empty() && Instant::now() < deadline {
        let mut still = Vec::new();
        for (controller, failures) in pending {
            match shows_draining(client, controller, (worker_id, url)).await {
                Some(true) => {}
                Some(false) => still.push((controller, 0)),
                // Down, or cannot say: once in a row may be a blip; a
                // controller that cannot be reached routes nobody here.
                None if failures + 1 >= CONFIRM_FAILURES => unreachable += 1,
                None => still.push((controller, failures + 1)),
            }
        }
        pending = still;
        if !pending.is_empty() {
            actix_rt::time::sleep(CONFIRM_POLL).await;
        }
    }
    let shown = urls.len() - pending.len() - unreachable;
    if pending.is_empty() {
        log::info!(
            "worker {worker_id} shows draining on {shown} of {} controllers{}",
            urls.len(),
            if unreachable > 0 {
                " (the others unreachable)"
            } else {
                ""
            }
        );
    } else {
        let names: Vec<&str> = pending.iter().map(|(c, _)| *c).collect();
        log::warn!(
            "controllers {} do not show worker {worker_id} draining yet; finishing the drain anyway",
            names.join(", ")
        );
    }
}

/// Whether the controller at `controller` shows `worker_id` draining, or
/// routes nobody to this process at `url` any more (it does not know the id,
/// or knows it at another URL); `None` when it does not answer, or cannot
/// say.
async fn shows_draining(
    client: &awc::Client,
    controller: &str,
    (worker_id, url): (&str, &str),
) -> Option<bool> {
    let mut response = client
        .get(format!("{controller}/workers/{worker_id}"))
        .send()
        .await
        .ok()?;
    if response.status() == awc::http::StatusCode::NOT_FOUND {
        return Some(true);
    }
    if !response.status().is_success() {
        return None;
    }
    let detail: WorkerDetail = response.json().await.ok()?;
    let elsewhere = detail.worker_url.trim_end_matches('/') != url.trim_end_matches('/');
    Some(detail.status == WorkerStatus::Draining || elsewhere)
}
