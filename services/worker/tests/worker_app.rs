//! The worker library's app, in process: what a worker serves besides its
//! handlers (`/health`, JSON 404), and the load its middleware measures for
//! the heartbeat, per capability.

use actix_web::http::StatusCode;
use actix_web::test::{self, TestRequest};
use actix_web::{web, HttpResponse};
use crank_agent::registration::{RegistrationState, RegistrationStatus};
use crank_net::caller::Caller;
use crank_net::identity::{PeerIdentity, Role};
use crank_worker::{Capability, Worker, WorkerContext};
use futures_util::StreamExt;
use serde_json::{json, Value};

async fn echo(caller: Caller, body: web::Json<Value>) -> HttpResponse {
    HttpResponse::Ok().json(json!({"echo": body.into_inner(), "caller": caller.0.to_string()}))
}

async fn fail() -> HttpResponse {
    HttpResponse::InternalServerError().json(json!({"error": "broken"}))
}

async fn words() -> HttpResponse {
    let body = futures_util::stream::iter(["one ", "two"])
        .map(|word| Ok::<_, actix_web::Error>(web::Bytes::from(word)));
    HttpResponse::Ok().streaming(body)
}

fn two_capabilities() -> Worker {
    Worker::new("test-worker")
        .capacity(8)
        .serve(Capability::new("invoke", "echo.say", "1.0.0"), || {
            web::resource("/echo").route(web::post().to(echo))
        })
        .serve(Capability::new("invoke", "echo.say", "1.0.0"), || {
            web::resource("/echo/fail").route(web::post().to(fail))
        })
        .serve(Capability::new("stream", "words", "1.0.0"), || {
            web::resource("/words").route(web::get().to(words))
        })
}

fn with_caller(request: TestRequest) -> actix_http::Request {
    let request = request.to_request();
    Caller::attach(&request, PeerIdentity::new(Role::Client, "cli"));
    request
}

#[actix_web::test]
async fn a_worker_registers_each_capability_once_and_serves_health_and_json_404s() {
    let worker = two_capabilities();
    let keys: Vec<String> = worker.capabilities().iter().map(Capability::key).collect();
    assert_eq!(keys, ["invoke:echo.say", "stream:words"]);

    let context = worker.context(
        "test-worker.1",
        RegistrationStatus::new(RegistrationState::Registering),
    );
    let app = test::init_service(worker.app(context)).await;
    let health: Value =
        test::call_and_read_body_json(&app, TestRequest::get().uri("/health").to_request()).await;
    assert_eq!(health["status"], "healthy");
    assert_eq!(health["service"], "test-worker");
    assert_eq!(health["worker_id"], "test-worker.1");
    assert_eq!(health["registration"], "registering");

    let answer = test::call_service(&app, TestRequest::get().uri("/nothing").to_request()).await;
    assert_eq!(answer.status(), StatusCode::NOT_FOUND);
    let body: Value = test::read_body_json(answer).await;
    assert_eq!(body["error"], "not_found");

    let echoed: Value = test::call_and_read_body_json(
        &app,
        with_caller(TestRequest::post().uri("/echo").set_json(json!({"a": 1}))),
    )
    .await;
    assert_eq!(echoed, json!({"echo": {"a": 1}, "caller": "client/cli"}));
}

#[actix_web::test]
async fn middleware_measures_each_capability_for_the_heartbeat() {
    let worker = two_capabilities();
    let context = worker.context(
        "test-worker",
        RegistrationStatus::new(RegistrationState::Standalone),
    );
    let app = test::init_service(worker.app(context.clone())).await;
    for _ in 0..3 {
        let answer = test::call_service(
            &app,
            with_caller(TestRequest::post().uri("/echo").set_json(json!({}))),
        )
        .await;
        assert_eq!(answer.status(), StatusCode::OK);
    }
    let answer = test::call_service(
        &app,
        TestRequest::post()
            .uri("/echo/fail")
            .set_json(json!({}))
            .to_request(),
    )
    .await;
    assert_eq!(answer.status(), StatusCode::INTERNAL_SERVER_ERROR);
    // An answer not yet sent is still in flight.
    assert_eq!(context.in_flight(), 1);
    drop(answer);
    assert_eq!(context.in_flight(), 0);

    // A stream is in flight until its body is read to the end.
    let streaming = test::call_service(&app, TestRequest::get().uri("/words").to_request()).await;
    assert_eq!(context.in_flight(), 1);
    assert_eq!(context.meters()[1].in_flight(), 1);
    assert_eq!(test::read_body(streaming).await, "one two");
    assert_eq!(context.in_flight(), 0);

    let load = context.take_load();
    // 8 at once of each of its two capabilities.
    assert_eq!((load.in_flight, load.capacity), (0, 16));
    let echo = &load.capabilities[0];
    assert_eq!(echo.capability, "invoke:echo.say");
    assert_eq!(echo.requests, 4);
    assert_eq!(echo.error_rate, Some(0.25));
    assert!(echo.p50_ms.is_some() && echo.p95_ms >= echo.p50_ms);
    let words = &load.capabilities[1];
    assert_eq!(
        (words.capability.as_str(), words.requests),
        ("stream:words", 1)
    );
    assert_eq!(words.error_rate, Some(0.0));

    // The next heartbeat's window starts empty.
    let next = context.take_load();
    assert!(next
        .capabilities
        .iter()
        .all(|c| c.requests == 0 && c.p50_ms.is_none()));
}

