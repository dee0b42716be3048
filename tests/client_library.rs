//! The client library against real processes over mTLS: it calls only the
//! worker a route named (checking its certificate), retries once on another
//! provider when a worker fails the call, reports each attempt's outcome, and
//! leaves 4xx answers and empty routes to the caller.

mod common;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use common::{eventually, free_port, greeting, Fleet};
use crank_client::{CallOutcome, ClientError, Constraints, CrankClient, OutcomeSink, Request};
use crank_net::tls::TlsFiles;
use crank_proto::wire::{Capability, CapabilityList, RegisterRequest};
use crank_worker::hello::GreetResponse;

/// Every outcome, in order.
#[derive(Default)]
struct Recorded(RefCell<Vec<CallOutcome>>);

impl OutcomeSink for Recorded {
    fn record(&self, outcome: &CallOutcome) {
        self.0.borrow_mut().push(outcome.clone());
    }
}

/// Registers, as the admin, a provider of `invoke:hello.greet` that is not
/// what it claims: `worker_id` at `worker_url`.
async fn register_impostor(fleet: &Fleet, worker_id: &str, worker_url: &str) {
    let body = RegisterRequest {
        worker_id: worker_id.into(),
        worker_url: worker_url.into(),
        capabilities: vec![Capability::new("invoke", "hello.greet", "1.0.0")],
        instance: None,
        health_check: None,
    };
    let reply = common::post(
        &fleet.client("admin"),
        &format!("{}/register", fleet.controller_url()),
        &body,
    )
    .await
    .unwrap();
    assert_eq!(reply.status, 200, "{reply}");
}

async fn deregister(fleet: &Fleet, worker_id: &str) {
    let url = format!("{}/deregister/{worker_id}", fleet.controller_url());
    let mut response = fleet.client("admin").delete(url).send().await.unwrap();
    assert!(response.status().is_success());
    let _ = response.body().await;
}

async fn providers(fleet: &Fleet) -> Option<usize> {
    let list: CapabilityList = fleet.get("/capabilities").await.ok()?.json();
    Some(list.capabilities.get("invoke:hello.greet")?.healthy_workers)
}

/// Four greetings, each answered by hello-world-1 whatever the first provider;
/// the outcomes recorded meanwhile.
async fn greet_four_times(client: &CrankClient, recorded: &Recorded) -> Vec<CallOutcome> {
    recorded.0.borrow_mut().clear();
    for _ in 0..4 {
        let request = Request::post("/greet", &greeting("retry")).unwrap();
        let reply = client
            .call("invoke", "hello.greet", &Constraints::any(), &request)
            .await
            .unwrap_or_else(|e| panic!("the call failed: {e}"));
        assert_eq!(reply.worker.worker_id, "hello-world-1");
        let answer: GreetResponse = reply.json().await.unwrap();
        assert_eq!(answer.greeting, "Hello, retry!");
    }
    recorded.0.borrow().clone()
}

/// Each failure of `impostor` at a first attempt is followed by a second
/// attempt that hello-world-1 answered; returns the failures' reasons.
fn failures_then_recoveries(outcomes: &[CallOutcome], impostor: &str) -> Vec<String> {
    let mut reasons = Vec::new();
    for (i, outcome) in outcomes.iter().enumerate() {
        if let Some(failure) = &outcome.failure {
            assert_eq!(outcome.worker_id, impostor, "{outcomes:#?}");
            assert_eq!(outcome.attempt, 1, "{outcomes:#?}");
            let next = &outcomes[i + 1];
            assert_eq!(
                (next.worker_id.as_str(), next.attempt, next.succeeded()),
                ("hello-world-1", 2, true),
                "{outcomes:#?}"
            );
            reasons.push(failure.clone());
        }
    }
    assert!(
        !reasons.is_empty(),
        "{impostor} was never tried: {outcomes:#?}"
    );
    reasons
}

