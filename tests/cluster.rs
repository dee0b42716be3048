#![cfg(feature = "etcd")]
//! Several controllers sharing one registry through a real etcd, with real
//! `crank` processes over mTLS: each failure the cluster design promises to
//! survive, shown end to end. Each test starts its own etcd on free ports.

mod common;

use std::time::{Duration, Instant};

use common::etcd::{self, Etcd};
use common::{eventually, free_port, free_ports_in_a_row, Fleet, Proc};
use crank_proto::wire::{
    Health, RouteRequest, RouteResponse, WorkerDetail, WorkerList, WorkerStatus,
};
use nix::sys::signal::Signal;
use serde::de::DeserializeOwned;

/// Beats every 300 ms (the controllers advise no faster: stale_after ≥ 4 s).
const BEAT: &str = "300ms";

fn start_controller(
    fleet: &mut Fleet,
    etcd: &Etcd,
    port: u16,
    stale_after: &str,
    evict_after: &str,
) -> Proc {
    let cert_dir = fleet.cert_dir();
    let port_text = port.to_string();
    fleet.spawn(
        &format!("controller-{port}"),
        &[
            "controller",
            "--cert-dir",
            cert_dir.to_str().unwrap(),
            "--port",
            &port_text,
            "--store",
            "etcd",
            "--etcd-endpoints",
            etcd.client_url(),
            "--stale-after",
            stale_after,
            "--evict-after",
            evict_after,
            "--sweep-interval",
            "100ms",
        ],
    )
}

/// A worker that knows `controllers`, beating to the first it reaches.
fn start_worker(fleet: &mut Fleet, id: &str, controllers: &[u16]) -> Proc {
    fleet.issue_worker(id);
    let urls: Vec<String> = controllers
        .iter()
        .map(|port| format!("https://localhost:{port}"))
        .collect();
    fleet.start_worker_with(id, free_port(), BEAT, &urls.join(","))
}

/// `GET path` on the controller at `port`, read as `T` if it answered 200.
async fn get<T: DeserializeOwned>(fleet: &Fleet, port: u16, path: &str) -> Option<T> {
    let url = format!("https://localhost:{port}{path}");
    let reply = common::get(&fleet.client("client"), &url).await.ok()?;
    (reply.status == 200).then(|| reply.json::<T>())
}

/// The HTTP status of a route for hello.greet through the controller at `port`.
async fn route(fleet: &Fleet, port: u16) -> Option<(u16, Option<RouteResponse>)> {
    let url = format!("https://localhost:{port}/route");
    let reply = common::post(
        &fleet.client("client"),
        &url,
        &RouteRequest::new("invoke", "hello.greet"),
    )
    .await
    .ok()?;
    let chosen = (reply.status == 200).then(|| reply.json::<RouteResponse>());
    Some((reply.status, chosen))
}

/// The status each controller in `ports` shows for `id`, if all list it.
async fn statuses(fleet: &Fleet, ports: &[u16], id: &str) -> Option<Vec<WorkerStatus>> {
    let mut seen = Vec::new();
    for port in ports {
        let list: WorkerList = get(fleet, *port, "/workers").await?;
        seen.push(list.workers.into_iter().find(|w| w.worker_id == id)?.status);
    }
    Some(seen)
}

/// The value of the sample `name` (with its labels) in `GET /metrics` of the
/// controller at `port`.
async fn metric(fleet: &Fleet, port: u16, name: &str) -> Option<f64> {
    let url = format!("https://localhost:{port}/metrics");
    let reply = common::get(&fleet.client("client"), &url).await.ok()?;
    let text = String::from_utf8(reply.body.to_vec()).ok()?;
    common::sample(&text, name)
}

async fn owner(fleet: &Fleet, port: u16, id: &str) -> Option<String> {
    get::<WorkerDetail>(fleet, port, &format!("/workers/{id}"))
        .await?
        .owner
}

