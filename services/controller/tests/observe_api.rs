//! Handler tests of what observes the fleet: `GET /metrics` (content and who
//! may read it), `GET /ui`, and `GET /watch` (snapshot, order, resume, and the
//! resync of a watcher that fell behind).

use std::collections::VecDeque;
use std::pin::Pin;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::test::{self, TestRequest};
use crank_controller::controller::controller_app;
use crank_controller::controller_state::{ControllerState, WatchLimits};
use crank_controller::watch::{SseMessage, SseParser};
use crank_net::caller::Caller;
use crank_net::identity::{PeerIdentity, Role};
use crank_proto::wire::{SnapshotReason, WatchEvent, WatchKind, WatchSnapshot};
use crank_registry::RegistrySettings;
use serde_json::json;

mod common;
use common::sample;

fn identity(role: Role, name: &str) -> PeerIdentity {
    PeerIdentity::new(role, name)
}

fn readers() -> [PeerIdentity; 4] {
    [
        identity(Role::Client, "cli"),
        identity(Role::Admin, "ops"),
        identity(Role::Worker, "w1"),
        identity(Role::Controller, "ctl"),
    ]
}

fn state(backlog: usize) -> ControllerState {
    ControllerState::start(
        RegistrySettings::default(),
        None,
        WatchLimits {
            backlog,
            history: backlog,
        },
    )
}

fn request(method: &str, uri: &str, as_: Option<PeerIdentity>) -> actix_http::Request {
    let builder = match method {
        "POST" => TestRequest::post(),
        "DELETE" => TestRequest::delete(),
        _ => TestRequest::get(),
    };
    let request = builder.uri(uri).to_request();
    if let Some(identity) = as_ {
        Caller::attach(&request, identity);
    }
    request
}

/// Calls `app` as `as_` and reads the whole answer: status, content type, body.
async fn call<S, B>(app: &S, request: actix_http::Request) -> (StatusCode, String, String)
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let response = test::call_service(app, request).await;
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = test::read_body(response).await;
    (
        status,
        content_type,
        String::from_utf8(body.to_vec()).unwrap(),
    )
}

async fn register<S, B>(app: &S, id: &str)
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let request = TestRequest::post()
        .uri("/register")
        .set_json(json!({
            "worker_id": id,
            "worker_url": format!("https://{id}.local:8500"),
            "capabilities": [{"name": "hello.greet", "verb": "invoke", "version": "1.0.0"}]
        }))
        .to_request();
    Caller::attach(&request, identity(Role::Admin, "ops"));
    let response = test::call_service(app, request).await;
    assert_eq!(response.status(), StatusCode::OK);
}

async fn post<S, B>(app: &S, uri: &str, body: serde_json::Value) -> StatusCode
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let request = TestRequest::post().uri(uri).set_json(body).to_request();
    Caller::attach(&request, identity(Role::Admin, "ops"));
    test::call_service(app, request).await.status()
}

