//! Idempotency keys against real processes: the hello-world worker runs a
//! keyed call once and replays its answer, refuses a reused key for another
//! request and a malformed key, and routes of one key reach one worker.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{eventually, free_port, greeting, Fleet};
use crank_client::{ClientError, Constraints, CrankClient, Request, RoutedWorker};
use crank_net::tls::TlsFiles;
use crank_proto::wire::{CapabilityList, RouteRequest, RouteResponse};
use crank_worker::hello::{GreetResponse, HelloStats};

async fn providers(fleet: &Fleet) -> Option<usize> {
    let list: CapabilityList = fleet.get("/capabilities").await.ok()?.json();
    Some(list.capabilities.get("invoke:hello.greet")?.healthy_workers)
}

/// A controller and hello-world-1, routable; a client, and the worker as
/// routed to.
async fn one_worker() -> ([common::Proc; 2], Fleet, CrankClient, RoutedWorker) {
    let mut fleet = Fleet::new();
    let controller = fleet.start_controller("30s");
    let port = free_port();
    let worker = fleet.start_worker("hello-world-1", port, "200ms");
    eventually(
        "the worker is routable",
        Duration::from_secs(15),
        || async { (providers(&fleet).await? == 1).then_some(()) },
    )
    .await;
    let client = CrankClient::new(
        &fleet.controller_url(),
        TlsFiles::in_dir(&fleet.cert_dir(), "client"),
    )
    .unwrap();
    let routed = RoutedWorker::at("hello-world-1", &format!("https://localhost:{port}"));
    // The processes first: they stop before the fleet's directory goes.
    ([controller, worker], fleet, client, routed)
}

#[actix_rt::test]
async fn a_keyed_call_runs_once_and_its_retry_is_replayed() {
    let (_processes, _fleet, client, worker) = one_worker().await;
    let keyed = |message: &str, key: &str| {
        Request::post("/greet", &greeting(message))
            .unwrap()
            .with_idempotency_key(key)
    };

    let first = client
        .send(&worker, &keyed("once", "order-1"))
        .await
        .unwrap();
    assert!(!first.replayed);
    let first: GreetResponse = first.json().await.unwrap();
    let again = client
        .send(&worker, &keyed("once", "order-1"))
        .await
        .unwrap();
    assert!(again.replayed, "the retry is answered from memory");
    let again: GreetResponse = again.json().await.unwrap();
    // The handler did not run again: its counter did not move.
    assert_eq!(
        again.metadata.total_greetings,
        first.metadata.total_greetings
    );
    let other = client
        .send(&worker, &keyed("twice", "order-2"))
        .await
        .unwrap();
    let other: GreetResponse = other.json().await.unwrap();
    assert_eq!(
        other.metadata.total_greetings,
        first.metadata.total_greetings + 1
    );

    // The same key for another request, and a malformed key: 422.
    let reused = client
        .send(&worker, &keyed("different", "order-1"))
        .await
        .err()
        .expect("refused");
    assert_eq!(reused.status(), Some(422), "{reused}");
    assert!(
        reused
            .to_string()
            .contains("was used for a different request"),
        "{reused}"
    );
    let bad = client
        .send(&worker, &keyed("x", "has space"))
        .await
        .err()
        .expect("refused");
    assert!(
        matches!(&bad, ClientError::Worker { source, .. } if source.to_string().contains("Idempotency-Key")),
        "{bad}"
    );

    let metrics = client
        .send(&worker, &Request::get("/metrics"))
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&metrics.bytes().await.unwrap()).into_owned();
    assert!(
        text.contains("crank_worker_idempotent_replays_total 1"),
        "{text}"
    );
    assert!(text.contains("crank_worker_idempotent_kept 2"), "{text}");

    // Through the library's call: a key of its own for each call, so two
    // calls of the same body both run.
    let request = Request::post("/greet", &greeting("auto")).unwrap();
    for _ in 0..2 {
        let reply = client
            .call("invoke", "hello.greet", &Constraints::any(), &request)
            .await
            .unwrap();
        assert!(!reply.replayed);
    }
}

