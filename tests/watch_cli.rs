//! `crank watch` against real processes: the fleet first, then each change as
//! a line, as a worker registers, goes stale when killed, and is deregistered;
//! and `crank certs init`'s word on the browser bundle.

mod common;

use std::time::Duration;

use common::{eventually, free_port, path_str, run_cli, Fleet};
use nix::sys::signal::Signal;

#[actix_rt::test]
async fn crank_watch_prints_the_fleet_then_each_change() {
    let mut fleet = Fleet::new();
    let _controller = fleet.start_controller("1s");
    let cert_dir = fleet.cert_dir();
    let controller_url = fleet.controller_url();
    eventually(
        "the controller answers",
        Duration::from_secs(15),
        || async { fleet.workers().await },
    )
    .await;
    let mut watch = fleet.spawn(
        "watch",
        &[
            "watch",
            "--controller-url",
            &controller_url,
            "--cert-dir",
            path_str(&cert_dir),
        ],
    );
    eventually(
        "the snapshot is printed",
        Duration::from_secs(10),
        || async {
            watch
                .log_text()
                .contains("= 0 workers (start")
                .then_some(())
        },
    )
    .await;
    let mut worker = fleet.start_worker("hello-world-1", free_port(), "200ms");
    eventually(
        "the registration is printed",
        Duration::from_secs(15),
        || async {
            watch
                .log_text()
                .contains("+ hello-world-1 registered (invoke:hello.greet)  #1")
                .then_some(())
        },
    )
    .await;
    worker.signal(Signal::SIGKILL);
    let _ = worker.exits_within(Duration::from_secs(5)).await;
    eventually(
        "the worker is printed stale",
        Duration::from_secs(15),
        || async {
            watch
                .log_text()
                .contains("~ hello-world-1 stale (invoke:hello.greet)  #2")
                .then_some(())
        },
    )
    .await;
    watch.signal(Signal::SIGTERM);
    watch.exits_within(Duration::from_secs(5)).await;

    // --json: each message's body, as sent.
    let (ok, _, err) = run_cli(&[
        "watch",
        "--json",
        "--controller-url",
        "https://localhost:1",
        "--cert-dir",
        path_str(&cert_dir),
    ]);
    assert!(!ok, "an unreachable controller is an error");
    assert!(
        err.contains("cannot reach https://localhost:1/watch"),
        "{err}"
    );
}

#[test]
fn certs_init_writes_the_browser_bundle_and_says_how_to_import_it() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    let (ok, out, err) = run_cli(&["certs", "init", "--dir", path_str(&certs)]);
    assert!(ok, "{err}");
    assert!(certs.join("client.p12").exists());
    let hint = out.lines().last().unwrap();
    assert!(hint.contains("client.p12 (password: crank)"), "{hint}");
    assert!(hint.contains("https://localhost:9000/ui"), "{hint}");
}