#[actix_web::test]
async fn metrics_answer_openmetrics_to_every_identity_and_no_one_else() {
    let app = test::init_service(controller_app(state(64))).await;
    for reader in readers() {
        let (status, content_type, body) =
            call(&app, request("GET", "/metrics", Some(reader.clone()))).await;
        assert_eq!(status, StatusCode::OK, "{reader}");
        assert!(content_type.starts_with("application/openmetrics-text; version=1.0.0"));
        assert!(body.ends_with("# EOF\n"), "{body}");
    }
    for path in [
        "/metrics",
        "/watch",
        "/ui",
        "/ui/dashboard.js",
        "/ui/dashboard.css",
    ] {
        let (status, _, body) = call(&app, request("GET", path, None)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        assert!(body.contains("no_identity"), "{path}: {body}");
    }
}

#[actix_web::test]
async fn metrics_count_what_the_controller_did() {
    let app = test::init_service(controller_app(state(64))).await;
    register(&app, "w1").await;
    register(&app, "w1").await;
    register(&app, "w2").await;
    let beat = |id: &str| json!({"worker_id": id});
    assert_eq!(post(&app, "/heartbeat", beat("w1")).await, StatusCode::OK);
    assert_eq!(
        post(&app, "/heartbeat", beat("w9")).await,
        StatusCode::NOT_FOUND
    );
    // w9 registers after it was told it is unknown: a re-registration after 404.
    register(&app, "w9").await;
    let route = |capability: &str| json!({"verb": "invoke", "capability": capability});
    assert_eq!(
        post(&app, "/route", route("hello.greet")).await,
        StatusCode::OK
    );
    assert_eq!(
        post(&app, "/route", route("nope")).await,
        StatusCode::NOT_FOUND
    );
    // Three failures in a row eject w1.
    for _ in 0..3 {
        let failed = json!({"worker_id": "w1", "outcome": "failure"});
        assert_eq!(post(&app, "/report", failed).await, StatusCode::OK);
    }
    let (status, _, _) = call(
        &app,
        request(
            "DELETE",
            "/deregister/w2",
            Some(identity(Role::Admin, "ops")),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    let (_, _, text) = call(
        &app,
        request("GET", "/metrics", Some(identity(Role::Client, "cli"))),
    )
    .await;
    for (name, value) in [
        (r#"crank_registrations_total{outcome="new"}"#, 3.0),
        (r#"crank_registrations_total{outcome="replaced"}"#, 1.0),
        ("crank_reregistrations_after_unknown_total", 1.0),
        ("crank_deregistrations_total", 1.0),
        ("crank_evictions_total", 0.0),
        (r#"crank_heartbeats_total{outcome="ok"}"#, 1.0),
        (r#"crank_heartbeats_total{outcome="unknown_worker"}"#, 1.0),
        (r#"crank_heartbeats_total{outcome="superseded"}"#, 0.0),
        (r#"crank_routes_total{outcome="ok"}"#, 1.0),
        (r#"crank_routes_total{outcome="no_worker_available"}"#, 1.0),
        (r#"crank_call_reports_total{outcome="failure"}"#, 3.0),
        (r#"crank_call_reports_total{outcome="success"}"#, 0.0),
        ("crank_ejections_total", 1.0),
        ("crank_workers_ejected", 1.0),
        (r#"crank_registry_changes_total{change="registered"}"#, 4.0),
        (
            r#"crank_registry_changes_total{change="deregistered"}"#,
            1.0,
        ),
        (r#"crank_workers{state="healthy"}"#, 2.0),
        (r#"crank_workers{state="suspect"}"#, 0.0),
        (r#"crank_workers{state="stale"}"#, 0.0),
        ("crank_capabilities", 1.0),
        (
            r#"crank_capability_workers{capability="invoke:hello.greet"}"#,
            2.0,
        ),
        (
            r#"crank_http_request_duration_seconds_count{endpoint="/heartbeat"}"#,
            2.0,
        ),
        (
            r#"crank_http_requests_total{endpoint="/register",status="2xx"}"#,
            4.0,
        ),
        (
            r#"crank_http_requests_total{endpoint="/heartbeat",status="4xx"}"#,
            1.0,
        ),
        ("crank_registry_mailbox_depth", 0.0),
        ("crank_watchers", 0.0),
    ] {
        assert_eq!(sample(&text, name), value, "{name}");
    }
    for family in [
        "crank_sweep_duration_seconds",
        "crank_open_connections",
        "crank_tls_handshakes",
        "crank_tls_refused",
        "crank_scrape_registry_hold_seconds",
    ] {
        assert!(text.contains(&format!("# TYPE {family} ")), "{family}");
    }
}

#[actix_web::test]
async fn the_dashboard_is_one_self_contained_page() {
    let app = test::init_service(controller_app(state(64))).await;
    for (path, kind) in [
        ("/ui", "text/html"),
        ("/ui/dashboard.js", "text/javascript"),
        ("/ui/dashboard.css", "text/css"),
    ] {
        for reader in readers() {
            let response = test::call_service(&app, request("GET", path, Some(reader))).await;
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            let headers = response.headers();
            assert!(headers
                .get("content-type")
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with(kind));
            assert!(headers
                .get("content-security-policy")
                .unwrap()
                .to_str()
                .unwrap()
                .contains("default-src 'none'"));
        }
    }
    let (_, _, page) = call(
        &app,
        request("GET", "/ui", Some(identity(Role::Client, "cli"))),
    )
    .await;
    assert!(page.contains(r#"<script src="/ui/dashboard.js">"#));
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "no CDN"
    );
    let (_, _, script) = call(
        &app,
        request(
            "GET",
            "/ui/dashboard.js",
            Some(identity(Role::Client, "cli")),
        ),
    )
    .await;
    for uses in [
        "new EventSource('/watch')",
        "fetch('/metrics'",
        "fetch(`/workers/",
    ] {
        assert!(script.contains(uses), "{uses}");
    }
}

/// An SSE answer being read message by message.
struct Stream<B: MessageBody> {
    body: Pin<Box<B>>,
    parser: SseParser,
    queue: VecDeque<SseMessage>,
}

impl<B: MessageBody> Stream<B> {
    fn of(response: ServiceResponse<B>) -> Self {
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers().get("content-type").unwrap(),
            "text/event-stream"
        );
        Stream {
            body: Box::pin(response.into_body()),
            parser: SseParser::default(),
            queue: VecDeque::new(),
        }
    }

    async fn next(&mut self) -> SseMessage {
        loop {
            if let Some(message) = self.queue.pop_front() {
                return message;
            }
            let body = &mut self.body;
            let chunk = tokio::time::timeout(
                Duration::from_secs(10),
                std::future::poll_fn(|cx| body.as_mut().poll_next(cx)),
            )
            .await
            .expect("a message within 10 s")
            .expect("the stream goes on")
            .map_err(|e| -> Box<dyn std::error::Error> { e.into() })
            .unwrap();
            self.queue.extend(self.parser.feed(&chunk));
        }
    }

    async fn snapshot(&mut self) -> WatchSnapshot {
        let message = self.next().await;
        assert_eq!(message.event, "snapshot", "{message:?}");
        let snapshot: WatchSnapshot = serde_json::from_str(&message.data).unwrap();
        assert_eq!(message.id, Some(snapshot.last_event_id.to_string()));
        snapshot
    }

    async fn event(&mut self) -> WatchEvent {
        let message = self.next().await;
        let event: WatchEvent =
            serde_json::from_str(&message.data).unwrap_or_else(|e| panic!("{message:?}: {e}"));
        assert_eq!(message.event, event.kind.as_str());
        assert_eq!(message.id, Some(event.id.to_string()));
        event
    }
}

async fn watch<S, B>(app: &S, last_event_id: Option<&str>) -> Stream<B>
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let mut builder = TestRequest::get().uri("/watch");
    if let Some(id) = last_event_id {
        builder = builder.insert_header(("last-event-id", id));
    }
    let request = builder.to_request();
    Caller::attach(&request, identity(Role::Client, "cli"));
    Stream::of(test::call_service(app, request).await)
}

#[actix_web::test]
async fn watch_starts_with_a_snapshot_then_streams_every_change_in_order() {
    let app = test::init_service(controller_app(state(1024))).await;
    register(&app, "w0").await;
    for reader in readers() {
        let request = request("GET", "/watch", Some(reader));
        let mut stream = Stream::of(test::call_service(&app, request).await);
        assert_eq!(stream.snapshot().await.workers.len(), 1);
    }
    let mut stream = watch(&app, None).await;
    let snapshot = stream.snapshot().await;
    assert_eq!(snapshot.reason, SnapshotReason::Start);
    assert_eq!(snapshot.last_event_id, 1);
    assert_eq!(snapshot.workers[0].worker_id, "w0");
    for i in 1..=200 {
        register(&app, &format!("w{i}")).await;
    }
    let (status, _, _) = call(
        &app,
        request(
            "DELETE",
            "/deregister/w7",
            Some(identity(Role::Admin, "ops")),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    for i in 1..=200u64 {
        let event = stream.event().await;
        assert_eq!(event.id, 1 + i);
        assert_eq!(event.kind, WatchKind::Registered);
        assert_eq!(event.worker_id, format!("w{i}"));
        assert_eq!(event.capabilities, ["invoke:hello.greet"]);
    }
    let event = stream.event().await;
    assert_eq!(
        (event.id, event.kind, event.worker_id.as_str()),
        (202, WatchKind::Deregistered, "w7")
    );
}

#[actix_web::test]
async fn watch_resumes_after_last_event_id_or_sends_a_snapshot_marked_fresh() {
    let app = test::init_service(controller_app(state(4))).await;
    for i in 1..=3 {
        register(&app, &format!("w{i}")).await;
    }
    // Changes 2 and 3 are remembered: replayed, no snapshot.
    let mut resumed = watch(&app, Some("1")).await;
    assert_eq!(resumed.event().await.worker_id, "w2");
    assert_eq!(resumed.event().await.worker_id, "w3");
    register(&app, "w4").await;
    assert_eq!(resumed.event().await.id, 4);

    // An id never given (another controller's), or one forgotten.
    for last in ["999", "not-a-number"] {
        let mut fresh = watch(&app, Some(last)).await;
        let snapshot = fresh.snapshot().await;
        let expected = if last == "999" {
            SnapshotReason::ResumeUnavailable
        } else {
            SnapshotReason::Start
        };
        assert_eq!(snapshot.reason, expected, "{last}");
        assert_eq!(snapshot.workers.len(), 4);
    }
    for i in 5..=10 {
        register(&app, &format!("w{i}")).await;
    }
    let mut forgotten = watch(&app, Some("2")).await;
    let snapshot = forgotten.snapshot().await;
    assert_eq!(snapshot.reason, SnapshotReason::ResumeUnavailable);
    assert_eq!(snapshot.last_event_id, 10);
}

#[actix_web::test]
async fn a_watcher_that_falls_behind_is_sent_resync_and_a_fresh_snapshot() {
    let backlog = 8;
    let app = test::init_service(controller_app(state(backlog))).await;
    let mut slow = watch(&app, None).await;
    assert_eq!(slow.snapshot().await.last_event_id, 0);
    // The watcher reads nothing while 100 workers register: the controller
    // keeps `backlog` changes for it, not 100.
    for i in 0..100 {
        register(&app, &format!("w{i}")).await;
    }
    let message = slow.next().await;
    assert_eq!(message.event, "resync", "{message:?}");
    let resync: crank_proto::wire::Resync = serde_json::from_str(&message.data).unwrap();
    assert_eq!(resync.missed, 100 - backlog as u64);
    let snapshot = slow.snapshot().await;
    assert_eq!(snapshot.reason, SnapshotReason::Resync);
    assert_eq!(snapshot.last_event_id, 100);
    assert_eq!(snapshot.workers.len(), 100);
    // And it goes on from there, in order.
    register(&app, "late").await;
    let event = slow.event().await;
    assert_eq!((event.id, event.worker_id.as_str()), (101, "late"));
}

#[actix_web::test]
async fn a_registry_started_without_a_hub_says_it_serves_no_stream() {
    let registry = crank_registry::RegistryActor::start_with_sweeper(
        RegistrySettings::default(),
        Duration::from_secs(5),
    );
    let app = test::init_service(controller_app(registry)).await;
    let (status, _, body) = call(
        &app,
        request("GET", "/watch", Some(identity(Role::Client, "cli"))),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("watch_unavailable"), "{body}");
}
