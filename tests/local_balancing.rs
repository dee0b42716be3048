//! Per-call load feedback and local balancing against real processes: every
//! answer of a worker-library capability carries `crank-load`, a local-mode
//! client follows the watch stream (a worker that stops is dropped at once)
//! and keeps calling while the controller is dead, and `crank call` prints
//! an answer and a summary.

mod common;

use std::time::Duration;

use common::{eventually, free_port, greeting, run_cli, Fleet};
use crank_client::{Balance, Constraints, CrankClient, Request};
use crank_net::tls::TlsFiles;
use crank_proto::wire::CapabilityList;

async fn healthy_providers(fleet: &Fleet) -> Option<usize> {
    let list: CapabilityList = fleet.get("/capabilities").await.ok()?.json();
    Some(list.capabilities.get("invoke:hello.greet")?.healthy_workers)
}

async fn greet(client: &CrankClient) -> Result<crank_client::Reply, crank_client::ClientError> {
    let request = Request::post("/greet", &greeting("local")).unwrap();
    client
        .call("invoke", "hello.greet", &Constraints::any(), &request)
        .await
}

#[actix_rt::test]
async fn local_mode_follows_the_watch_stream_and_outlives_the_controller() {
    let mut fleet = Fleet::new();
    fleet.issue_worker("hello-world-2");
    let mut controller = fleet.start_controller("30s");
    let _first = fleet.start_worker("hello-world-1", free_port(), "200ms");
    let second = fleet.start_worker("hello-world-2", free_port(), "200ms");
    eventually(
        "both workers are routable",
        Duration::from_secs(15),
        || async { (healthy_providers(&fleet).await? == 2).then_some(()) },
    )
    .await;

    let client = CrankClient::new(
        &fleet.controller_url(),
        TlsFiles::in_dir(&fleet.cert_dir(), "client"),
    )
    .unwrap()
    .with_balance(Balance::Local);
    let mut answered = std::collections::BTreeSet::new();
    for _ in 0..8 {
        let reply = greet(&client).await.unwrap();
        // The worker's load with its answer: the hello-world default capacity.
        let load = reply.load.expect("a crank-load header");
        assert!(
            load.capacity >= 1 && load.in_flight < load.capacity,
            "{load:?}"
        );
        answered.insert(reply.worker.worker_id.clone());
    }
    assert_eq!(answered.len(), 2, "both providers answered: {answered:?}");

    // A worker that stops deregisters; the stream says so and the client
    // drops it at once, before any call of its fails.
    second.signal(nix::sys::signal::Signal::SIGTERM);
    eventually(
        "hello-world-2 deregistered",
        Duration::from_secs(15),
        || async { (healthy_providers(&fleet).await? == 1).then_some(()) },
    )
    .await;
    eventually(
        "the client dropped hello-world-2",
        Duration::from_secs(5),
        || async {
            let reply = greet(&client).await.ok()?;
            (reply.worker.worker_id == "hello-world-1").then_some(())
        },
    )
    .await;

    // The controller dies: calls go on with the last known provider.
    controller.signal(nix::sys::signal::Signal::SIGKILL);
    controller.exits_within(Duration::from_secs(5)).await;
    for _ in 0..10 {
        let reply = greet(&client)
            .await
            .expect("a call while the controller is down");
        assert_eq!(reply.worker.worker_id, "hello-world-1");
    }
}

#[actix_rt::test]
async fn crank_call_prints_the_answer_and_a_summary() {
    let mut fleet = Fleet::new();
    let _controller = fleet.start_controller("30s");
    let _worker = fleet.start_worker("hello-world-1", free_port(), "200ms");
    eventually(
        "the worker is routable",
        Duration::from_secs(15),
        || async { (healthy_providers(&fleet).await? == 1).then_some(()) },
    )
    .await;
    let url = fleet.controller_url();
    let cert_dir = fleet.cert_dir();
    let common_args = [
        "--controller-url",
        &url,
        "--cert-dir",
        cert_dir.to_str().unwrap(),
    ];
    let data = r#"{"message":"cli"}"#;
    let mut once = vec!["call", "invoke:hello.greet", "/greet", "--data", data];
    once.extend_from_slice(&common_args);
    let (ok, out, err) = run_cli(&once);
    assert!(ok, "{err}");
    assert!(out.contains("Hello, cli!"), "{out}");
    assert!(out.contains("answered by hello-world-1, HTTP 200"), "{out}");
    // The call's outcome report reached the controller before the process
    // exited: counted at once, no polling.
    let reports = r#"crank_http_requests_total{endpoint="/report",status="2xx"}"#;
    let metrics = fleet.get("/metrics").await.unwrap();
    let text = String::from_utf8_lossy(&metrics.body).into_owned();
    assert_eq!(common::sample(&text, reports), Some(1.0), "{text}");

    for balance in ["controller", "local"] {
        let mut many = once.clone();
        many.extend_from_slice(&["--count", "20", "--concurrency", "4", "--json"]);
        many.extend_from_slice(&["--balance", balance]);
        let (ok, out, err) = run_cli(&many);
        assert!(ok, "{balance}: {err}");
        let summary: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(summary["calls"], 20, "{summary}");
        assert_eq!(summary["failed"], 0, "{summary}");
        assert_eq!(summary["per_worker"]["hello-world-1"], 20, "{summary}");
        let latency = &summary["latency_ms"];
        let p50 = latency["p50"].as_f64().unwrap();
        let max = latency["max"].as_f64().unwrap();
        assert!(
            p50 > 0.0 && p50 <= latency["p90"].as_f64().unwrap(),
            "{summary}"
        );
        assert!(latency["p99"].as_f64().unwrap() <= max, "{summary}");
    }

    // A capability given without its verb is refused before any call.
    let mut bad = vec!["call", "hello.greet", "/greet"];
    bad.extend_from_slice(&common_args);
    let (ok, _, err) = run_cli(&bad);
    assert!(!ok);
    assert!(err.contains("is not VERB:NAME"), "{err}");
}
