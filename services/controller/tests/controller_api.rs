//! Handler tests of the controller API (actix_web::test): every endpoint, its
//! success and each error, asserting status, body, and that a rejected request
//! left the registry unchanged.

mod common;

use common::app::{call, registry};

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::test::{self, TestRequest};
use crank_controller::controller::controller_app;
use crank_net::identity::{PeerIdentity, Role};
use serde_json::{json, Value};

fn worker(name: &str) -> PeerIdentity {
    PeerIdentity::new(Role::Worker, name)
}

fn client() -> PeerIdentity {
    PeerIdentity::new(Role::Client, "cli")
}

fn admin() -> PeerIdentity {
    PeerIdentity::new(Role::Admin, "ops")
}

fn registration(id: &str) -> Value {
    json!({
        "worker_id": id,
        "worker_url": format!("https://{id}.local:8500"),
        "capabilities": [{"name": "hello.greet", "verb": "invoke", "version": "1.0.0"}]
    })
}

macro_rules! app {
    ($registry:expr) => {
        test::init_service(controller_app($registry.clone())).await
    };
}

async fn worker_ids<S, B>(app: &S) -> Vec<String>
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let (status, body) = call(app, TestRequest::get().uri("/workers"), Some(client())).await;
    assert_eq!(status, StatusCode::OK);
    body["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["worker_id"].as_str().unwrap().to_owned())
        .collect()
}

#[actix_web::test]
async fn health_answers_healthy() {
    let registry = registry();
    let app = app!(registry);
    let (status, body) = call(&app, TestRequest::get().uri("/health"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"status": "healthy", "service": "crank-controller"})
    );
}

#[actix_web::test]
async fn register_then_list_route_and_inspect() {
    let registry = registry();
    let app = app!(registry);
    let (status, body) = call(
        &app,
        TestRequest::post()
            .uri("/register")
            .set_json(registration("w1")),
        Some(worker("w1")),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"status": "registered", "worker_id": "w1", "capabilities_registered": 1,
               "heartbeat_interval_s": 30.0, "stale_after_s": 120.0})
    );

    let (status, body) = call(&app, TestRequest::get().uri("/workers"), Some(client())).await;
    assert_eq!(status, StatusCode::OK);
    let listed = &body["workers"][0];
    assert_eq!(listed["worker_id"], "w1");
    assert_eq!(listed["worker_url"], "https://w1.local:8500");
    assert_eq!(listed["is_healthy"], true);
    assert_eq!(listed["status"], "healthy");
    assert_eq!(listed["capabilities"], json!(["invoke:hello.greet"]));
    for stamp in ["last_heartbeat", "registered_at"] {
        let text = listed[stamp].as_str().unwrap();
        chrono::DateTime::parse_from_rfc3339(text).unwrap();
        assert!(text.ends_with('Z'), "{stamp} is UTC: {text}");
    }

    let (status, body) = call(
        &app,
        TestRequest::get().uri("/capabilities"),
        Some(client()),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"capabilities": {"invoke:hello.greet": {"workers": 1, "healthy_workers": 1}}})
    );

    let (status, body) = call(
        &app,
        TestRequest::post().uri("/route").set_json(
            json!({"verb": "invoke", "capability": "hello.greet", "priority": {"p99_ms": 50}}),
        ),
        Some(client()),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"worker_id": "w1", "worker_url": "https://w1.local:8500",
               "capability": "invoke:hello.greet", "version": "1.0.0"})
    );

    let (status, body) = call(&app, TestRequest::get().uri("/workers/w1"), Some(client())).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["registered_by"], "worker/w1");
    assert_eq!(body["capabilities"][0]["name"], "hello.greet");

    let (status, body) = call(
        &app,
        TestRequest::get().uri("/workers/nobody"),
        Some(client()),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "unknown_worker");
}

