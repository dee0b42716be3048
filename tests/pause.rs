//! A paused controller (SIGSTOP for longer than `stale_after`) with real `crank`
//! processes: on resume the silence it sees is its own, so live workers are not
//! judged stale, while a worker that really died meanwhile still goes stale and
//! is evicted once the grace period is over.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{eventually, free_port, path_str, Fleet, Proc};
use crank_proto::wire::{RouteRequest, WorkerList, WorkerStatus};
use nix::sys::signal::Signal;

/// `stale_after / 2` (the controller's is 2 s): how long workers silent since before the pause stay
/// suspect, and routed to, after the controller resumes.
const GRACE: Duration = Duration::from_secs(1);
const EVICT_AFTER: Duration = Duration::from_secs(1);

/// A controller stale after 2 s (advising a 500 ms heartbeat), sweeping every
/// 100 ms, evicting 1 s after stale.
fn start_controller(fleet: &mut Fleet) -> Proc {
    let port = fleet.controller_port.to_string();
    let cert_dir = fleet.cert_dir();
    fleet.spawn(
        "controller",
        &[
            "controller",
            "--cert-dir",
            path_str(&cert_dir),
            "--port",
            &port,
            "--stale-after",
            "2s",
            "--sweep-interval",
            "100ms",
            "--evict-after",
            "1s",
        ],
    )
}

#[actix_rt::test]
async fn a_paused_controller_keeps_live_workers_and_still_expires_a_dead_one() {
    let mut fleet = Fleet::new();
    let controller = start_controller(&mut fleet);
    let ids: Vec<String> = (1..=5).map(|i| format!("hello-world-{i}")).collect();
    let mut workers = BTreeMap::new();
    for id in &ids {
        fleet.issue_worker(id);
        // Configured for 30 s: they beat at the controller's advice, 500 ms.
        workers.insert(id.clone(), fleet.start_worker(id, free_port(), "30s"));
    }
    eventually(
        "five workers are healthy",
        Duration::from_secs(20),
        || async {
            let workers = fleet.workers().await?;
            (workers.len() == 5 && workers.iter().all(|w| w.status == WorkerStatus::Healthy))
                .then_some(())
        },
    )
    .await;
    let (live, dead) = (&ids[..4], ids[4].clone());

    // Stopped for twice stale_after; one worker dies meanwhile.
    controller.signal(Signal::SIGSTOP);
    actix_rt::time::sleep(Duration::from_secs(1)).await;
    workers.remove(&dead).unwrap().signal(Signal::SIGKILL);
    actix_rt::time::sleep(Duration::from_secs(3)).await;
    let resumed = Instant::now();
    controller.signal(Signal::SIGCONT);

    // From resume on: no live worker is ever stale, and no route answers
    // 404. Before grace periods, the sweep on resume marked every worker
    // stale (a log line each, the dead one at once), and each stayed stale
    // until its next heartbeat landed: here within milliseconds, as the
    // heartbeats sent during the pause wait in the socket and are answered on
    // resume; after a pause longer than the workers' 5 s call timeout, up to
    // a heartbeat interval later, with routes answering 404 meanwhile.
    // The dead worker is suspect (still routed to) during the grace period,
    // then stale, then evicted.
    let client = fleet.client("client");
    let workers_url = format!("{}/workers", fleet.controller_url());
    let route_url = format!("{}/route", fleet.controller_url());
    let route = RouteRequest::new("invoke", "hello.greet");
    let mut dead_seen: Vec<(Duration, Option<WorkerStatus>)> = Vec::new();
    let mut live_healthy_at = None;
    let deadline = resumed + Duration::from_secs(10);
    let evicted_at = loop {
        let reply = common::get(&client, &workers_url).await.unwrap();
        let at = resumed.elapsed();
        assert_eq!(reply.status, 200, "{reply}");
        let listed = reply.json::<WorkerList>().workers;
        for id in live {
            let worker = listed
                .iter()
                .find(|w| &w.worker_id == id)
                .unwrap_or_else(|| panic!("{id} is not listed {at:?} after resume"));
            assert_ne!(
                worker.status,
                WorkerStatus::Stale,
                "live worker {id} stale {at:?} after resume: {worker:?}"
            );
        }
        let all_healthy = live.iter().all(|id| {
            listed
                .iter()
                .any(|w| &w.worker_id == id && w.status == WorkerStatus::Healthy)
        });
        if all_healthy {
            live_healthy_at.get_or_insert(at);
        }
        let reply = common::post(&client, &route_url, &route).await.unwrap();
        assert_eq!(reply.status, 200, "a route {at:?} after resume: {reply}");
        let status = listed
            .iter()
            .find(|w| w.worker_id == dead)
            .map(|w| w.status);
        if dead_seen.last().map(|(_, s)| *s) != Some(status) {
            dead_seen.push((at, status));
        }
        if status.is_none() {
            break at;
        }
        assert!(
            Instant::now() < deadline,
            "{dead} was not evicted within 10 s of resume: {dead_seen:?}"
        );
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    };
    eprintln!(
        "after resume: {dead} {dead_seen:?}; every live worker healthy from {live_healthy_at:?}"
    );

    // The dead worker: suspect first, stale only once the grace period is
    // over, then evicted.
    assert_eq!(
        dead_seen.first().map(|(_, s)| *s),
        Some(Some(WorkerStatus::Suspect)),
        "{dead} is suspect on resume: {dead_seen:?}"
    );
    let stale_at = dead_seen
        .iter()
        .find(|(_, s)| *s == Some(WorkerStatus::Stale))
        .map(|(at, _)| *at)
        .unwrap_or_else(|| panic!("{dead} was never seen stale: {dead_seen:?}"));
    assert!(
        stale_at >= GRACE,
        "{dead} stale {stale_at:?} after resume, within the grace period: {dead_seen:?}"
    );
    assert!(
        evicted_at >= stale_at + EVICT_AFTER.mul_f64(0.9),
        "evicted {evicted_at:?} after resume, stale at {stale_at:?}: {dead_seen:?}"
    );

    // The live workers have beaten since: healthy, not suspect.
    eventually(
        "the four live workers are healthy",
        Duration::from_secs(3),
        || async {
            let listed = fleet.workers().await?;
            (listed.len() == 4 && listed.iter().all(|w| w.status == WorkerStatus::Healthy))
                .then_some(())
        },
    )
    .await;

    // One warning about the pause, not one line per worker: the only worker
    // the log calls stale is the dead one.
    let log = controller.log_text();
    let lines =
        |needle: &str| -> Vec<&str> { log.lines().filter(|l| l.contains(needle)).collect() };
    assert_eq!(
        lines("the controller was not running for").len(),
        1,
        "one warning about the pause:\n{log}"
    );
    let stale_lines = lines(" is stale");
    assert_eq!(stale_lines.len(), 1, "{log}");
    assert!(
        stale_lines[0].contains(&format!("worker {dead} is stale")),
        "{log}"
    );
    assert!(lines("more workers are stale").is_empty(), "{log}");
    assert!(lines("of the fleet would be stale").is_empty(), "{log}");
    assert_eq!(lines("evicted worker").len(), 1, "{log}");
    assert!(lines("evicted worker")[0].contains(&dead), "{log}");
}
