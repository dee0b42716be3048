//! A worker's `GET /metrics`: its registration state, the heartbeats sent
//! through a [`MeteredLink`] by outcome with their round-trip time, the
//! requests it served; and who may read it.

use std::cell::Cell;

use actix_web::http::StatusCode;
use actix_web::test::{self, TestRequest};
use crank_agent::link::{ControllerLink, LinkError};
use crank_agent::registration::{RegistrationState, RegistrationStatus};
use crank_net::caller::Caller;
use crank_net::identity::{PeerIdentity, Role};
use crank_proto::wire::{HeartbeatRequest, RegisterRequest, RegisterResponse};
use crank_worker::metrics::MeteredLink;
use futures_util::future::{ready, LocalBoxFuture};
use futures_util::FutureExt;
use serde_json::json;

mod common;
use common::sample;

/// A controller that answers heartbeats from a script, in order.
struct Scripted(Cell<Vec<Result<(), LinkError>>>);

impl ControllerLink for Scripted {
    fn register(
        &self,
        _: RegisterRequest,
    ) -> LocalBoxFuture<'static, Result<RegisterResponse, LinkError>> {
        ready(Err(LinkError::Unreachable("not in this test".into()))).boxed_local()
    }

    fn heartbeat(&self, _: HeartbeatRequest) -> LocalBoxFuture<'static, Result<(), LinkError>> {
        let mut script = self.0.take();
        let answer = script.remove(0);
        self.0.set(script);
        ready(answer).boxed_local()
    }

    fn deregister(
        &self,
        _: &str,
        _: Option<&str>,
    ) -> LocalBoxFuture<'static, Result<(), LinkError>> {
        ready(Ok(())).boxed_local()
    }

    fn describe(&self) -> String {
        "a scripted controller".into()
    }
}

#[actix_web::test]
async fn a_worker_shows_its_registration_heartbeats_and_requests() {
    let status = RegistrationStatus::new(RegistrationState::Registering);
    let worker = crank_worker::hello::worker();
    let context = worker.context("hello-world-1", status);
    let link = MeteredLink::new(
        Scripted(Cell::new(vec![
            Ok(()),
            Ok(()),
            Err(LinkError::UnknownWorker),
            Err(LinkError::Unreachable("refused".into())),
        ])),
        context.metrics.clone(),
    );
    let beat = || HeartbeatRequest {
        worker_id: "hello-world-1".into(),
        load: None,
        instance: None,
    };
    for _ in 0..4 {
        let _ = link.heartbeat(beat()).await;
    }
    let app = test::init_service(worker.app(context)).await;
    let request = TestRequest::post()
        .uri("/greet")
        .set_json(json!({"message": "world"}))
        .to_request();
    Caller::attach(&request, PeerIdentity::new(Role::Client, "cli"));
    assert_eq!(
        test::call_service(&app, request).await.status(),
        StatusCode::OK
    );

    for (scraped, reader) in [Role::Client, Role::Admin, Role::Worker, Role::Controller]
        .into_iter()
        .enumerate()
    {
        let request = TestRequest::get().uri("/metrics").to_request();
        Caller::attach(&request, PeerIdentity::new(reader, "someone"));
        let response = test::call_service(&app, request).await;
        assert_eq!(response.status(), StatusCode::OK);
        let text = String::from_utf8(test::read_body(response).await.to_vec()).unwrap();
        assert!(text.ends_with("# EOF\n"));
        for (name, value) in [
            (r#"crank_worker_registration{state="registering"}"#, 1.0),
            (r#"crank_worker_registration{state="registered"}"#, 0.0),
            (r#"crank_worker_heartbeats_total{outcome="ok"}"#, 2.0),
            (
                r#"crank_worker_heartbeats_total{outcome="unknown_worker"}"#,
                1.0,
            ),
            (
                r#"crank_worker_heartbeats_total{outcome="unreachable"}"#,
                1.0,
            ),
            // Answered heartbeats only: an unreachable controller has no round trip.
            ("crank_worker_heartbeat_rtt_seconds_count", 3.0),
        ] {
            assert_eq!(sample(&text, name), value, "{name}");
        }
        // Every request served, this worker's endpoints together: the greeting,
        // and the scrapes before this one.
        let served = sample(
            &text,
            r#"crank_http_requests_total{endpoint="/*",status="2xx"}"#,
        );
        assert_eq!(served, (1 + scraped) as f64);
    }
    let request = TestRequest::get().uri("/metrics").to_request();
    let response = test::call_service(&app, request).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN, "no identity");
}
