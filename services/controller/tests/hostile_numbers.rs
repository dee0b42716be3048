//! Absurd numbers from a peer never reach the registry's arithmetic: each is
//! refused at the edge with 422 naming its field (or, where the value is one
//! the controller can use, accepted), the registry is unchanged, and routes,
//! reads and heartbeats keep answering. And `/health` tells the truth when the
//! registry is gone.

mod common;

use actix::Actor;
use actix_web::http::StatusCode;
use actix_web::test::{self, TestRequest};
use crank_controller::controller::controller_app;
use crank_net::identity::{PeerIdentity, Role};
use crank_registry::{RegistryActor, RegistrySettings};
use serde_json::{json, Value};

use common::app::{call, registry};

fn admin() -> Option<PeerIdentity> {
    Some(PeerIdentity::new(Role::Admin, "hostile"))
}

/// The values the issue lists, as JSON numbers (some do not fit the field's
/// type at all and must be refused by the parser, naming the field too).
const HOSTILE: [&str; 8] = [
    "1e300",
    "-1e300",
    "1.8e308",
    "4294967295",
    "18446744073709551615",
    "-1",
    "0",
    "1e-300",
];

fn register_body(capability_extra: &str) -> Vec<u8> {
    format!(
        r#"{{"worker_id":"n1","worker_url":"https://localhost:9","capabilities":[{{"name":"num.op","verb":"invoke","version":"1.0.0"{capability_extra}}}]}}"#
    )
    .into_bytes()
}

fn post(path: &str, body: Vec<u8>) -> TestRequest {
    TestRequest::post()
        .uri(path)
        .insert_header(("content-type", "application/json"))
        .set_payload(body)
}

/// Status is 200 or 422 (never a 5xx); a 422 names `field`. A number JSON
/// cannot hold as a double (`1.8e308`) is malformed JSON: 400, said so.
fn refused_naming_or_accepted(status: StatusCode, body: &Value, field: &str, what: &str) {
    match status.as_u16() {
        200 => {}
        400 if body["error"] == "malformed_json" => {
            assert!(
                body["detail"]
                    .as_str()
                    .unwrap()
                    .contains("number out of range"),
                "{what}: {body}"
            );
        }
        422 | 400 => {
            let named = body.to_string();
            assert!(
                named.contains(field),
                "{what}: {status} {body} names {field}"
            );
        }
        other => panic!("{what}: answered {other} {body}"),
    }
}