#[actix_web::test]
async fn handlers_may_read_the_worker_they_run_in() {
    async fn whoami(context: web::Data<WorkerContext>) -> HttpResponse {
        HttpResponse::Ok().body(context.worker_id().to_owned())
    }
    let worker = Worker::new("who").serve(Capability::new("invoke", "who.am_i", "1.0.0"), || {
        web::resource("/whoami").route(web::get().to(whoami))
    });
    let context = worker.context(
        "who.7",
        RegistrationStatus::new(RegistrationState::Standalone),
    );
    let app = test::init_service(worker.app(context)).await;
    let body = test::call_and_read_body(&app, TestRequest::get().uri("/whoami").to_request()).await;
    assert_eq!(body, "who.7");
}

/// A worker serving `/words` (a stream, in flight until read) one at a time.
fn one_at_a_time() -> Worker {
    Worker::new("narrow")
        .capacity(1)
        .serve(Capability::new("stream", "words", "1.0.0"), || {
            web::resource("/words").route(web::get().to(words))
        })
}

#[actix_web::test]
async fn past_its_capacity_a_capability_answers_503_without_reaching_the_handler() {
    let worker = one_at_a_time();
    assert_eq!(
        worker.capabilities()[0].max_concurrency,
        Some(1),
        "the capacity is announced as max_concurrency"
    );
    let context = worker.context(
        "narrow",
        RegistrationStatus::new(RegistrationState::Standalone),
    );
    let app = test::init_service(worker.app(context.clone())).await;
    let first = test::call_service(&app, TestRequest::get().uri("/words").to_request()).await;
    assert_eq!(first.status(), StatusCode::OK);

    let refused = test::call_service(&app, TestRequest::get().uri("/words").to_request()).await;
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = test::read_body_json(refused).await;
    assert_eq!(body["error"], "at_capacity");
    assert!(
        body["detail"].as_str().unwrap().contains("stream:words"),
        "{body}"
    );
    assert_eq!(context.in_flight(), 1, "the refusal was never in flight");

    assert_eq!(test::read_body(first).await, "one two");
    let again = test::call_service(&app, TestRequest::get().uri("/words").to_request()).await;
    assert_eq!(
        again.status(),
        StatusCode::OK,
        "room again once the first is done"
    );
    drop(again);
    let load = context.take_load();
    assert_eq!(load.capacity, 1);
    assert_eq!(
        (
            load.capabilities[0].requests,
            load.capabilities[0].error_rate
        ),
        (2, Some(0.0)),
        "a refusal is neither a request served nor a failure"
    );
}

#[actix_web::test]
async fn a_service_time_holds_each_answer_that_long_in_flight() {
    tokio::time::pause();
    let worker = one_at_a_time().service_time(std::time::Duration::from_secs(5));
    let context = worker.context(
        "narrow",
        RegistrationStatus::new(RegistrationState::Standalone),
    );
    let app = test::init_service(worker.app(context.clone())).await;
    let call = test::call_service(&app, TestRequest::get().uri("/words").to_request());
    let mut call = std::pin::pin!(call);
    tokio::select! {
        _ = &mut call => panic!("answered before its service time"),
        () = tokio::time::sleep(std::time::Duration::from_millis(4_900)) => {}
    }
    assert_eq!(context.in_flight(), 1, "held in flight");
    let answer = tokio::time::timeout(std::time::Duration::from_millis(200), call)
        .await
        .expect("answered once its service time is over");
    assert_eq!(answer.status(), StatusCode::OK);
}
