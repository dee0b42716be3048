//! The worker lifecycle with real `crank` processes over mTLS: register, heartbeat,
//! route, graceful and ungraceful exits, controller outages and restarts.

mod common;
#[path = "common/tls_peers.rs"]
mod tls_peers;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{eventually, free_port, greeting, Fleet};
use crank_proto::wire::{
    CapabilityCount, CapabilityList, ErrorBody, Health, RouteRequest, RouteResponse, WorkerStatus,
};
use crank_worker::hello::GreetResponse;
use nix::sys::signal::Signal;

const GREET: &str = "invoke:hello.greet";

fn route_greet() -> RouteRequest {
    RouteRequest::new("invoke", "hello.greet")
}

#[actix_rt::test]
async fn a_worker_registers_heartbeats_and_is_routable() {
    let mut fleet = Fleet::new();
    let _controller = fleet.start_controller("5s");
    let port = free_port();
    let _worker = fleet.start_worker("hello-world-1", port, "200ms");

    let listed = eventually(
        "the worker is listed healthy",
        Duration::from_secs(15),
        || async { fleet.worker("hello-world-1").await.filter(|w| w.is_healthy) },
    )
    .await;
    assert_eq!(listed.status, WorkerStatus::Healthy);
    assert_eq!(listed.worker_url, format!("https://localhost:{port}"));
    assert_eq!(listed.capabilities, [GREET]);

    let reply = fleet.get("/capabilities").await.unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.json::<CapabilityList>().capabilities[GREET],
        CapabilityCount {
            workers: 1,
            healthy_workers: 1
        }
    );

    let reply = fleet.post("/route", &route_greet()).await.unwrap();
    assert_eq!(reply.status, 200);
    let route: RouteResponse = reply.json();
    assert_eq!(route.worker_id, "hello-world-1");
    assert_eq!(route.worker_url, format!("https://localhost:{port}"));
    assert_eq!(route.capability, GREET);

    let first = listed.last_heartbeat;
    eventually(
        "last_heartbeat advances",
        Duration::from_secs(5),
        || async {
            let now = fleet.worker("hello-world-1").await?;
            (now.last_heartbeat > first).then_some(())
        },
    )
    .await;

    // The worker's own HTTPS server answers the routed URL.
    let reply = common::post(
        &tls_peers::worker_client(&fleet.cert_dir(), "client", "hello-world-1"),
        &format!("{}/greet", route.worker_url),
        &greeting("crank"),
    )
    .await
    .unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json::<GreetResponse>().greeting, "Hello, crank!");
}

#[actix_rt::test]
async fn sigterm_deregisters_before_the_worker_exits() {
    let mut fleet = Fleet::new();
    let _controller = fleet.start_controller("30s");
    let mut worker = fleet.start_worker("hello-world-1", free_port(), "200ms");
    eventually(
        "the worker is registered",
        Duration::from_secs(15),
        || async { fleet.worker("hello-world-1").await },
    )
    .await;

    worker.signal(Signal::SIGTERM);
    worker.exits_within(Duration::from_secs(10)).await;
    // It exited; with a 30 s stale timeout only its own deregistration can have
    // removed it by now.
    let workers = fleet.workers().await.expect("the controller answers");
    assert!(workers.is_empty(), "still listed after exit: {workers:?}");
    assert!(worker.log_text().contains("deregistered from controller"));
}

#[actix_rt::test]
async fn sigkill_makes_a_worker_stale_and_a_new_one_with_its_id_revives_it() {
    let mut fleet = Fleet::new();
    let _controller = fleet.start_controller("1s");
    let port = free_port();
    let worker = fleet.start_worker("hello-world-1", port, "200ms");
    eventually("the worker is healthy", Duration::from_secs(15), || async {
        fleet.worker("hello-world-1").await.filter(|w| w.is_healthy)
    })
    .await;

    worker.signal(Signal::SIGKILL);
    drop(worker);
    let stale = eventually(
        "the killed worker turns stale",
        Duration::from_secs(10),
        || async {
            fleet
                .worker("hello-world-1")
                .await
                .filter(|w| w.status == WorkerStatus::Stale)
        },
    )
    .await;
    assert!(!stale.is_healthy);
    let reply = fleet.post("/route", &route_greet()).await.unwrap();
    assert_eq!(reply.status, 404);
    assert_eq!(reply.json::<ErrorBody>().error, "no_worker_available");

    let _replacement = fleet.start_worker("hello-world-1", port, "200ms");
    eventually(
        "the replacement makes the id healthy again",
        Duration::from_secs(15),
        || async { fleet.worker("hello-world-1").await.filter(|w| w.is_healthy) },
    )
    .await;
    let reply = fleet.post("/route", &route_greet()).await.unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json::<RouteResponse>().worker_id, "hello-world-1");
}

