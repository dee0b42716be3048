//! The worker library's README example, `examples/echo_worker.rs`, as a real
//! process: two replicas on one service certificate register with a real
//! controller, the client library routes to them and calls them over mTLS,
//! their heartbeats carry the load measured per capability, and SIGTERM
//! deregisters them.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::child::Child;
use common::{eventually, free_port, path_str, run_cli, Fleet, CRANK};
use crank_client::{Constraints, CrankClient, Request};
use crank_net::tls::TlsFiles;
use crank_proto::wire::WorkerDetail;
use nix::sys::signal::Signal;
use serde_json::{json, Value};

const EXAMPLE: &str = "echo_worker";

/// The example's binary, next to the `crank` binary the tests run. `cargo
/// test` builds examples; `cargo test --test worker_library` alone does not,
/// so then it is built here, with the cargo that runs the tests.
fn example_binary() -> PathBuf {
    let dir = std::path::Path::new(CRANK).parent().unwrap();
    let binary = dir.join("examples").join(EXAMPLE);
    if !binary.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build.args(["build", "--example", EXAMPLE]);
        if dir.file_name().is_some_and(|name| name == "release") {
            build.arg("--release");
        }
        let status = build.status().unwrap();
        assert!(status.success(), "cargo build --example {EXAMPLE} failed");
    }
    binary
}

/// A replica of the echo worker, `echo.<n>` on the service certificate `echo`.
fn start_replica(fleet: &Fleet, n: u16, port: u16) -> Child {
    let log = fleet.dir.path().join(format!("echo.{n}.log"));
    let out = std::fs::File::create(&log).unwrap();
    let mut command = Command::new(example_binary());
    command
        .args(["--cert-dir", path_str(&fleet.cert_dir())])
        .args(["--cert", "echo", "--worker-id", &format!("echo.{n}")])
        .args(["--port", &port.to_string()])
        .args(["--controller-url", &fleet.controller_url()])
        .args(["--heartbeat-interval", "1s"])
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out);
    Child::spawn(&format!("echo.{n}"), command).unwrap()
}

#[test]
fn the_manual_shows_the_example_as_it_is() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/libraries.md")).unwrap();
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/echo_worker.rs"
    ))
    .unwrap();
    assert!(
        readme.contains(&format!("```rust\n{example}```")),
        "docs/libraries.md's \"Write a worker\" must show examples/echo_worker.rs verbatim"
    );
    let lines = example.lines().filter(|l| !l.trim().is_empty()).count();
    assert!(
        lines <= 20,
        "the example is {lines} lines, not about twenty"
    );
}

#[actix_rt::test]
async fn the_echo_example_registers_serves_over_mtls_reports_load_and_deregisters() {
    let mut fleet = Fleet::new();
    let (ok, _, err) = run_cli(&[
        "certs",
        "issue",
        "--role",
        "service",
        "--name",
        "echo",
        "--dir",
        path_str(&fleet.cert_dir()),
    ]);
    assert!(ok, "{err}");
    let _controller = fleet.start_controller("5s");
    let mut replicas: Vec<Child> = (1..=2)
        .map(|n| start_replica(&fleet, n, free_port()))
        .collect();
    let listed = eventually(
        "both replicas are registered",
        Duration::from_secs(60),
        || async {
            let workers = fleet.workers().await?;
            (workers.iter().filter(|w| w.is_healthy).count() == 2).then_some(workers)
        },
    )
    .await;
    let ids: Vec<&str> = listed.iter().map(|w| w.worker_id.as_str()).collect();
    assert_eq!(ids, ["echo.1", "echo.2"]);
    assert!(listed.iter().all(|w| w.capabilities == ["invoke:echo.say"]));

    // Routed and called through the client library, which checks that each
    // replica's certificate (service/echo) may be the worker the route named.
    let client = CrankClient::new(
        &fleet.controller_url(),
        TlsFiles::in_dir(&fleet.cert_dir(), "client"),
    )
    .unwrap();
    let mut answered_by = Vec::new();
    // Round-robin, so each replica takes two (the default strategy would
    // favour whichever answered its first call faster).
    let round_robin = Constraints {
        strategy: Some("round_robin".into()),
        ..Constraints::any()
    };
    for i in 0..4 {
        let request = Request::post("/echo", &json!({"n": i})).unwrap();
        let reply = client
            .call("invoke", "echo.say", &round_robin, &request)
            .await
            .unwrap();
        answered_by.push(reply.worker.worker_id.clone());
        let body: Value = reply.json().await.unwrap();
        assert_eq!(body, json!({"echo": {"n": i}, "caller": "client/client"}));
    }
    answered_by.sort();
    assert_eq!(answered_by, ["echo.1", "echo.1", "echo.2", "echo.2"]);

    // The record names the service's certificate, and the next heartbeat
    // carries the calls measured by the library's middleware.
    let detail: WorkerDetail = eventually(
        "a heartbeat reports echo.1's calls",
        Duration::from_secs(10),
        || async {
            let detail: WorkerDetail = fleet.get("/workers/echo.1").await.ok()?.json();
            let measured = detail.load.as_ref()?.capabilities.first()?.requests > 0;
            measured.then_some(detail)
        },
    )
    .await;
    assert_eq!(detail.registered_by, "service/echo");
    let load = detail.load.unwrap();
    let echo = &load.capabilities[0];
    assert_eq!(echo.capability, "invoke:echo.say");
    assert_eq!(echo.requests, 2);
    assert_eq!(echo.error_rate, Some(0.0));
    assert!(echo.p50_ms.is_some() && echo.p95_ms.is_some());

    // SIGTERM: each replica deregisters before it exits.
    for replica in &mut replicas {
        replica.signal(Signal::SIGTERM).unwrap();
        let status = tokio::time::timeout(Duration::from_secs(10), replica.wait())
            .await
            .expect("a replica exits within 10 s of SIGTERM")
            .unwrap();
        assert!(status.success(), "{status}");
    }
    let workers = fleet.workers().await.expect("the controller answers");
    assert!(workers.is_empty(), "still listed: {workers:?}");
}