/// Waits until each controller in `ports` answers `/health`.
async fn all_answer(fleet: &Fleet, ports: &[u16]) {
    eventually(
        "every controller answers /health",
        Duration::from_secs(20),
        || async {
            for port in ports {
                get::<Health>(fleet, *port, "/health").await?;
            }
            Some(())
        },
    )
    .await;
}

async fn all_healthy_everywhere(fleet: &Fleet, ports: &[u16], ids: &[&str]) {
    eventually(
        "every worker is healthy on every controller",
        Duration::from_secs(20),
        || async {
            for id in ids {
                let seen = statuses(fleet, ports, id).await?;
                if seen.iter().any(|s| *s != WorkerStatus::Healthy) {
                    return None;
                }
            }
            Some(())
        },
    )
    .await;
}

#[actix_rt::test]
async fn a_controller_killed_loses_no_route_and_its_workers_move_to_a_survivor() {
    let mut fleet = Fleet::new();
    let etcd = etcd::start(&fleet).await;
    let ports = [free_port(), free_port(), free_port()];
    let controllers: Vec<Proc> = ports
        .iter()
        .map(|port| start_controller(&mut fleet, &etcd, *port, "4s", "60s"))
        .collect();
    // Every controller answers before the workers start, so none of them
    // fails over at birth and each starts with a different controller.
    all_answer(&fleet, &ports).await;
    let ids = ["w0", "w1", "w2"];
    let _workers: Vec<Proc> = (0..3)
        .map(|i| {
            let order = [ports[i], ports[(i + 1) % 3], ports[(i + 2) % 3]];
            start_worker(&mut fleet, ids[i], &order)
        })
        .collect();
    all_healthy_everywhere(&fleet, &ports, &ids).await;
    // The victim is whichever controller owns w0 (its id names its port).
    let dead_owner = owner(&fleet, ports[1], "w0").await.unwrap();
    let victim = ports
        .iter()
        .position(|port| dead_owner.starts_with(&format!("controller-{port}-")))
        .unwrap_or_else(|| panic!("w0's owner {dead_owner} is one of the three"));

    controllers[victim].signal(Signal::SIGKILL);
    let killed = Instant::now();
    let survivors: Vec<u16> = (0..3).filter(|i| *i != victim).map(|i| ports[i]).collect();
    // Routes through the survivors never fail, and w0 moves to one of them.
    let mut routes = 0;
    let mut moved_after = None;
    while killed.elapsed() < Duration::from_secs(4) {
        for &port in &survivors {
            let (status, chosen) = route(&fleet, port).await.expect("a survivor answers");
            assert_eq!(status, 200, "a route through {port} failed after the kill");
            assert!(ids.contains(&chosen.unwrap().worker_id.as_str()));
            routes += 1;
        }
        if moved_after.is_none() {
            let now = owner(&fleet, survivors[0], "w0").await;
            if now.is_some_and(|o| o != dead_owner) {
                moved_after = Some(killed.elapsed());
            }
        }
    }
    let moved_after = moved_after.expect("w0 was taken over by a survivor");
    assert!(
        moved_after < Duration::from_secs(2),
        "w0 moved after {moved_after:?}, more than a heartbeat interval and a retry"
    );
    // Nothing is lost: both survivors list all three, healthy, with one owner each.
    all_healthy_everywhere(&fleet, &survivors, &ids).await;
    for id in ids {
        let a = owner(&fleet, survivors[0], id).await;
        let b = owner(&fleet, survivors[1], id).await;
        assert_eq!(a, b, "{id} has one owner");
        assert_ne!(a.as_deref(), Some(dead_owner.as_str()));
    }
    eprintln!(
        "{routes} routes after the kill, none failed; w0 owned by a survivor after {moved_after:?}"
    );
}