#[actix_web::test]
async fn the_issue_sequence_answers_422_at_the_heartbeat_and_routing_goes_on() {
    let app = test::init_service(controller_app(registry())).await;
    let (status, _) = call(
        &app,
        post("/register", register_body(r#","max_concurrency":4"#)),
        admin(),
    )
    .await;
    assert_eq!(status, 200);
    let beat = br#"{"worker_id":"n1","load":{"in_flight":0,"capacity":4,"capabilities":[{"capability":"invoke:num.op","in_flight":0,"requests":1,"window_s":10,"p50_ms":1e300}]}}"#;
    let (status, body) = call(&app, post("/heartbeat", beat.to_vec()), admin()).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["field"], "load.capabilities[0].p50_ms", "{body}");
    let route = br#"{"verb":"invoke","capability":"num.op"}"#;
    let (status, body) = call(&app, post("/route", route.to_vec()), admin()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["worker_id"], "n1");
    // The refused beat changed nothing: no load was recorded.
    let (status, body) = call(&app, TestRequest::get().uri("/workers/n1"), admin()).await;
    assert_eq!(status, 200);
    assert!(body.get("load").is_none_or(Value::is_null), "{body}");
    let (status, _) = call(&app, TestRequest::get().uri("/health"), admin()).await;
    assert_eq!(status, 200);
}

#[actix_web::test]
async fn every_numeric_field_takes_every_hostile_value_without_harm() {
    let app = test::init_service(controller_app(registry())).await;
    let (status, _) = call(&app, post("/register", register_body("")), admin()).await;
    assert_eq!(status, 200);
    for value in HOSTILE {
        // Capability fields, at registration of another worker.
        for field in ["max_concurrency", "cost_tokens_per_invocation", "slo_bid"] {
            let body = register_body(&format!(r#","{field}":{value}"#))
                .into_iter()
                .collect::<Vec<u8>>();
            let body = String::from_utf8(body).unwrap().replace("\"n1\"", "\"n2\"");
            let (status, answer) = call(&app, post("/register", body.into_bytes()), admin()).await;
            refused_naming_or_accepted(status, &answer, field, &format!("{field}={value}"));
        }
        for (field, extra) in [
            (
                "constraints",
                format!(r#","constraints":{{"memory_mb":{value}}}"#),
            ),
            ("slo", format!(r#","slo":{{"p95_ms":{value}}}"#)),
        ] {
            let body = String::from_utf8(register_body(&extra))
                .unwrap()
                .replace("\"n1\"", "\"n2\"");
            let (status, answer) = call(&app, post("/register", body.into_bytes()), admin()).await;
            refused_naming_or_accepted(status, &answer, field, &format!("{field}={value}"));
        }
        // Heartbeat load, each figure.
        for (field, load) in [
            (
                "load.in_flight",
                format!(r#"{{"in_flight":{value},"capacity":4}}"#),
            ),
            (
                "load.capacity",
                format!(r#"{{"in_flight":0,"capacity":{value}}}"#),
            ),
            (
                "load.capabilities[0]",
                format!(
                    r#"{{"in_flight":0,"capacity":4,"capabilities":[{{"capability":"invoke:num.op","in_flight":{value},"requests":1,"window_s":10}}]}}"#
                ),
            ),
            (
                "load.capabilities[0]",
                format!(
                    r#"{{"in_flight":0,"capacity":4,"capabilities":[{{"capability":"invoke:num.op","in_flight":0,"requests":{value},"window_s":10}}]}}"#
                ),
            ),
            (
                "load.capabilities[0].window_s",
                format!(
                    r#"{{"in_flight":0,"capacity":4,"capabilities":[{{"capability":"invoke:num.op","in_flight":0,"requests":1,"window_s":{value}}}]}}"#
                ),
            ),
            (
                "load.capabilities[0]",
                format!(
                    r#"{{"in_flight":0,"capacity":4,"capabilities":[{{"capability":"invoke:num.op","in_flight":0,"requests":1,"window_s":10,"p95_ms":{value},"error_rate":{value}}}]}}"#
                ),
            ),
        ] {
            let beat = format!(r#"{{"worker_id":"n1","load":{load}}}"#);
            let (status, answer) = call(&app, post("/heartbeat", beat.into_bytes()), admin()).await;
            refused_naming_or_accepted(status, &answer, field, &format!("{field}={value}"));
        }
        // Route budgets and constraints.
        for (field, route) in [
            ("budget_tokens", format!(r#""budget_tokens":{value}"#)),
            ("slo_bid", format!(r#""slo_bid":{value}"#)),
            (
                "slo_constraints.latency_p95_ms",
                format!(r#""slo_constraints":{{"latency_p95_ms":{value}}}"#),
            ),
        ] {
            let body = format!(r#"{{"verb":"invoke","capability":"num.op",{route}}}"#);
            let (status, answer) = call(&app, post("/route", body.into_bytes()), admin()).await;
            assert!(
                [200, 404, 422, 400].contains(&status.as_u16()),
                "{field}={value}: {status} {answer}"
            );
            if status == 422 {
                assert!(
                    answer.to_string().contains(field),
                    "{field}={value}: {answer}"
                );
            }
        }
        // Reports.
        let report = format!(r#"{{"worker_id":"n1","outcome":"success","latency_ms":{value}}}"#);
        let (status, answer) = call(&app, post("/report", report.into_bytes()), admin()).await;
        refused_naming_or_accepted(
            status,
            &answer,
            "latency_ms",
            &format!("latency_ms={value}"),
        );
        // Whatever came before, the registry answers every kind of request.
        let (status, body) = call(
            &app,
            post(
                "/route",
                br#"{"verb":"invoke","capability":"num.op"}"#.to_vec(),
            ),
            admin(),
        )
        .await;
        assert_eq!(status, 200, "after {value}: {body}");
        let beat = br#"{"worker_id":"n1","load":{"in_flight":0,"capacity":4}}"#;
        let (status, body) = call(&app, post("/heartbeat", beat.to_vec()), admin()).await;
        assert_eq!(status, 200, "after {value}: {body}");
        let (status, _) = call(&app, TestRequest::get().uri("/workers"), admin()).await;
        assert_eq!(status, 200, "after {value}");
    }
}

#[actix_web::test]
async fn health_and_readiness_answer_503_once_the_registry_is_gone() {
    let arbiter = actix::Arbiter::new();
    let registry = Actor::start_in_arbiter(&arbiter.handle(), |_| {
        RegistryActor::new(RegistrySettings::default())
    });
    let app = test::init_service(controller_app(registry.clone())).await;
    let (status, body) = call(&app, TestRequest::get().uri("/health"), admin()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "healthy");
    let (status, body) = call(&app, TestRequest::get().uri("/ready"), admin()).await;
    assert_eq!((status.as_u16(), &body["status"]), (200, &json!("ready")));

    // The registry's thread ends: its actor with it.
    arbiter.stop();
    arbiter.join().unwrap();
    let (status, body) = call(&app, TestRequest::get().uri("/health"), admin()).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "unhealthy");
    assert!(
        body["detail"].as_str().unwrap().contains("registry"),
        "{body}"
    );
    let (status, body) = call(&app, TestRequest::get().uri("/ready"), admin()).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "not_ready");
}