#[actix_web::test]
async fn every_optional_capability_field_is_kept() {
    let registry = registry();
    let app = app!(registry);
    let capability = json!({
        "name": "llm.chat", "verb": "invoke", "version": "2.3.4",
        "input_schema": {"type": "object"}, "output_schema": {"type": "object"},
        "requires_gpu": true, "max_concurrency": 4, "runtime": "python3.11",
        "env_profile": "gpu-large", "constraints": {"memory_gb": 16}, "slo": {"p99_ms": 900},
        "spiffe_id": "spiffe://crank.local/worker/w1",
        "required_capabilities": ["invoke:tokenizer"], "controller_affinity": ["node-a"],
        "cost_tokens_per_invocation": 1.5, "slo_bid": 0.25
    });
    let body =
        json!({"worker_id": "w1", "worker_url": "https://w1:1", "capabilities": [capability]});
    let (status, _) = call(
        &app,
        TestRequest::post().uri("/register").set_json(body),
        Some(worker("w1")),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, detail) = call(&app, TestRequest::get().uri("/workers/w1"), Some(client())).await;
    assert_eq!(detail["capabilities"][0], capability);
}

/// The original system's workers send what its schema has, and more: fields
/// crank does not know, at the top and in each capability, are accepted and
/// dropped, and every field of the schema is kept.
#[actix_web::test]
async fn the_originals_registration_with_unknown_extra_fields_is_accepted() {
    let registry = registry();
    let app = app!(registry);
    let capability = json!({
        "name": "email.classify", "verb": "invoke", "version": "1.0.0",
        "input_schema": {"type": "object"}, "output_schema": {"type": "object"},
        "requires_gpu": false, "max_concurrency": 8, "runtime": "python3.12",
        "env_profile": "cpu-small", "constraints": {"memory_gb": 2}, "slo": {"p95_ms": 300},
        "spiffe_id": "spiffe://crank.local/service/classifier",
        "required_capabilities": [], "controller_affinity": [],
        "cost_tokens_per_invocation": 0.5, "slo_bid": 0.1
    });
    let mut with_extras = capability.clone();
    with_extras["id"] = json!("email.classify");
    with_extras["description"] = json!("Classifies e-mail");
    with_extras["tags"] = json!(["email", {"nested": true}]);
    let body = json!({
        "worker_id": "classifier.1a2b3c4d",
        "worker_url": "https://classifier:8500",
        "capabilities": [with_extras],
        "service_type": "email",
        "endpoint": "https://classifier:8500",
        "health_url": "https://classifier:8500/health",
        "metadata": {"anything": [1, 2, 3]}
    });
    let (status, answer) = call(
        &app,
        TestRequest::post().uri("/register").set_json(body),
        // A replica of the service `classifier`, on the service's certificate.
        Some(PeerIdentity::new(Role::Service, "classifier")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["capabilities_registered"], 1);
    let (_, detail) = call(
        &app,
        TestRequest::get().uri("/workers/classifier.1a2b3c4d"),
        Some(client()),
    )
    .await;
    assert_eq!(detail["capabilities"][0], capability);
}

/// Each bad registration: its status, error code and (for 422) the field named.
#[actix_web::test]
async fn bad_registrations_are_refused_precisely_and_change_nothing() {
    let registry = registry();
    let app = app!(registry);
    let (status, _) = call(
        &app,
        TestRequest::post()
            .uri("/register")
            .set_json(registration("w1")),
        Some(worker("w1")),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    let with = |edit: fn(&mut Value)| {
        let mut body = registration("w1");
        edit(&mut body);
        body.to_string()
    };
    let cases: Vec<(&str, String, StatusCode, &str, Option<&str>)> = vec![
        (
            "malformed",
            "{\"worker_id\": ".into(),
            StatusCode::BAD_REQUEST,
            "malformed_json",
            None,
        ),
        (
            "trailing garbage",
            format!("{}xyz", registration("w1")),
            StatusCode::BAD_REQUEST,
            "malformed_json",
            None,
        ),
        (
            "missing url",
            with(|b| {
                b.as_object_mut().unwrap().remove("worker_url");
            }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("worker_url"),
        ),
        (
            "id is a number",
            with(|b| b["worker_id"] = json!(7)),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("worker_id"),
        ),
        (
            "empty id",
            with(|b| b["worker_id"] = json!("")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("worker_id"),
        ),
        (
            "http url",
            with(|b| b["worker_url"] = json!("http://w1:8500")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("worker_url"),
        ),
        (
            "relative url",
            with(|b| b["worker_url"] = json!("/w1")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("worker_url"),
        ),
        (
            "no capabilities",
            with(|b| b["capabilities"] = json!([])),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("capabilities"),
        ),
        (
            "capabilities is null",
            with(|b| b["capabilities"] = json!(null)),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("capabilities"),
        ),
        (
            "bad version",
            with(|b| b["capabilities"][0]["version"] = json!("one")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("capabilities[0].version"),
        ),
        (
            "duplicate",
            with(|b| {
                let c = b["capabilities"][0].clone();
                b["capabilities"].as_array_mut().unwrap().push(c);
            }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("capabilities[1]"),
        ),
    ];
    for (name, body, expected_status, code, field) in cases {
        let (status, answer) = call(
            &app,
            TestRequest::post()
                .uri("/register")
                .insert_header(("content-type", "application/json"))
                .set_payload(body),
            Some(worker("w1")),
        )
        .await;
        assert_eq!(status, expected_status, "{name}: {answer}");
        assert_eq!(answer["error"], code, "{name}: {answer}");
        assert!(
            answer["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{name}"
        );
        if let Some(field) = field {
            assert_eq!(answer["field"], field, "{name}: {answer}");
        }
    }

    let (_, detail) = call(&app, TestRequest::get().uri("/workers/w1"), Some(client())).await;
    assert_eq!(
        detail["worker_url"], "https://w1.local:8500",
        "the record is unchanged"
    );
    assert_eq!(worker_ids(&app).await, vec!["w1"]);
}

#[actix_web::test]
async fn oversized_and_mistyped_bodies_are_refused() {
    let registry = registry();
    let app = app!(registry);
    let mut body = registration("w1");
    body["capabilities"][0]["runtime"] = json!("x".repeat(70 * 1024));
    let (status, answer) = call(
        &app,
        TestRequest::post().uri("/register").set_json(body),
        Some(worker("w1")),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(answer["error"], "payload_too_large");

    let (status, answer) = call(
        &app,
        TestRequest::post()
            .uri("/register")
            .insert_header(("content-type", "text/plain"))
            .set_payload(registration("w1").to_string()),
        Some(worker("w1")),
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(answer["error"], "unsupported_media_type");
    assert!(worker_ids(&app).await.is_empty());
}

#[actix_web::test]
async fn only_the_worker_itself_or_an_admin_may_write_its_record() {
    let registry = registry();
    let app = app!(registry);
    for (caller, expected) in [
        (worker("w2"), StatusCode::FORBIDDEN),
        (client(), StatusCode::FORBIDDEN),
        (
            PeerIdentity::new(Role::Controller, "controller"),
            StatusCode::FORBIDDEN,
        ),
    ] {
        let (status, body) = call(
            &app,
            TestRequest::post()
                .uri("/register")
                .set_json(registration("w1")),
            Some(caller.clone()),
        )
        .await;
        assert_eq!(status, expected, "{caller}");
        assert_eq!(body["error"], "identity_mismatch");
        assert_eq!(
            body["detail"],
            format!("certificate {caller} may not act for worker w1")
        );
    }
    assert!(worker_ids(&app).await.is_empty());

    let (status, _) = call(
        &app,
        TestRequest::post()
            .uri("/register")
            .set_json(registration("w1")),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no identity, no write");

    let (status, _) = call(
        &app,
        TestRequest::post()
            .uri("/register")
            .set_json(registration("w1")),
        Some(admin()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "an admin may register any worker");
    assert_eq!(worker_ids(&app).await, vec!["w1"]);
}

#[actix_web::test]
async fn heartbeat_acknowledges_known_workers_and_keeps_the_original_404() {
    let registry = registry();
    let app = app!(registry);
    call(
        &app,
        TestRequest::post()
            .uri("/register")
            .set_json(registration("w1")),
        Some(worker("w1")),
    )
    .await;

    let (status, body) = call(
        &app,
        TestRequest::post()
            .uri("/heartbeat")
            .set_json(json!({"worker_id": "w1", "load": {"in_flight": 2, "capacity": 8}})),
        Some(worker("w1")),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"status": "ok", "acknowledged": true}));
    let (_, detail) = call(&app, TestRequest::get().uri("/workers/w1"), Some(client())).await;
    assert_eq!(detail["load"], json!({"in_flight": 2, "capacity": 8}));

    let (status, body) = call(
        &app,
        TestRequest::post()
            .uri("/heartbeat")
            .set_json(json!({"worker_id": "w9"})),
        Some(worker("w9")),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["status"], "unknown_worker");
    assert_eq!(body["acknowledged"], false);
    assert_eq!(body["error"], "unknown_worker");

    let (status, body) = call(
        &app,
        TestRequest::post()
            .uri("/heartbeat")
            .set_json(json!({"worker_id": "w1"})),
        Some(worker("w2")),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"], "identity_mismatch");

    let (status, body) = call(
        &app,
        TestRequest::post()
            .uri("/heartbeat")
            .set_json(json!({"worker_id": ["w1"]})),
        Some(worker("w1")),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["field"], "worker_id");
}

#[actix_web::test]
async fn deregister_removes_and_answers_200_for_unknown_ids() {
    let registry = registry();
    let app = app!(registry);
    call(
        &app,
        TestRequest::post()
            .uri("/register")
            .set_json(registration("w1")),
        Some(worker("w1")),
    )
    .await;

    let (status, body) = call(
        &app,
        TestRequest::delete().uri("/deregister/w1"),
        Some(worker("w2")),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"], "identity_mismatch");
    assert_eq!(worker_ids(&app).await, vec!["w1"]);

    let (status, body) = call(
        &app,
        TestRequest::delete().uri("/deregister/w1"),
        Some(worker("w1")),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"status": "deregistered", "worker_id": "w1"}));
    assert!(worker_ids(&app).await.is_empty());

    let (status, body) = call(
        &app,
        TestRequest::delete().uri("/deregister/ghost"),
        Some(admin()),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"status": "deregistered", "worker_id": "ghost"})
    );
}

#[actix_web::test]
async fn route_errors() {
    let registry = registry();
    let app = app!(registry);
    let (status, body) = call(
        &app,
        TestRequest::post()
            .uri("/route")
            .set_json(json!({"verb": "invoke", "capability": "hello.greet"})),
        Some(client()),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!({"error": "no_worker_available", "detail": "No worker available for invoke:hello.greet"})
    );

    let (status, body) = call(
        &app,
        TestRequest::post()
            .uri("/route")
            .set_json(json!({"verb": "invoke", "capability": "hello.greet", "version": "latest"})),
        Some(client()),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["field"], "version");

    let (status, body) = call(
        &app,
        TestRequest::post()
            .uri("/route")
            .set_json(json!({"verb": "invoke"})),
        Some(client()),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["field"], "capability");
}

#[actix_web::test]
async fn unknown_paths_and_methods_answer_json() {
    let registry = registry();
    let app = app!(registry);
    let (status, body) = call(&app, TestRequest::get().uri("/nope"), Some(client())).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "not_found");
    let (status, body) = call(&app, TestRequest::get().uri("/register"), Some(client())).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body["error"], "method_not_allowed");
}

#[actix_web::test]
async fn reads_need_an_identity() {
    let registry = registry();
    let app = app!(registry);
    let (status, body) = call(&app, TestRequest::get().uri("/workers"), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"], "no_identity");
}

#[actix_web::test]
async fn a_replaced_instance_is_told_so_and_cannot_touch_the_new_record() {
    let registry = registry();
    let app = app!(registry);
    for instance in ["old-1", "new-2"] {
        let mut body = registration("w1");
        body["instance"] = json!(instance);
        let (status, _) = call(
            &app,
            TestRequest::post().uri("/register").set_json(body),
            Some(worker("w1")),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
    }

    let beat = |instance: Option<&str>| {
        let mut body = json!({"worker_id": "w1"});
        if let Some(instance) = instance {
            body["instance"] = json!(instance);
        }
        TestRequest::post().uri("/heartbeat").set_json(body)
    };
    let (status, body) = call(&app, beat(Some("old-1")), Some(worker("w1"))).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["status"], "superseded");
    assert_eq!(body["acknowledged"], false);
    assert_eq!(body["error"], "superseded");
    // The current instance and a worker of the original system (no instance)
    // are acknowledged as before.
    for instance in [Some("new-2"), None] {
        let (status, body) = call(&app, beat(instance), Some(worker("w1"))).await;
        assert_eq!(status, StatusCode::OK, "{instance:?}");
        assert_eq!(body, json!({"status": "ok", "acknowledged": true}));
    }

    let (status, body) = call(
        &app,
        TestRequest::delete().uri("/deregister/w1?instance=old-1"),
        Some(worker("w1")),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"], "superseded");
    assert_eq!(worker_ids(&app).await, vec!["w1"], "the new record stays");

    let (status, _) = call(
        &app,
        TestRequest::delete().uri("/deregister/w1?instance=new-2"),
        Some(worker("w1")),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(worker_ids(&app).await.is_empty());
}