#[actix_rt::test]
async fn a_worker_that_dies_with_its_controller_is_still_judged_and_evicted() {
    let mut fleet = Fleet::new();
    let etcd = etcd::start(&fleet).await;
    let ports = [free_port(), free_port()];
    let first = start_controller(&mut fleet, &etcd, ports[0], "8s", "3s");
    let _second = start_controller(&mut fleet, &etcd, ports[1], "8s", "3s");
    // It knows only the first controller, and dies with it.
    let worker = start_worker(&mut fleet, "w1", &[ports[0]]);
    all_healthy_everywhere(&fleet, &ports, &["w1"]).await;

    worker.signal(Signal::SIGKILL);
    first.signal(Signal::SIGKILL);
    let died = Instant::now();
    let stale_at = eventually(
        "the survivor judges w1 stale",
        Duration::from_secs(20),
        || async {
            let seen = statuses(&fleet, &ports[1..], "w1").await?;
            (seen[0] == WorkerStatus::Stale).then(|| died.elapsed())
        },
    )
    .await;
    // stale_after (8 s) after its last heartbeat, give or take the session's
    // renewal period (5 s / 3) and a sweep.
    assert!(
        stale_at > Duration::from_secs(6) && stale_at < Duration::from_secs(11),
        "stale after {stale_at:?}"
    );
    let evicted_at = eventually(
        "the survivor evicts w1",
        Duration::from_secs(15),
        || async {
            let list: WorkerList = get(&fleet, ports[1], "/workers").await?;
            list.workers
                .iter()
                .all(|w| w.worker_id != "w1")
                .then(|| died.elapsed())
        },
    )
    .await;
    assert!(
        evicted_at >= stale_at + Duration::from_secs(2),
        "evicted after {evicted_at:?}"
    );
}

#[actix_rt::test]
async fn a_restarted_controller_serves_the_whole_fleet_as_soon_as_it_answers() {
    let mut fleet = Fleet::new();
    let etcd = etcd::start(&fleet).await;
    let ports = [free_port(), free_port()];
    let mut first = start_controller(&mut fleet, &etcd, ports[0], "4s", "60s");
    let _second = start_controller(&mut fleet, &etcd, ports[1], "4s", "60s");
    let _workers = [
        start_worker(&mut fleet, "w1", &ports),
        start_worker(&mut fleet, "w2", &[ports[1], ports[0]]),
    ];
    all_healthy_everywhere(&fleet, &ports, &["w1", "w2"]).await;

    first.signal(Signal::SIGKILL);
    first.exits_within(Duration::from_secs(5)).await;
    let _restarted = start_controller(&mut fleet, &etcd, ports[0], "4s", "60s");
    // Its very first answer already lists the whole fleet.
    let first_list: WorkerList = eventually(
        "the restarted controller answers",
        Duration::from_secs(15),
        || async { get(&fleet, ports[0], "/workers").await },
    )
    .await;
    let mut ids: Vec<&str> = first_list
        .workers
        .iter()
        .map(|w| w.worker_id.as_str())
        .collect();
    ids.sort();
    assert_eq!(ids, ["w1", "w2"]);
    let (status, _) = route(&fleet, ports[0]).await.unwrap();
    assert_eq!(status, 200);
}

