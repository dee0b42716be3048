//! Hostile input: each case gets a precise status and a JSON body, the registry is
//! unchanged, and the controller keeps answering. Then a property test throws
//! random JSON and random bytes at `/register`, `/heartbeat` and `/route`.

use actix::Addr;
use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::test::{self, TestRequest};
use crank_controller::controller::controller_app;
use crank_net::caller::Caller;
use crank_net::identity::{PeerIdentity, Role};
use crank_registry::{RegistryActor, RegistrySettings};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde_json::{json, Value};

fn registry() -> Addr<RegistryActor> {
    RegistryActor::start_with_sweeper(
        RegistrySettings::default(),
        std::time::Duration::from_secs(5),
    )
}

/// Sends `body` (raw bytes) to `path` as an admin; returns status and JSON body,
/// failing the test if the body is not JSON.
async fn send<S, B>(app: &S, path: &str, content_type: Option<&str>, body: Vec<u8>) -> (u16, Value)
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let mut req = TestRequest::post().uri(path).set_payload(body);
    if let Some(content_type) = content_type {
        req = req.insert_header(("content-type", content_type));
    }
    let req = req.to_request();
    Caller::attach(&req, PeerIdentity::new(Role::Admin, "fuzz"));
    let response = test::call_service(app, req).await;
    let status = response.status().as_u16();
    let bytes = test::read_body(response).await;
    let body = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!("{path} answered {status} with a non-JSON body ({e}): {bytes:?}")
    });
    (status, body)
}

async fn snapshot<S, B>(app: &S) -> Value
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let req = TestRequest::get().uri("/workers").to_request();
    Caller::attach(&req, PeerIdentity::new(Role::Client, "reader"));
    let response = test::call_service(app, req).await;
    assert_eq!(response.status(), 200, "the controller still answers");
    serde_json::from_slice(&test::read_body(response).await).unwrap()
}

fn valid_registration() -> Value {
    json!({
        "worker_id": "w1",
        "worker_url": "https://w1.local:8500",
        "capabilities": [{"name": "hello.greet", "verb": "invoke", "version": "1.0.0"}]
    })
}

/// Name, Content-Type, body, expected status, expected error code.
type Case<'a> = (&'a str, Option<&'a str>, Vec<u8>, u16, &'a str);

fn nested(depth: usize) -> String {
    format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
}

