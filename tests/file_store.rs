//! The durable embedded store (`--store file`, the default) with real
//! processes: a controller killed with SIGKILL and started again answers its
//! first `/workers` with every worker healthy and routes them at once, and
//! no worker is asked to register again; a log cut short by a crash is
//! recovered; a damaged record stops the start and says what to do; a second
//! controller on the same data directory is refused.

mod common;

use std::io::Write;
use std::time::Duration;

use common::{eventually, free_port, path_str, Fleet};
use crank_proto::wire::{RouteRequest, WorkerStatus};
use nix::sys::signal::Signal;

/// `name` in the metrics text: the value of its first sample, or 0.
fn sample(text: &str, name: &str) -> f64 {
    common::sample(text, name).unwrap_or(0.0)
}

#[actix_rt::test]
async fn a_controller_killed_and_restarted_serves_its_whole_fleet_from_the_first_answer() {
    let mut fleet = Fleet::new();
    let mut controller = fleet.start_controller("4s");
    let ids = ["hello-world-1", "hello-world-2", "hello-world-3"];
    let mut workers = Vec::new();
    for id in ids {
        fleet.issue_worker(id);
        workers.push(fleet.start_worker(id, free_port(), "30s"));
    }
    eventually(
        "three workers are healthy",
        Duration::from_secs(20),
        || async {
            let listed = fleet.workers().await?;
            (listed.len() == 3 && listed.iter().all(|w| w.is_healthy)).then_some(())
        },
    )
    .await;

    controller.signal(Signal::SIGKILL);
    // Gone before the next one starts: its lock and port are free.
    controller.exits_within(Duration::from_secs(10)).await;
    drop(controller);
    let _controller = fleet.start_controller("4s");
    // Its first answer: the store was loaded before it listened.
    let first = eventually(
        "the restarted controller answers",
        Duration::from_secs(20),
        || async { fleet.workers().await },
    )
    .await;
    assert_eq!(first.len(), 3, "{first:?}");
    assert!(
        first.iter().all(|w| w.status == WorkerStatus::Healthy),
        "{first:?}"
    );
    let reply = fleet
        .post("/route", &RouteRequest::new("invoke", "hello.greet"))
        .await
        .unwrap();
    assert_eq!(reply.status, 200, "the first route after the restart");
    // Their heartbeats are answered 200: no worker registers again.
    eventually(
        "every worker heartbeats to the new process",
        Duration::from_secs(15),
        || async {
            let metrics = fleet.get("/metrics").await.ok()?;
            let text = String::from_utf8_lossy(&metrics.body).into_owned();
            (sample(&text, "crank_heartbeats_total{outcome=\"ok\"}") >= 3.0).then_some(text)
        },
    )
    .await;
    let metrics = fleet.get("/metrics").await.unwrap();
    let text = String::from_utf8_lossy(&metrics.body).into_owned();
    assert_eq!(
        sample(&text, "crank_heartbeats_total{outcome=\"unknown_worker\"}"),
        0.0
    );
    assert_eq!(
        sample(&text, "crank_registrations_total{outcome=\"new\"}"),
        0.0,
        "{text}"
    );
    let health = fleet.get("/health").await.unwrap();
    assert!(String::from_utf8_lossy(&health.body).contains(r#""store":"file""#));
}

#[actix_rt::test]
async fn a_torn_last_record_is_dropped_and_a_damaged_one_stops_the_start() {
    let mut fleet = Fleet::new();
    let mut controller = fleet.start_controller("4s");
    for id in ["hello-world-1", "hello-world-2"] {
        fleet.issue_worker(id);
    }
    let _w1 = fleet.start_worker("hello-world-1", free_port(), "30s");
    let _w2 = fleet.start_worker("hello-world-2", free_port(), "30s");
    eventually(
        "two workers are registered",
        Duration::from_secs(20),
        || async { fleet.workers().await.filter(|w| w.len() == 2) },
    )
    .await;
    controller.signal(Signal::SIGKILL);
    // Gone before the next one starts: its lock and port are free.
    controller.exits_within(Duration::from_secs(10)).await;
    drop(controller);
    let log = fleet.dir.path().join("state/controller/registry.log");
    let whole = std::fs::read(&log).unwrap();
    assert!(!whole.is_empty());

    // A crash mid-write: half a record at the end.
    let mut torn = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    torn.write_all(&[40, 0, 0, 0, 1, 2, 3]).unwrap();
    drop(torn);
    let mut controller = fleet.start_controller("4s");
    let listed = eventually("it starts on the rest", Duration::from_secs(20), || async {
        fleet.workers().await
    })
    .await;
    assert_eq!(listed.len(), 2);
    assert!(controller.log_text().contains("cut short by a crash"));
    controller.signal(Signal::SIGKILL);
    // Gone before the next one starts: its lock and port are free.
    controller.exits_within(Duration::from_secs(10)).await;
    drop(controller);

    // Damage before the end: the start stops, naming the file and offset.
    let mut bytes = std::fs::read(&log).unwrap();
    bytes[12] ^= 0xff;
    std::fs::write(&log, &bytes).unwrap();
    let mut refused = fleet.start_controller("4s");
    let status = refused.exits_within(Duration::from_secs(20)).await;
    assert!(!status.success());
    let text = refused.log_text();
    assert!(text.contains("registry.log is damaged at byte 0"), "{text}");
    assert!(text.contains("--discard-after-corruption"), "{text}");
    // What the message says works: check names it, repair keeps the rest.
    let data_dir = fleet.dir.path().join("state/controller");
    let (ok, _, err) = common::run_cli(&["store", "check", "--data-dir", path_str(&data_dir)]);
    assert!(!ok && err.contains("damaged at byte 0"), "{err}");
    let (ok, out, err) = common::run_cli(&[
        "store",
        "repair",
        "--discard-after-corruption",
        "--data-dir",
        path_str(&data_dir),
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("dropped"), "{out}");
    let (ok, out, err) = common::run_cli(&["store", "check", "--data-dir", path_str(&data_dir)]);
    assert!(ok, "{err}");
    assert!(out.contains("0 workers, readable"), "{out}");
}

#[actix_rt::test]
async fn a_second_controller_on_the_same_data_directory_is_refused() {
    let mut fleet = Fleet::new();
    let _first = fleet.start_controller("4s");
    eventually("the first answers", Duration::from_secs(20), || async {
        fleet.get("/health").await.ok()
    })
    .await;
    let data_dir = fleet.dir.path().join("state/controller");
    let cert_dir = fleet.cert_dir();
    let port = free_port().to_string();
    let mut second = fleet.spawn(
        "second",
        &[
            "controller",
            "--cert-dir",
            path_str(&cert_dir),
            "--port",
            &port,
            "--data-dir",
            path_str(&data_dir),
        ],
    );
    let status = second.exits_within(Duration::from_secs(20)).await;
    assert!(!status.success());
    let text = second.log_text();
    assert!(
        text.contains("in use by another running controller"),
        "{text}"
    );
}