#[actix_rt::test]
async fn controllers_ride_out_an_etcd_outage_and_converge_after_it() {
    let mut fleet = Fleet::new();
    let mut etcd = etcd::start(&fleet).await;
    let ports = [free_port(), free_port()];
    let _controllers = [
        start_controller(&mut fleet, &etcd, ports[0], "4s", "60s"),
        start_controller(&mut fleet, &etcd, ports[1], "4s", "60s"),
    ];
    let _w1 = start_worker(&mut fleet, "w1", &[ports[0]]);
    all_healthy_everywhere(&fleet, &ports, &["w1"]).await;

    etcd.stop().await;
    for port in ports {
        eventually(
            "/health says the store is unreachable",
            Duration::from_secs(15),
            || async {
                let health: Health = get(&fleet, port, "/health").await?;
                (health.store.as_deref() == Some("unreachable")).then_some(())
            },
        )
        .await;
    }
    // Routes and heartbeats go on from the replicas, longer than stale_after.
    let outage = Instant::now();
    while outage.elapsed() < Duration::from_secs(5) {
        for port in ports {
            assert_eq!(route(&fleet, port).await.unwrap().0, 200);
        }
        assert_eq!(
            statuses(&fleet, &ports[..1], "w1").await.unwrap(),
            [WorkerStatus::Healthy],
            "w1 heartbeats to its controller, which needs no etcd for that"
        );
        actix_rt::time::sleep(Duration::from_millis(200)).await;
    }
    // A registration meanwhile is accepted, and reconciled when etcd returns.
    let _w2 = start_worker(&mut fleet, "w2", &[ports[0]]);
    eventually(
        "w2 registers during the outage",
        Duration::from_secs(10),
        || async { statuses(&fleet, &ports[..1], "w2").await },
    )
    .await;
    // /metrics says so too, with w2's record waiting to be written.
    eventually(
        "/metrics shows the store unreachable and a write waiting",
        Duration::from_secs(10),
        || async {
            let unreachable = metric(
                &fleet,
                ports[0],
                r#"crank_store_state{state="unreachable"}"#,
            );
            let pending = metric(&fleet, ports[0], "crank_store_pending_writes");
            (unreachable.await? == 1.0 && pending.await? >= 1.0).then_some(())
        },
    )
    .await;
    etcd::restart(&mut etcd).await;
    for port in ports {
        eventually(
            "/health says the store is ok again",
            Duration::from_secs(15),
            || async {
                let health: Health = get(&fleet, port, "/health").await?;
                (health.store.as_deref() == Some("ok")).then_some(())
            },
        )
        .await;
    }
    all_healthy_everywhere(&fleet, &ports, &["w1", "w2"]).await;
    for port in ports {
        eventually(
            "/metrics shows the store ok, nothing waiting, the watch caught up",
            Duration::from_secs(10),
            || async {
                let ok = metric(&fleet, port, r#"crank_store_state{state="ok"}"#).await?;
                let pending = metric(&fleet, port, "crank_store_pending_writes").await?;
                let lag = metric(&fleet, port, "crank_store_watch_lag_revisions").await?;
                let revision = metric(&fleet, port, "crank_store_watch_revision").await?;
                (ok == 1.0 && pending == 0.0 && lag == 0.0 && revision > 0.0).then_some(())
            },
        )
        .await;
    }
}

#[actix_rt::test]
async fn a_worker_flapping_between_controllers_ends_with_one_owner_and_one_record() {
    let mut fleet = Fleet::new();
    let etcd = etcd::start(&fleet).await;
    let ports = [free_port(), free_port()];
    let _controllers = [
        start_controller(&mut fleet, &etcd, ports[0], "4s", "60s"),
        start_controller(&mut fleet, &etcd, ports[1], "4s", "60s"),
    ];
    let _w1 = start_worker(&mut fleet, "w1", &ports);
    all_healthy_everywhere(&fleet, &ports, &["w1"]).await;
    // Heartbeats for w1 land on both controllers in turn, as a worker failing
    // over and back would send them.
    let admin = fleet.client("admin");
    for i in 0..40 {
        let url = format!("https://localhost:{}/heartbeat", ports[i % 2]);
        let beat = crank_proto::wire::HeartbeatRequest {
            worker_id: "w1".into(),
            load: None,
            instance: None,
        };
        let reply = common::post(&admin, &url, &beat).await.unwrap();
        assert_eq!(reply.status, 200, "{reply}");
    }
    // The real worker keeps beating to its first controller: both agree on
    // one owner, and each lists w1 once.
    eventually(
        "both controllers agree on w1's owner",
        Duration::from_secs(10),
        || async {
            let a = owner(&fleet, ports[0], "w1").await?;
            let b = owner(&fleet, ports[1], "w1").await?;
            (a == b).then_some(())
        },
    )
    .await;
    for port in ports {
        let list: WorkerList = get(&fleet, port, "/workers").await.unwrap();
        assert_eq!(
            list.workers.iter().filter(|w| w.worker_id == "w1").count(),
            1
        );
    }
}

#[actix_rt::test]
async fn up_with_three_controllers_serves_the_fleet_from_each_and_stops_everything() {
    let mut fleet = Fleet::new();
    let certs = fleet.dir.path().join("up-certs");
    // Three controllers and three workers.
    let port = free_ports_in_a_row(6);
    let mut up = fleet.spawn(
        "up",
        &[
            "up",
            "--controllers",
            "3",
            "--workers",
            "3",
            "--port",
            &port.to_string(),
            "--cert-dir",
            certs.to_str().unwrap(),
        ],
    );
    let output = eventually(
        "up says 3 workers registered",
        Duration::from_secs(60),
        || {
            let output = up.log_text();
            async move { output.contains("3 workers registered").then_some(output) }
        },
    )
    .await;
    let pids: Vec<nix::unistd::Pid> = output
        .lines()
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            (words.get(1) == Some(&"pid"))
                .then(|| nix::unistd::Pid::from_raw(words[2].parse().unwrap()))
        })
        .collect();
    assert_eq!(
        pids.len(),
        7,
        "etcd, three controllers, three workers: {output}"
    );
    // Every controller answers for the whole fleet.
    let client = {
        let files = crank_net::tls::TlsFiles::in_dir(&certs, "client");
        let config = crank_net::tls::client_config(&files).unwrap();
        crank_net::https::mtls_client(std::sync::Arc::new(config), Duration::from_secs(3))
    };
    for offset in 0..3 {
        let url = format!("https://localhost:{}/workers", port + offset);
        let list: WorkerList = common::get(&client, &url).await.unwrap().json();
        assert_eq!(list.workers.len(), 3, "{url}");
    }
    drop(client);
    up.signal(Signal::SIGINT);
    let status = up.exits_within(Duration::from_secs(40)).await;
    assert!(status.success(), "crank up exited with {status}");
    for pid in pids {
        assert!(
            nix::sys::signal::kill(pid, None).is_err(),
            "child {pid} was left behind"
        );
    }
}