#[actix_web::test]
async fn each_hostile_registration_gets_a_precise_answer_and_changes_nothing() {
    let registry = registry();
    let app = test::init_service(controller_app(registry.clone())).await;
    let (status, _) = send(
        &app,
        "/register",
        Some("application/json"),
        valid_registration().to_string().into_bytes(),
    )
    .await;
    assert_eq!(status, 200);
    let before = snapshot(&app).await;

    let edit = |f: &dyn Fn(&mut Value)| {
        let mut body = valid_registration();
        f(&mut body);
        body.to_string().into_bytes()
    };
    let many_capabilities: Vec<Value> = (0..257)
        .map(|i| json!({"name": format!("c{i}"), "verb": "invoke", "version": "1.0.0"}))
        .collect();
    let deep_schema = format!(
        r#"{{"worker_id":"w1","worker_url":"https://w1:1","capabilities":[{{"name":"a","verb":"b","version":"1.0.0","input_schema":{{"x":{}}}}}]}}"#,
        nested(200)
    );
    let json = Some("application/json");
    let cases: Vec<Case> = vec![
        (
            "65 KiB body",
            json,
            edit(&|b| b["capabilities"][0]["runtime"] = json!("x".repeat(65 * 1024))),
            413,
            "payload_too_large",
        ),
        (
            "id of 129 chars",
            json,
            edit(&|b| b["worker_id"] = json!("w".repeat(129))),
            422,
            "invalid_field",
        ),
        (
            "id with a slash",
            json,
            edit(&|b| b["worker_id"] = json!("../etc")),
            422,
            "invalid_field",
        ),
        (
            "id with unicode",
            json,
            edit(&|b| b["worker_id"] = json!("wörker")),
            422,
            "invalid_field",
        ),
        (
            "url without host",
            json,
            edit(&|b| b["worker_url"] = json!("https://")),
            422,
            "invalid_field",
        ),
        (
            "ftp url",
            json,
            edit(&|b| b["worker_url"] = json!("ftp://w1:21")),
            422,
            "invalid_field",
        ),
        (
            "257 capabilities",
            json,
            edit(&|b| b["capabilities"] = json!(many_capabilities)),
            422,
            "invalid_field",
        ),
        (
            "runtime of 300 chars",
            json,
            edit(&|b| b["capabilities"][0]["runtime"] = json!("r".repeat(300))),
            422,
            "invalid_field",
        ),
        (
            "name of 300 chars",
            json,
            edit(&|b| b["capabilities"][0]["name"] = json!("n".repeat(300))),
            422,
            "invalid_field",
        ),
        (
            "schema nested 200 deep",
            json,
            deep_schema.into_bytes(),
            400,
            "malformed_json",
        ),
        (
            "text/plain",
            Some("text/plain"),
            valid_registration().to_string().into_bytes(),
            415,
            "unsupported_media_type",
        ),
        (
            "form encoded",
            Some("application/x-www-form-urlencoded"),
            b"worker_id=w1".to_vec(),
            415,
            "unsupported_media_type",
        ),
        (
            "trailing garbage",
            json,
            [valid_registration().to_string().as_bytes(), b"}}"].concat(),
            400,
            "malformed_json",
        ),
        (
            "two documents",
            json,
            [valid_registration().to_string().as_bytes(), b" {}"].concat(),
            400,
            "malformed_json",
        ),
        (
            "not UTF-8",
            json,
            vec![b'{', b'"', 0xff, 0xfe, b'"', b':', b'1', b'}'],
            400,
            "malformed_json",
        ),
        ("empty body", json, Vec::new(), 400, "malformed_json"),
        (
            "huge float",
            json,
            valid_registration()
                .to_string()
                .replace(
                    "\"version\":\"1.0.0\"",
                    "\"version\":\"1.0.0\",\"max_concurrency\":1e400",
                )
                .into_bytes(),
            400,
            "malformed_json",
        ),
        (
            "u32 overflow",
            json,
            edit(&|b| b["capabilities"][0]["max_concurrency"] = json!(99_999_999_999u64)),
            422,
            "invalid_field",
        ),
        (
            "negative concurrency",
            json,
            edit(&|b| b["capabilities"][0]["max_concurrency"] = json!(-1)),
            422,
            "invalid_field",
        ),
        ("null body", json, b"null".to_vec(), 422, "invalid_field"),
        (
            "null capabilities",
            json,
            edit(&|b| b["capabilities"] = Value::Null),
            422,
            "invalid_field",
        ),
        (
            "null capability",
            json,
            edit(&|b| b["capabilities"] = json!([null])),
            422,
            "invalid_field",
        ),
        (
            "null worker_id",
            json,
            edit(&|b| b["worker_id"] = Value::Null),
            422,
            "invalid_field",
        ),
        (
            "schema is a string",
            json,
            edit(&|b| b["capabilities"][0]["input_schema"] = json!("object")),
            422,
            "invalid_field",
        ),
        (
            "array body",
            json,
            b"[1,2,3]".to_vec(),
            422,
            "invalid_field",
        ),
    ];
    for (name, content_type, body, expected, code) in cases {
        let (status, answer) = send(&app, "/register", content_type, body).await;
        assert_eq!(status, expected, "{name}: {answer}");
        assert_eq!(answer["error"], code, "{name}: {answer}");
        assert!(
            answer["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{name}: {answer}"
        );
        assert_eq!(snapshot(&app).await, before, "{name} changed the registry");
    }
}

/// Any JSON value, with keys drawn from the protocol's own field names so the
/// generator reaches past the first layer of validation.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON has no NaN", |f| f.is_finite())
            .prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::from),
        Just(json!("https://w1.local:8500")),
        Just(json!("1.0.0")),
        Just(json!("w1")),
    ];
    let key = prop_oneof![
        Just("worker_id".to_owned()),
        Just("worker_url".to_owned()),
        Just("capabilities".to_owned()),
        Just("name".to_owned()),
        Just("verb".to_owned()),
        Just("version".to_owned()),
        Just("capability".to_owned()),
        Just("load".to_owned()),
        Just("in_flight".to_owned()),
        "[a-z_]{1,10}",
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A valid registration with one field replaced by something random.
fn mutated_registration() -> impl Strategy<Value = Value> {
    let field = prop_oneof![
        Just(vec!["worker_id"]),
        Just(vec!["worker_url"]),
        Just(vec!["capabilities"]),
        Just(vec!["capabilities", "0"]),
        Just(vec!["capabilities", "0", "version"]),
        Just(vec!["capabilities", "0", "name"]),
        Just(vec!["capabilities", "0", "input_schema"]),
        Just(vec!["capabilities", "0", "max_concurrency"]),
    ];
    (field, any_json()).prop_map(|(path, value)| {
        let mut body = valid_registration();
        let mut target = &mut body;
        for step in &path[..path.len() - 1] {
            target = match step.parse::<usize>() {
                Ok(i) => &mut target[i],
                Err(_) => &mut target[*step],
            };
        }
        let last = path[path.len() - 1];
        match last.parse::<usize>() {
            Ok(i) => target[i] = value,
            Err(_) => target[last] = value,
        }
        body
    })
}

#[derive(Debug, Clone)]
enum Payload {
    Json(Value),
    Bytes(Vec<u8>),
}

#[actix_web::test]
async fn random_json_and_bytes_never_crash_and_rejections_change_nothing() {
    let registry = registry();
    let app = test::init_service(controller_app(registry.clone())).await;
    let (status, _) = send(
        &app,
        "/register",
        Some("application/json"),
        valid_registration().to_string().into_bytes(),
    )
    .await;
    assert_eq!(status, 200);

    let mut runner = TestRunner::deterministic();
    let payloads = prop_oneof![
        3 => any_json().prop_map(Payload::Json),
        3 => mutated_registration().prop_map(Payload::Json),
        2 => prop::collection::vec(any::<u8>(), 0..300).prop_map(Payload::Bytes),
    ];
    let mut state = snapshot(&app).await;
    let mut accepted = 0;
    for case in 0..600 {
        let payload = payloads.new_tree(&mut runner).unwrap().current();
        let path = ["/register", "/heartbeat", "/route"][case % 3];
        let (bytes, shown) = match payload {
            Payload::Json(value) => (value.to_string().into_bytes(), value.to_string()),
            Payload::Bytes(bytes) => (bytes.clone(), format!("{bytes:?}")),
        };
        let (status, answer) = send(&app, path, Some("application/json"), bytes).await;
        assert!(
            status < 500,
            "{path} answered {status} to {shown}: {answer}"
        );
        let now = snapshot(&app).await;
        if status == 200 {
            accepted += 1;
            state = now;
        } else {
            assert!(
                answer["error"].is_string(),
                "{path} {status} without an error code: {answer}"
            );
            assert_eq!(
                now, state,
                "{path} rejected {shown} with {status} but changed the registry"
            );
        }
    }
    assert!(
        accepted > 0,
        "the generator should produce some valid requests too"
    );
}