#[actix_rt::test]
async fn calls_check_the_workers_identity_and_retry_once_on_another_provider() {
    let mut fleet = Fleet::new();
    let _controller = fleet.start_controller("30s");
    let port = free_port();
    let _worker = fleet.start_worker("hello-world-1", port, "200ms");
    let live_url = format!("https://localhost:{port}");
    eventually(
        "hello-world-1 is routable",
        Duration::from_secs(15),
        || async { (providers(&fleet).await? == 1).then_some(()) },
    )
    .await;

    let recorded = Rc::new(Recorded::default());
    let client = CrankClient::new(
        &fleet.controller_url(),
        TlsFiles::in_dir(&fleet.cert_dir(), "client"),
    )
    .unwrap()
    .on_outcome(recorded.clone());

    // A record claiming hello-world-1's URL for another id: the server there
    // proves it is hello-world-1, not hello-world-2, so the call goes no
    // further than the handshake and is made again elsewhere.
    register_impostor(&fleet, "hello-world-2", &live_url).await;
    let outcomes = greet_four_times(&client, &recorded).await;
    for reason in failures_then_recoveries(&outcomes, "hello-world-2") {
        assert!(
            reason.contains("worker/hello-world-1, not worker/hello-world-2"),
            "{reason}"
        );
    }
    deregister(&fleet, "hello-world-2").await;

    // A provider that is gone: nothing listens at its URL.
    let dead_url = format!("https://localhost:{}", free_port());
    register_impostor(&fleet, "ghost", &dead_url).await;
    let outcomes = greet_four_times(&client, &recorded).await;
    for reason in failures_then_recoveries(&outcomes, "ghost") {
        assert!(reason.contains("cannot reach"), "{reason}");
    }
    deregister(&fleet, "ghost").await;

    // A 4xx is the request's fault: no second provider, and the worker is not blamed.
    recorded.0.borrow_mut().clear();
    let bad = Request::post("/greet", &greeting("   ")).unwrap();
    let error = client
        .call("invoke", "hello.greet", &Constraints::any(), &bad)
        .await
        .err()
        .expect("an empty message is refused");
    assert_eq!(error.status(), Some(400));
    assert!(
        matches!(&error, ClientError::Worker { worker_id, .. } if worker_id == "hello-world-1")
    );
    let outcomes = recorded.0.borrow().clone();
    assert_eq!(outcomes.len(), 1, "{outcomes:#?}");
    assert!(outcomes[0].succeeded() && outcomes[0].status == Some(400));

    // Nothing serves the capability: the controller's answer, not a call.
    let error = client
        .call(
            "invoke",
            "nobody.home",
            &Constraints::any(),
            &Request::get("/"),
        )
        .await
        .err()
        .expect("no provider");
    assert!(
        matches!(&error, ClientError::NoWorkerAvailable { capability, .. } if capability == "invoke:nobody.home"),
        "{error}"
    );
    assert_eq!(recorded.0.borrow().len(), 1, "no attempt without a route");
}

/// Calls until `worker_id` has failed `failures` first attempts; the number
/// of calls that took.
async fn call_until_failed(
    client: &CrankClient,
    recorded: &Recorded,
    worker_id: &str,
    failures: usize,
) -> usize {
    recorded.0.borrow_mut().clear();
    for calls in 1..=100 {
        let request = Request::post("/greet", &greeting("eject")).unwrap();
        client
            .call("invoke", "hello.greet", &Constraints::any(), &request)
            .await
            .unwrap_or_else(|e| panic!("the call failed: {e}"));
        let failed = recorded
            .0
            .borrow()
            .iter()
            .filter(|o| o.worker_id == worker_id && !o.succeeded())
            .count();
        if failed >= failures {
            return calls;
        }
    }
    panic!("{worker_id} failed fewer than {failures} attempts in 100 calls");
}

#[actix_rt::test]
async fn reported_failures_eject_a_provider_and_unreported_ones_do_not() {
    let mut fleet = Fleet::new();
    let _controller = fleet.start_controller("30s");
    let _worker = fleet.start_worker("hello-world-1", free_port(), "200ms");
    eventually(
        "hello-world-1 is routable",
        Duration::from_secs(15),
        || async { (providers(&fleet).await? == 1).then_some(()) },
    )
    .await;
    // Gone, but its record stays healthy until stale_after (30 s).
    let dead_url = format!("https://localhost:{}", free_port());
    register_impostor(&fleet, "ghost", &dead_url).await;
    let files = || TlsFiles::in_dir(&fleet.cert_dir(), "client");
    let recorded = Rc::new(Recorded::default());

    // Without reports, the controller hears nothing of ghost's failures.
    let quiet = CrankClient::new(&fleet.controller_url(), files())
        .unwrap()
        .without_reports()
        .on_outcome(recorded.clone());
    call_until_failed(&quiet, &recorded, "ghost", 3).await;
    let ghost = fleet.worker("ghost").await.expect("ghost is listed");
    assert_eq!(ghost.ejected_until, None, "{ghost:?}");

    // With them, three failures in a row eject it.
    let client = CrankClient::new(&fleet.controller_url(), files())
        .unwrap()
        .on_outcome(recorded.clone());
    call_until_failed(&client, &recorded, "ghost", 3).await;
    eventually(
        "ghost is ejected (the reports are sent without waiting)",
        Duration::from_secs(5),
        || async { fleet.worker("ghost").await?.ejected_until.map(|_| ()) },
    )
    .await;
    recorded.0.borrow_mut().clear();
    for _ in 0..12 {
        let request = Request::post("/greet", &greeting("eject")).unwrap();
        client
            .call("invoke", "hello.greet", &Constraints::any(), &request)
            .await
            .unwrap();
    }
    let outcomes = recorded.0.borrow().clone();
    assert!(
        outcomes
            .iter()
            .all(|o| o.worker_id == "hello-world-1" && o.attempt == 1),
        "an ejected provider is not routed to: {outcomes:#?}"
    );
}
