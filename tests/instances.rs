//! Two processes with one worker id, as in a rolling restart, with real `crank`
//! processes over mTLS: the record belongs to the newest instance, the old one
//! can neither remove it nor keep it alive.

mod common;
#[path = "common/tls_peers.rs"]
mod tls_peers;

use std::time::{Duration, Instant};

use common::{eventually, free_port, Fleet};
use crank_proto::wire::{ErrorBody, Health, RouteRequest, RouteResponse, WorkerStatus};
use nix::sys::signal::Signal;

const ID: &str = "w1";

fn route_greet() -> RouteRequest {
    RouteRequest::new("invoke", "hello.greet")
}

fn url_of(port: u16) -> String {
    format!("https://localhost:{port}")
}

/// Waits until the controller lists `w1` at `url`.
async fn listed_at(fleet: &Fleet, url: &str, what: &str) {
    eventually(what, Duration::from_secs(15), || async {
        fleet.worker(ID).await.filter(|w| w.worker_url == url)
    })
    .await;
}

/// Asserts `w1` is listed healthy at `url` and `/route` answers `url`.
async fn routes_to(fleet: &Fleet, url: &str, when: &str) {
    let listed = fleet
        .worker(ID)
        .await
        .unwrap_or_else(|| panic!("{when}: {ID} is not listed"));
    assert_eq!(listed.worker_url, url, "{when}: {listed:?}");
    assert_eq!(listed.status, WorkerStatus::Healthy, "{when}: {listed:?}");
    let reply = fleet.post("/route", &route_greet()).await.unwrap();
    assert_eq!(reply.status, 200, "{when}: {reply}");
    assert_eq!(reply.json::<RouteResponse>().worker_url, url, "{when}");
}

#[actix_rt::test]
async fn a_rolling_restart_keeps_the_id_routed_to_the_new_process_when_the_old_one_exits() {
    let mut fleet = Fleet::new();
    fleet.issue_worker(ID);
    // stale_after 20 s: the controller advises a 5 s heartbeat, which the old
    // process follows, so it almost never beats between the new process's
    // registration and its own SIGTERM: what it sends is its deregistration.
    // (Should it beat, it is told it was superseded and sends none; the
    // outcome asserted is the same.) Staleness plays no part in 20 s.
    let controller = fleet.start_controller("20s");
    let (port_a, port_b) = (free_port(), free_port());
    let (url_a, url_b) = (url_of(port_a), url_of(port_b));
    let mut a = fleet.start_worker(ID, port_a, "30s");
    listed_at(&fleet, &url_a, "the old process A is registered").await;

    // B: the same id and certificate, another port, beating every 200 ms.
    let _b = fleet.start_worker(ID, port_b, "200ms");
    listed_at(&fleet, &url_b, "the new process B has replaced A's record").await;

    a.signal(Signal::SIGTERM);
    a.exits_within(Duration::from_secs(10)).await;
    // Before instances, A's deregistration removed w1 here, and w1 was
    // unroutable until B's next registration (27 s in the original report).
    routes_to(&fleet, &url_b, "right after A exited").await;
    // And it stays so: fifteen of B's heartbeats.
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        routes_to(&fleet, &url_b, "after A exited").await;
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }

    let (a_log, controller_log) = (a.log_text(), controller.log_text());
    assert!(
        a_log.contains(&format!("worker {ID} did not deregister")),
        "A must leave the record to B:\n{a_log}"
    );
    assert!(
        !controller_log.contains(&format!("deregistered worker {ID}")),
        "{controller_log}"
    );
    if a_log.contains("says another process registered") {
        eprintln!(
            "A beat before its SIGTERM and learnt it was superseded; it sent no deregistration"
        );
    } else {
        assert!(
            controller_log.contains(&format!("kept worker {ID}: its old instance")),
            "A's deregistration must be refused:\n{controller_log}"
        );
    }
}

#[actix_rt::test]
async fn a_replaced_process_stops_beating_so_a_dead_newer_instance_goes_stale() {
    let mut fleet = Fleet::new();
    fleet.issue_worker(ID);
    // stale_after 2 s: the controller advises a 500 ms heartbeat.
    let controller = fleet.start_controller("2s");
    let (port_a, port_b) = (free_port(), free_port());
    let (url_a, url_b) = (url_of(port_a), url_of(port_b));
    let a = fleet.start_worker(ID, port_a, "200ms");
    listed_at(&fleet, &url_a, "A is registered").await;
    let b = fleet.start_worker(ID, port_b, "200ms");
    listed_at(&fleet, &url_b, "B has replaced A's record").await;
    b.signal(Signal::SIGKILL);
    drop(b);

    // A's next heartbeat names the replaced instance: 409 superseded, and A
    // stops beating, so nobody beats for B's record: it goes stale after
    // stale_after. Before instances, A's beats kept it healthy, and every
    // route went to B's dead URL (12 of 12).
    let stale = eventually(
        "w1 (B's dead record) turns stale",
        Duration::from_secs(10),
        || async {
            fleet
                .worker(ID)
                .await
                .filter(|w| w.status == WorkerStatus::Stale)
        },
    )
    .await;
    assert_eq!(stale.worker_url, url_b, "{stale:?}");
    assert!(!stale.is_healthy);
    for _ in 0..12 {
        let reply = fleet.post("/route", &route_greet()).await.unwrap();
        assert_eq!(reply.status, 404, "no route to the dead URL: {reply}");
        assert_eq!(reply.json::<ErrorBody>().error, "no_worker_available");
    }

    // A says so, in its log and on its /health.
    let a_health = tls_peers::worker_client(&fleet.cert_dir(), "client", ID);
    let health_url = format!("{url_a}/health");
    let superseded = || async {
        let health: Health = common::get(&a_health, &health_url).await.ok()?.json();
        (health.registration.as_deref() == Some("superseded")).then_some(())
    };
    eventually(
        "A's /health says superseded",
        Duration::from_secs(5),
        superseded,
    )
    .await;
    assert!(
        a.log_text().contains(&format!(
            "says another process registered worker id {ID} since"
        )),
        "{}",
        a.log_text()
    );

    // A neither revives the record nor registers over it: three advised
    // heartbeat intervals later, w1 is still B's, still stale.
    let until = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < until {
        let listed = fleet.worker(ID).await.expect("w1 is listed until evicted");
        assert_eq!(listed.status, WorkerStatus::Stale, "{listed:?}");
        assert_eq!(listed.worker_url, url_b, "{listed:?}");
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(superseded().await.is_some(), "A stays out for good");
    let controller_log = controller.log_text();
    assert!(
        controller_log.contains(&format!("heartbeat of worker {ID} from instance"))
            && controller_log.contains("refused"),
        "{controller_log}"
    );
}
