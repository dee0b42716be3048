//! Handler tests of routing (actix_web::test): the route request's strategy,
//! constraints, budget and exclusions, the 404's reasons, and `POST /report`
//! ejecting a failing worker and bringing it back.

mod common;

use common::app::{call, registry};

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::test::{self, TestRequest};
use crank_controller::controller::controller_app;
use crank_net::identity::{PeerIdentity, Role};
use serde_json::{json, Value};

fn client() -> PeerIdentity {
    PeerIdentity::new(Role::Client, "cli")
}

fn admin() -> PeerIdentity {
    PeerIdentity::new(Role::Admin, "ops")
}

macro_rules! app {
    ($registry:expr) => {
        test::init_service(controller_app($registry.clone())).await
    };
}

/// Registers `id` serving `invoke:x` with the optional fields in `extra`.
async fn register<S, B>(app: &S, id: &str, extra: Value)
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let mut capability = json!({"name": "x", "verb": "invoke", "version": "1.0.0"});
    capability
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let body = json!({
        "worker_id": id,
        "worker_url": format!("https://{id}.local:8500"),
        "capabilities": [capability],
    });
    let (status, answer) = call(
        app,
        TestRequest::post().uri("/register").set_json(body),
        Some(admin()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}

async fn route<S, B>(app: &S, body: Value) -> (StatusCode, Value)
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    call(
        app,
        TestRequest::post().uri("/route").set_json(body),
        Some(client()),
    )
    .await
}

