//! The supervision policy on a real process: a controller whose registry
//! actor fails (a fault injected with `CRANK_FAULT_PANIC`, a test-only cargo
//! feature) logs one line naming the actor and the message and exits with
//! status 70 at once, so no client ever meets a controller that answers
//! `/health` while its registry is gone.

#![cfg(feature = "fault-injection")]

mod common;

use std::time::Duration;

use common::{eventually, path_str, Fleet};
use crank_proto::wire::RouteRequest;

#[actix_rt::test]
async fn a_registry_that_panics_takes_its_process_down_with_one_line_and_status_70() {
    let mut fleet = Fleet::new();
    let port = fleet.controller_port.to_string();
    let cert_dir = fleet.cert_dir();
    let mut controller = fleet.spawn_with_env(
        "controller",
        &[
            "controller",
            "--cert-dir",
            path_str(&cert_dir),
            "--port",
            &port,
        ],
        &[("CRANK_FAULT_PANIC", "registry:Route")],
    );
    eventually(
        "the controller is healthy",
        Duration::from_secs(20),
        || async {
            let reply = fleet.get("/health").await.ok()?;
            (reply.status == 200).then_some(())
        },
    )
    .await;
    // The route reaches the registry's Route handler, which panics.
    let answer = fleet
        .post("/route", &RouteRequest::new("invoke", "hello.greet"))
        .await;
    assert!(
        answer.as_ref().map_or(true, |reply| reply.status != 200),
        "the failed route was not answered 200"
    );
    let status = controller.exits_within(Duration::from_secs(1)).await;
    assert_eq!(status.code(), Some(70), "{}", controller.log_text());
    let log = controller.log_text();
    let lines: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("actor registry failed handling Route"))
        .collect();
    assert_eq!(lines.len(), 1, "{log}");
    assert!(lines[0].contains("exits with status 70"), "{log}");
    // Nothing answers on its port any more: not /health, not anything.
    assert!(fleet.get("/health").await.is_err());
}