#[actix_rt::test]
async fn routes_of_one_key_reach_one_worker() {
    let mut fleet = Fleet::new();
    for id in ["hello-world-2", "hello-world-3"] {
        fleet.issue_worker(id);
    }
    let _controller = fleet.start_controller("30s");
    let _workers: Vec<_> = ["hello-world-1", "hello-world-2", "hello-world-3"]
        .into_iter()
        .map(|id| fleet.start_worker(id, free_port(), "200ms"))
        .collect();
    eventually(
        "three workers are routable",
        Duration::from_secs(15),
        || async { (providers(&fleet).await? == 3).then_some(()) },
    )
    .await;
    let mut owners = BTreeSet::new();
    for key in ["a", "b", "c", "d", "e", "f", "g", "h"] {
        let mut chosen = BTreeSet::new();
        for _ in 0..5 {
            let request = RouteRequest {
                idempotency_key: Some(key.into()),
                ..RouteRequest::new("invoke", "hello.greet")
            };
            let route: RouteResponse = fleet.post("/route", &request).await.unwrap().json();
            chosen.insert(route.worker_id);
        }
        assert_eq!(chosen.len(), 1, "key {key} went to {chosen:?}");
        owners.extend(chosen);
    }
    assert!(
        owners.len() >= 2,
        "eight keys spread over the workers: {owners:?}"
    );
    let bad = RouteRequest {
        idempotency_key: Some(String::new()),
        ..RouteRequest::new("invoke", "hello.greet")
    };
    let reply = fleet.post("/route", &bad).await.unwrap();
    assert_eq!(reply.status, 422);
    assert!(
        reply.to_string().contains(r#""field":"idempotency_key""#),
        "{reply}"
    );
}

/// The `total_greetings` the worker at `port` shows.
async fn greetings(client: &CrankClient, id: &str, port: u16) -> u64 {
    let worker = RoutedWorker::at(id, &format!("https://localhost:{port}"));
    let stats: HelloStats = client
        .send(&worker, &Request::get("/stats"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    stats.total_greetings
}

#[cfg(feature = "fault-injection")]
#[actix_rt::test]
async fn a_call_whose_answer_was_lost_is_replayed_by_its_retry_and_ran_once() {
    let mut fleet = Fleet::new();
    fleet.issue_worker("hello-world-2");
    let _controller = fleet.start_controller("30s");
    // Worker 1 loses its first answer to /greet after running it; worker 2
    // is where a retry would go if it left the worker that ran the call.
    let (port_1, port_2) = (free_port(), free_port());
    let url = fleet.controller_url();
    let cert_dir = fleet.cert_dir();
    let args = |id: &str, port: u16| -> Vec<String> {
        let port = port.to_string();
        let cert_dir = common::path_str(&cert_dir);
        [
            "worker",
            "--cert-dir",
            cert_dir,
            "--port",
            &port,
            "--worker-id",
            id,
            "--controller-url",
            &url,
            "--heartbeat-interval",
            "200ms",
        ]
        .map(str::to_owned)
        .to_vec()
    };
    let (one, two) = (args("hello-world-1", port_1), args("hello-world-2", port_2));
    let one: Vec<&str> = one.iter().map(String::as_str).collect();
    let two: Vec<&str> = two.iter().map(String::as_str).collect();
    let _lossy = fleet.spawn_with_env(
        "hello-world-1",
        &one,
        &[("CRANK_FAULT_LOSE_ANSWER", "/greet")],
    );
    let _other = fleet.spawn("hello-world-2", &two);
    eventually(
        "two workers are routable",
        Duration::from_secs(15),
        || async { (providers(&fleet).await? == 2).then_some(()) },
    )
    .await;
    // A key whose route goes to the lossy worker.
    let mut key = None;
    for candidate in (0..64).map(|i| format!("order-{i}")) {
        let request = RouteRequest {
            idempotency_key: Some(candidate.clone()),
            ..RouteRequest::new("invoke", "hello.greet")
        };
        let route: RouteResponse = fleet.post("/route", &request).await.unwrap().json();
        if route.worker_id == "hello-world-1" {
            key = Some(candidate);
            break;
        }
    }
    let key = key.expect("a key that ranks hello-world-1 first");

    let client = CrankClient::with_timeout(
        &url,
        TlsFiles::in_dir(&fleet.cert_dir(), "client"),
        Duration::from_secs(2),
    )
    .unwrap();
    let request = Request::post("/greet", &greeting("lost"))
        .unwrap()
        .with_idempotency_key(&key);
    let reply = client
        .call("invoke", "hello.greet", &Constraints::any(), &request)
        .await
        .expect("the retry is answered");
    assert_eq!(reply.worker.worker_id, "hello-world-1");
    assert!(reply.replayed, "the retry got the kept answer");
    let answer: GreetResponse = reply.json().await.unwrap();
    assert_eq!(answer.greeting, "Hello, lost!");
    // The handler ran once, on the worker that lost the answer.
    assert_eq!(greetings(&client, "hello-world-1", port_1).await, 1);
    assert_eq!(greetings(&client, "hello-world-2", port_2).await, 0);
}

#[actix_rt::test]
async fn a_flood_of_keys_keeps_at_most_the_bound_and_evicts_the_oldest() {
    let (_processes, _fleet, client, worker) = one_worker().await;
    let bound = crank_worker::replays::MAX_ENTRIES as u64;
    let flood = bound + 500;
    let next = std::cell::Cell::new(0);
    let sender = || async {
        loop {
            let n = next.get();
            if n >= flood {
                return;
            }
            next.set(n + 1);
            let request = Request::post("/greet", &greeting("flood"))
                .unwrap()
                .with_idempotency_key(format!("flood-{n}"));
            let reply = client.send(&worker, &request).await.unwrap();
            assert!(!reply.replayed);
        }
    };
    futures_util::future::join_all((0..16).map(|_| sender())).await;

    let metrics = client
        .send(&worker, &Request::get("/metrics"))
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&metrics.bytes().await.unwrap()).into_owned();
    let value = |name: &str| -> u64 {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in\n{text}"))
    };
    assert_eq!(value("crank_worker_idempotent_kept"), bound);
    assert_eq!(value("crank_worker_idempotent_evictions_total"), 500);
    let bytes = value("crank_worker_idempotent_kept_bytes");
    assert!(
        bytes <= crank_worker::replays::MAX_BYTES as u64 && bytes <= bound * 512,
        "{bytes} bytes kept for {bound} answers of about 150 bytes"
    );
    // The oldest went first: the first key runs again, the last is replayed.
    let first = Request::post("/greet", &greeting("flood"))
        .unwrap()
        .with_idempotency_key("flood-0");
    assert!(!client.send(&worker, &first).await.unwrap().replayed);
    let last = Request::post("/greet", &greeting("flood"))
        .unwrap()
        .with_idempotency_key(format!("flood-{}", flood - 1));
    assert!(client.send(&worker, &last).await.unwrap().replayed);
}