#[actix_web::test]
async fn route_fields_choose_and_filter() {
    let registry = registry();
    let app = app!(registry);
    register(
        &app,
        "gpu",
        json!({"requires_gpu": true, "cost_tokens_per_invocation": 5.0,
        "constraints": {"min_memory_mb": 16384}}),
    )
    .await;
    register(
        &app,
        "cpu",
        json!({"cost_tokens_per_invocation": 1.0,
        "constraints": {"min_memory_mb": 2048}}),
    )
    .await;
    let (status, body) = route(
        &app,
        json!({"verb": "invoke", "capability": "x",
        "slo_constraints": {"requires_gpu": true}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["worker_id"], "gpu");
    // The v1 answer keeps its shape.
    assert_eq!(
        body,
        json!({"worker_id": "gpu", "worker_url": "https://gpu.local:8500",
            "capability": "invoke:x", "version": "1.0.0"})
    );
    let (_, body) = route(
        &app,
        json!({"verb": "invoke", "capability": "x",
        "slo_constraints": {"min_memory_mb": 4096}}),
    )
    .await;
    assert_eq!(body["worker_id"], "gpu");
    for _ in 0..3 {
        let (_, body) = route(
            &app,
            json!({"verb": "invoke", "capability": "x",
            "strategy": "cheapest"}),
        )
        .await;
        assert_eq!(body["worker_id"], "cpu");
        let (_, body) = route(
            &app,
            json!({"verb": "invoke", "capability": "x",
            "budget_tokens": 2}),
        )
        .await;
        assert_eq!(body["worker_id"], "cpu");
        let (_, body) = route(
            &app,
            json!({"verb": "invoke", "capability": "x",
            "exclude": ["cpu"]}),
        )
        .await;
        assert_eq!(body["worker_id"], "gpu");
    }
}

#[actix_web::test]
async fn an_unmet_route_says_why_per_group() {
    let registry = registry();
    let app = app!(registry);
    register(&app, "a", json!({"cost_tokens_per_invocation": 5.0})).await;
    register(&app, "b", json!({"cost_tokens_per_invocation": 5.0})).await;
    register(&app, "c", json!({})).await;
    let (status, body) = route(
        &app,
        json!({"verb": "invoke", "capability": "x",
        "budget_tokens": 1, "exclude": ["c"]}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!({"error": "no_worker_available", "detail":
            "No worker available for invoke:x: 2 providers: cost 5 tokens > budget 1; 1 provider: excluded by the caller"})
    );
}

#[actix_web::test]
async fn bad_route_fields_are_422_and_named() {
    let registry = registry();
    let app = app!(registry);
    for (body, field) in [
        (
            json!({"verb": "invoke", "capability": "x", "strategy": "fastest"}),
            "strategy",
        ),
        (
            json!({"verb": "invoke", "capability": "x", "budget_tokens": -1}),
            "budget_tokens",
        ),
        (
            json!({"verb": "invoke", "capability": "x", "slo_constraints": {"latency_p95_ms": -5}}),
            "slo_constraints.latency_p95_ms",
        ),
        (
            json!({"verb": "invoke", "capability": "x", "slo_constraints": {"zone": null}}),
            "slo_constraints.zone",
        ),
    ] {
        let (status, answer) = route(&app, body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
        assert_eq!(answer["field"], field);
    }
}

async fn report<S, B>(app: &S, worker_id: &str, outcome: &str) -> (StatusCode, Value)
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    call(
        app,
        TestRequest::post()
            .uri("/report")
            .set_json(json!({"worker_id": worker_id, "outcome": outcome, "latency_ms": 12.5})),
        Some(client()),
    )
    .await
}

#[actix_web::test]
async fn reported_failures_eject_a_worker_and_a_success_brings_it_back() {
    let registry = registry();
    let app = app!(registry);
    register(&app, "a", json!({})).await;
    register(&app, "b", json!({})).await;
    for _ in 0..3 {
        let (status, body) = report(&app, "a", "failure").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, json!({"status": "recorded"}));
    }
    for _ in 0..4 {
        let (_, body) = route(&app, json!({"verb": "invoke", "capability": "x"})).await;
        assert_eq!(body["worker_id"], "b");
    }
    let (_, detail) = call(&app, TestRequest::get().uri("/workers/a"), Some(client())).await;
    assert_eq!(detail["status"], "healthy");
    assert!(detail["ejected_until"].is_string(), "{detail}");
    let (_, list) = call(&app, TestRequest::get().uri("/workers"), Some(client())).await;
    assert!(list["workers"][0]["ejected_until"].is_string(), "{list}");
    assert!(list["workers"][1].get("ejected_until").is_none(), "{list}");
    report(&app, "a", "success").await;
    let (_, detail) = call(&app, TestRequest::get().uri("/workers/a"), Some(client())).await;
    assert!(detail.get("ejected_until").is_none(), "{detail}");
    let mut chosen = Vec::new();
    for _ in 0..2 {
        let (_, body) = route(&app, json!({"verb": "invoke", "capability": "x"})).await;
        chosen.push(body["worker_id"].as_str().unwrap().to_owned());
    }
    assert!(chosen.contains(&"a".to_owned()), "{chosen:?}");
}

#[actix_web::test]
async fn a_report_on_an_unknown_worker_or_a_bad_one_is_refused() {
    let registry = registry();
    let app = app!(registry);
    let (status, body) = report(&app, "ghost", "failure").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "unknown_worker");
    let (status, body) = call(
        &app,
        TestRequest::post()
            .uri("/report")
            .set_json(json!({"worker_id": "ghost", "outcome": "meh"})),
        Some(client()),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
}

#[actix_web::test]
async fn the_original_callers_route_fields_keep_their_v1_meaning() {
    let registry = registry();
    let app = app!(registry);
    register(&app, "plain", json!({})).await;
    // The original's RouteRequest: free-form slo_constraints, who the caller
    // says it is, a budget. No provider declares `p95`: it is ignored, and
    // named in a header; a provider with no cost fits any budget.
    let body = json!({
        "verb": "invoke", "capability": "x",
        "slo_constraints": {"p95": 1}, "requester_identity": "x", "budget_tokens": 10
    });
    let request = TestRequest::post()
        .uri("/route")
        .set_json(body.clone())
        .to_request();
    crank_net::caller::Caller::attach(&request, client());
    let response = test::call_service(&app, request).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response
            .headers()
            .get(crank_controller::controller::IGNORED_CONSTRAINTS_HEADER)
            .map(|v| v.to_str().unwrap()),
        Some("p95")
    );
    // Once a provider declares the key, it is a requirement: the one that
    // does not declare it is skipped, the one that meets it is chosen.
    register(&app, "declared", json!({"constraints": {"p95": 5}})).await;
    for _ in 0..4 {
        let (status, answer) = route(&app, body.clone()).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["worker_id"], "declared");
    }
}