#[actix_rt::test]
async fn a_stopping_worker_waits_until_every_controller_shows_it_draining() {
    let mut fleet = Fleet::new();
    let etcd = etcd::start(&fleet).await;
    let ports = [free_port(), free_port(), free_port()];
    let _controllers: Vec<Proc> = ports
        .iter()
        .map(|port| start_controller(&mut fleet, &etcd, *port, "4s", "60s"))
        .collect();
    all_answer(&fleet, &ports).await;
    let mut worker = start_worker(&mut fleet, "w0", &ports);
    all_healthy_everywhere(&fleet, &ports, &["w0"]).await;

    worker.signal(Signal::SIGTERM);
    let status = worker.exits_within(Duration::from_secs(20)).await;
    assert!(status.success(), "{status:?}\n{}", worker.log_text());
    // Marked at its first controller, seen draining by all three (the other
    // two through etcd) before it deregistered and stopped answering.
    let log = worker.log_text();
    let line_of = |needle: &str| {
        log.lines()
            .position(|line| line.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?} in\n{log}"))
    };
    let confirmed = line_of("worker w0 shows draining on 3 of 3 controllers");
    let drained = line_of("worker w0 drained in");
    let deregistered = line_of("worker w0 deregistered from controller");
    assert!(confirmed < drained && drained < deregistered, "{log}");
    eventually(
        "no controller lists w0 any more",
        Duration::from_secs(10),
        || async {
            for port in ports {
                let list: WorkerList = get(&fleet, port, "/workers").await?;
                if list.workers.iter().any(|w| w.worker_id == "w0") {
                    return None;
                }
            }
            Some(())
        },
    )
    .await;
}
