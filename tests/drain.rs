//! Graceful drain against real processes: a worker told to stop is marked
//! `draining` at once (no new routes), finishes the call it is answering,
//! then deregisters and exits; `crank drain` marks a worker as an admin.

mod common;

use std::time::Duration;

use common::{eventually, free_port, greeting, path_str, run_cli, Fleet};
use crank_client::{CrankClient, Request, RoutedWorker};
use crank_net::tls::TlsFiles;
use crank_proto::wire::{RouteRequest, WorkerDetail, WorkerStatus};

#[actix_rt::test]
async fn a_stopping_worker_drains_finishes_its_call_then_deregisters() {
    let mut fleet = Fleet::new();
    let _controller = fleet.start_controller("30s");
    let port = free_port();
    let cert_dir = fleet.cert_dir();
    let url = fleet.controller_url();
    let port_arg = port.to_string();
    let mut worker = fleet.spawn(
        "hello-world-1",
        &[
            "worker",
            "--cert-dir",
            path_str(&cert_dir),
            "--port",
            &port_arg,
            "--worker-id",
            "hello-world-1",
            "--controller-url",
            &url,
            "--heartbeat-interval",
            "200ms",
            "--service-time",
            "1500ms",
            "--drain-timeout",
            "10s",
        ],
    );
    eventually("the worker is healthy", Duration::from_secs(15), || async {
        let status = fleet.worker("hello-world-1").await?.status;
        (status == WorkerStatus::Healthy).then_some(())
    })
    .await;

    // A call in flight: 1.5 s of service time.
    let client = CrankClient::new(&url, TlsFiles::in_dir(&cert_dir, "client")).unwrap();
    let target = RoutedWorker::at("hello-world-1", &format!("https://localhost:{port}"));
    let call = async {
        let request = Request::post("/greet", &greeting("last")).unwrap();
        client
            .send(&target, &request)
            .await
            .map(|reply| reply.status)
    };
    let stop = async {
        eventually("the call is in flight", Duration::from_secs(10), || async {
            let detail: WorkerDetail = fleet.get("/workers/hello-world-1").await.ok()?.json();
            (detail.load?.in_flight >= 1).then_some(())
        })
        .await;
        worker.signal(nix::sys::signal::Signal::SIGTERM);
        eventually("the worker is draining", Duration::from_secs(5), || async {
            let status = fleet.worker("hello-world-1").await?.status;
            (status == WorkerStatus::Draining).then_some(())
        })
        .await;
        // No new route goes to it.
        let route = fleet
            .post("/route", &RouteRequest::new("invoke", "hello.greet"))
            .await
            .unwrap();
        assert_eq!(route.status, 404, "{route}");
        assert!(route.to_string().contains("draining"), "{route}");
    };
    let (answered, ()) = futures_util::future::join(call, stop).await;
    assert_eq!(answered.unwrap(), 200, "the call in flight was answered");
    let status = worker.exits_within(Duration::from_secs(15)).await;
    assert!(status.success(), "{}", worker.log_text());
    assert!(
        fleet.worker("hello-world-1").await.is_none(),
        "deregistered"
    );
    let log = worker.log_text();
    assert!(log.contains("is draining: no new routes"), "{log}");
    assert!(log.contains("drained in"), "{log}");
}

#[actix_rt::test]
async fn crank_drain_marks_a_worker_as_an_admin_and_refuses_others() {
    let mut fleet = Fleet::new();
    let _controller = fleet.start_controller("30s");
    let _worker = fleet.start_worker("hello-world-1", free_port(), "200ms");
    eventually("the worker is healthy", Duration::from_secs(15), || async {
        let status = fleet.worker("hello-world-1").await?.status;
        (status == WorkerStatus::Healthy).then_some(())
    })
    .await;
    let url = fleet.controller_url();
    let cert_dir = fleet.cert_dir();
    let base = ["--controller-url", &url, "--cert-dir", path_str(&cert_dir)];
    let mut as_client = vec!["drain", "hello-world-1"];
    as_client.extend_from_slice(&base);
    let (ok, _, err) = run_cli(&as_client);
    assert!(!ok, "a client may not drain a worker");
    assert!(err.contains("403") || err.contains("may not"), "{err}");
    let mut as_admin = as_client.clone();
    as_admin.extend_from_slice(&["--cert", "admin"]);
    let (ok, out, err) = run_cli(&as_admin);
    assert!(ok, "{err}");
    assert!(out.contains("hello-world-1 is draining"), "{out}");
    let listed = fleet.worker("hello-world-1").await.unwrap();
    assert_eq!(listed.status, WorkerStatus::Draining);
    assert!(!listed.is_healthy);
    // Its heartbeats go on; it stays draining.
    let beat = listed.last_heartbeat;
    let later = eventually(
        "a heartbeat after the drain",
        Duration::from_secs(5),
        || async {
            let now = fleet.worker("hello-world-1").await?;
            (now.last_heartbeat > beat).then_some(now)
        },
    )
    .await;
    assert_eq!(later.status, WorkerStatus::Draining);
}
