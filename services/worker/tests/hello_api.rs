//! Handler tests of the hello-world worker: `/greet` with each option and each
//! error, `/health` and `/stats`.

use actix_web::http::StatusCode;
use actix_web::test::{self, TestRequest};
use crank_agent::registration::{RegistrationState, RegistrationStatus};
use crank_net::caller::Caller;
use crank_net::identity::{PeerIdentity, Role};
use crank_worker::hello::{hello_app, HelloState};
use serde_json::{json, Value};

macro_rules! app {
    () => {
        test::init_service(hello_app(HelloState::new(
            "hello-world-1".into(),
            RegistrationStatus::new(RegistrationState::Standalone),
        )))
        .await
    };
}

async fn call<S, B>(app: &S, req: TestRequest) -> (StatusCode, Value)
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    B: actix_web::body::MessageBody,
{
    let req = req.to_request();
    Caller::attach(&req, PeerIdentity::new(Role::Client, "cli"));
    let response = test::call_service(app, req).await;
    let status = response.status();
    let body = test::read_body(response).await;
    (status, serde_json::from_slice(&body).expect("a JSON body"))
}

fn greet(body: Value) -> TestRequest {
    TestRequest::post().uri("/greet").set_json(body)
}

#[actix_web::test]
async fn greet_with_each_option() {
    let app = app!();
    let cases = [
        (json!({"message": "  world  "}), "Hello, world!", json!([])),
        (
            json!({"message": "world", "options": {"uppercase": true}}),
            "Hello, WORLD!",
            json!(["uppercase"]),
        ),
        (
            json!({"message": "world", "options": {"reverse": true}}),
            "Hello, dlrow!",
            json!(["reverse"]),
        ),
        (
            json!({"message": "world", "options": {"exclamations": 3}}),
            "Hello, world!!!",
            json!(["exclamations=3"]),
        ),
        (
            json!({"message": "world", "options": {"exclamations": 0}}),
            "Hello, world",
            json!(["exclamations=0"]),
        ),
        (
            json!({"message": " abc ", "options": {"uppercase": true, "reverse": true, "exclamations": 2}}),
            "Hello, CBA!!",
            json!(["reverse", "uppercase", "exclamations=2"]),
        ),
    ];
    for (i, (request, greeting, applied)) in cases.into_iter().enumerate() {
        let (status, body) = call(&app, greet(request.clone())).await;
        assert_eq!(status, StatusCode::OK, "{request}");
        assert_eq!(body["greeting"], greeting, "{request}");
        assert_eq!(body["metadata"]["options_applied"], applied, "{request}");
        assert_eq!(body["metadata"]["total_greetings"], i as u64 + 1);
        assert_eq!(
            body["metadata"]["character_count"],
            greeting.chars().count()
        );
        assert!(body["processing_time_ms"].as_f64().unwrap() >= 0.0);
    }
}

#[actix_web::test]
async fn greet_errors_are_400_naming_the_problem() {
    let app = app!();
    let cases = [
        (json!({"message": ""}), Some("message")),
        (json!({"message": "   "}), Some("message")),
        (
            json!({"message": "x", "options": {"exclamations": 11}}),
            Some("options.exclamations"),
        ),
        (
            json!({"message": "x", "options": {"exclamations": -1}}),
            Some("options.exclamations"),
        ),
        (json!({"message": 5}), Some("message")),
        (json!({}), Some("message")),
    ];
    for (request, field) in cases {
        let (status, body) = call(&app, greet(request.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{request}: {body}");
        assert_eq!(body["field"].as_str(), field, "{request}: {body}");
        assert!(body["detail"].as_str().is_some(), "{request}");
    }
    let (status, body) = call(
        &app,
        TestRequest::post()
            .uri("/greet")
            .insert_header(("content-type", "application/json"))
            .set_payload("{\"message\": "),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "malformed_json");

    let (_, stats) = call(&app, TestRequest::get().uri("/stats")).await;
    assert_eq!(
        stats["total_greetings"], 0,
        "failed greetings are not counted"
    );
}

#[actix_web::test]
async fn health_and_stats() {
    let app = app!();
    let (status, body) = call(&app, TestRequest::get().uri("/health")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "healthy");
    assert_eq!(body["worker_id"], "hello-world-1");
    assert_eq!(body["registration"], "standalone");
    assert!(body["uptime_s"].as_f64().unwrap() >= 0.0);

    call(&app, greet(json!({"message": "a"}))).await;
    call(&app, greet(json!({"message": "b"}))).await;
    let (status, body) = call(&app, TestRequest::get().uri("/stats")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["worker_id"], "hello-world-1");
    assert_eq!(body["total_greetings"], 2);
}

#[actix_web::test]
async fn health_shows_the_registration_state() {
    let status = RegistrationStatus::new(RegistrationState::Registering);
    let app = test::init_service(hello_app(HelloState::new("w".into(), status))).await;
    let (_, body) = call(&app, TestRequest::get().uri("/health")).await;
    assert_eq!(body["registration"], "registering");
}
