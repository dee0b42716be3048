//! The worker lifecycle with real `crank` processes over mTLS: register, heartbeat,
//! route, graceful and ungraceful exits, controller outages and restarts.

mod common;
#[path = "common/tls_peers.rs"]
mod tls_peers;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{eventually, free_port, Fleet};
use nix::sys::signal::Signal;
use serde_json::json;

const GREET: &str = "invoke:hello.greet";

fn route_body() -> serde_json::Value {
    json!({"verb": "invoke", "capability": "hello.greet"})
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
        || async {
            fleet
                .worker("hello-world-1")
                .await
                .filter(|w| w["is_healthy"] == true)
        },
    )
    .await;
    assert_eq!(listed["status"], "healthy");
    assert_eq!(listed["worker_url"], format!("https://localhost:{port}"));
    assert_eq!(listed["capabilities"], json!([GREET]));

    let (status, capabilities) = fleet.get("/capabilities").await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        capabilities["capabilities"][GREET],
        json!({"workers": 1, "healthy_workers": 1})
    );

    let (status, route) = fleet.post("/route", route_body()).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(route["worker_id"], "hello-world-1");
    assert_eq!(route["worker_url"], format!("https://localhost:{port}"));
    assert_eq!(route["capability"], GREET);

    let first = listed["last_heartbeat"].as_str().unwrap().to_owned();
    eventually(
        "last_heartbeat advances",
        Duration::from_secs(5),
        || async {
            let now = fleet.worker("hello-world-1").await?;
            (now["last_heartbeat"].as_str()? > first.as_str()).then_some(())
        },
    )
    .await;

    // The worker's own HTTPS server answers the routed URL.
    let (status, greeting) = common::fetch(
        &tls_peers::worker_client(&fleet.cert_dir(), "client", "hello-world-1"),
        "POST",
        &format!("{}/greet", route["worker_url"].as_str().unwrap()),
        Some(json!({"message": "crank"})),
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
    assert_eq!(greeting["greeting"], "Hello, crank!");
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
    eventually("the worker process exits", Duration::from_secs(10), || {
        let exited = worker.exited();
        async move { exited.then_some(()) }
    })
    .await;
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
        fleet
            .worker("hello-world-1")
            .await
            .filter(|w| w["is_healthy"] == true)
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
                .filter(|w| w["status"] == "stale")
        },
    )
    .await;
    assert_eq!(stale["is_healthy"], false);
    let (status, body) = fleet.post("/route", route_body()).await.unwrap();
    assert_eq!(status, 404);
    assert_eq!(body["error"], "no_worker_available");

    let _replacement = fleet.start_worker("hello-world-1", port, "200ms");
    eventually(
        "the replacement makes the id healthy again",
        Duration::from_secs(15),
        || async {
            fleet
                .worker("hello-world-1")
                .await
                .filter(|w| w["is_healthy"] == true)
        },
    )
    .await;
    let (status, route) = fleet.post("/route", route_body()).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(route["worker_id"], "hello-world-1");
}

#[actix_rt::test]
async fn a_worker_serves_without_its_controller_and_registers_once_it_starts() {
    let mut fleet = Fleet::new();
    let port = free_port();
    let _worker = fleet.start_worker("hello-world-1", port, "200ms");
    let client = tls_peers::worker_client(&fleet.cert_dir(), "client", "hello-world-1");
    let url = format!("https://localhost:{port}/greet");
    let greeting = eventually(
        "the worker serves /greet with no controller",
        Duration::from_secs(10),
        || async {
            common::fetch(&client, "POST", &url, Some(json!({"message": "alone"})))
                .await
                .ok()
        },
    )
    .await;
    assert_eq!(greeting.0, 200);
    assert_eq!(greeting.1["greeting"], "Hello, alone!");
    let (_, health) = common::fetch(
        &client,
        "GET",
        &format!("https://localhost:{port}/health"),
        None,
    )
    .await
    .unwrap();
    assert_eq!(health["registration"], "registering");

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
            let (_, health) = common::fetch(
                &client,
                "GET",
                &format!("https://localhost:{port}/health"),
                None,
            )
            .await
            .ok()?;
            (health["registration"] == "registered").then_some(())
        },
    )
    .await;
}

#[actix_rt::test]
async fn after_a_controller_restart_every_worker_registers_again_on_its_own() {
    let mut fleet = Fleet::new();
    // stale_after 4 s: the controller advises a 1 s heartbeat. The workers are
    // configured for 30 s, so only that advice can bring them back in time.
    let controller = fleet.start_controller("4s");
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
    let _controller = fleet.start_controller("4s");
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

#[actix_rt::test]
async fn nine_routes_over_three_workers_hit_each_three_times() {
    let mut fleet = Fleet::new();
    let _controller = fleet.start_controller("5s");
    let mut workers = Vec::new();
    for id in ["hello-world-1", "hello-world-2", "hello-world-3"] {
        fleet.issue_worker(id);
        workers.push(fleet.start_worker(id, free_port(), "200ms"));
    }
    eventually(
        "three healthy providers",
        Duration::from_secs(15),
        || async {
            let (_, body) = fleet.get("/capabilities").await.ok()?;
            (body["capabilities"][GREET]["healthy_workers"] == 3).then_some(())
        },
    )
    .await;
    let mut hits: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..9 {
        let (status, route) = fleet.post("/route", route_body()).await.unwrap();
        assert_eq!(status, 200);
        *hits
            .entry(route["worker_id"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    let expected: BTreeMap<String, usize> = ["hello-world-1", "hello-world-2", "hello-world-3"]
        .map(|id| (id.to_owned(), 3))
        .into();
    assert_eq!(hits, expected);
}