#[actix_rt::test]
async fn a_worker_serves_without_its_controller_and_registers_once_it_starts() {
    let mut fleet = Fleet::new();
    let port = free_port();
    let _worker = fleet.start_worker("hello-world-1", port, "200ms");
    let client = tls_peers::worker_client(&fleet.cert_dir(), "client", "hello-world-1");
    let url = format!("https://localhost:{port}/greet");
    let reply = eventually(
        "the worker serves /greet with no controller",
        Duration::from_secs(10),
        || async { common::post(&client, &url, &greeting("alone")).await.ok() },
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json::<GreetResponse>().greeting, "Hello, alone!");
    let health_url = format!("https://localhost:{port}/health");
    let health: Health = common::get(&client, &health_url).await.unwrap().json();
    assert_eq!(health.registration.as_deref(), Some("registering"));

    let _controller = fleet.start_controller("5s");
    eventually(
        "the worker registers after the controller starts",
        Duration::from_secs(10),
        || async { fleet.worker("hello-world-1").await },
    )
    .await;
    // The controller lists it as soon as it answered; the worker knows a moment later.
    eventually(
        "the worker's /health says registered",
        Duration::from_secs(5),
        || async {
            let health: Health = common::get(&client, &health_url).await.ok()?.json();
            (health.registration.as_deref() == Some("registered")).then_some(())
        },
    )
    .await;
}

#[actix_rt::test]
async fn after_a_controller_restart_every_worker_registers_again_on_its_own() {
    let mut fleet = Fleet::new();
    // stale_after 4 s: the controller advises a 1 s heartbeat. The workers are
    // configured for 30 s, so only that advice can bring them back in time.
    // The in-memory store: the restarted controller knows no worker, and each
    // finds out at its next heartbeat's 404 (the durable store's restart, with
    // nothing to find out, is tests/file_store.rs).
    let controller = fleet.start_controller_with("4s", &["--store", "memory"]);
    let mut workers = Vec::new();
    for id in ["hello-world-1", "hello-world-2", "hello-world-3"] {
        fleet.issue_worker(id);
        workers.push(fleet.start_worker(id, free_port(), "30s"));
    }
    eventually(
        "three workers are registered",
        Duration::from_secs(15),
        || async { fleet.workers().await.filter(|w| w.len() == 3) },
    )
    .await;

    controller.signal(Signal::SIGKILL);
    drop(controller);
    let _controller = fleet.start_controller_with("4s", &["--store", "memory"]);
    eventually(
        "the new controller answers",
        Duration::from_secs(10),
        || async { fleet.get("/health").await.ok() },
    )
    .await;
    // Two advised heartbeat intervals, plus a second for four processes on two cores.
    eventually(
        "every worker is registered again",
        Duration::from_secs(3),
        || async { fleet.workers().await.filter(|w| w.len() == 3) },
    )
    .await;
}

/// Who nine routes of `strategy` (`None`: the controller's default) hand out.
async fn nine_routes(fleet: &Fleet, strategy: Option<&str>) -> BTreeMap<String, usize> {
    let mut hits: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..9 {
        let request = RouteRequest {
            strategy: strategy.map(str::to_owned),
            ..route_greet()
        };
        let reply = fleet.post("/route", &request).await.unwrap();
        assert_eq!(reply.status, 200);
        *hits
            .entry(reply.json::<RouteResponse>().worker_id)
            .or_default() += 1;
    }
    hits
}

#[actix_rt::test]
async fn nine_round_robin_routes_over_three_workers_hit_each_three_times() {
    let mut fleet = Fleet::new();
    let _controller = fleet.start_controller("5s");
    let mut workers = Vec::new();
    let ids = ["hello-world-1", "hello-world-2", "hello-world-3"];
    for id in ids {
        fleet.issue_worker(id);
        workers.push(fleet.start_worker(id, free_port(), "200ms"));
    }
    eventually(
        "three healthy providers",
        Duration::from_secs(15),
        || async {
            let list: CapabilityList = fleet.get("/capabilities").await.ok()?.json();
            (list.capabilities.get(GREET)?.healthy_workers == 3).then_some(())
        },
    )
    .await;
    let expected: BTreeMap<String, usize> = ids.map(|id| (id.to_owned(), 3)).into();
    assert_eq!(nine_routes(&fleet, Some("round_robin")).await, expected);
    // The default weighs load: these idle workers report none in flight, and a
    // heartbeat landing mid-burst resets one's estimate, so the split may be
    // uneven, but each is handed at least the routes it is due and wins.
    let spread = nine_routes(&fleet, None).await;
    assert!(
        ids.iter()
            .all(|id| spread.get(*id).is_some_and(|n| *n >= 1)),
        "{spread:?}"
    );
}
