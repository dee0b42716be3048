//! Trace propagation against real processes: `crank call`, the controller and
//! a worker export to an in-test OTLP/HTTP receiver, and one call is one trace
//! (the caller's span the parent of the route decision's, the report's and the
//! worker's); without an exporter, a caller's `traceparent` still reaches the
//! worker's log lines.

mod common;
#[path = "common/tls_peers.rs"]
mod tls_peers;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, App, HttpResponse, HttpServer};
use common::{eventually, free_port, path_str, run_cli, Fleet};
use crank_proto::wire::WorkerStatus;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::AnyValue;
use prost::Message;

/// One span as the receiver got it.
#[derive(Debug, Clone)]
struct Received {
    service: String,
    name: String,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    kind: i32,
    attributes: Vec<(String, String)>,
}

impl Received {
    fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// OTLP's `SPAN_KIND_SERVER` and `SPAN_KIND_CLIENT`.
const SERVER: i32 = 2;
const CLIENT: i32 = 3;

fn text(value: &Option<AnyValue>) -> String {
    match value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::ArrayValue(array)) => array
            .values
            .iter()
            .map(|v| text(&Some(v.clone())))
            .collect::<Vec<_>>()
            .join(" | "),
        other => format!("{other:?}"),
    }
}

type Spans = Arc<Mutex<Vec<Received>>>;

async fn receive(body: web::Bytes, spans: web::Data<Spans>) -> HttpResponse {
    let Ok(request) = ExportTraceServiceRequest::decode(body) else {
        return HttpResponse::BadRequest().finish();
    };
    let mut spans = spans.lock().unwrap();
    for resource_spans in request.resource_spans {
        let service = resource_spans
            .resource
            .iter()
            .flat_map(|r| r.attributes.iter())
            .find(|kv| kv.key == "service.name")
            .map(|kv| text(&kv.value))
            .unwrap_or_default();
        for span in resource_spans
            .scope_spans
            .into_iter()
            .flat_map(|scope| scope.spans)
        {
            spans.push(Received {
                service: service.clone(),
                name: span.name,
                trace_id: hex(&span.trace_id),
                span_id: hex(&span.span_id),
                parent_span_id: hex(&span.parent_span_id),
                kind: span.kind,
                attributes: span
                    .attributes
                    .iter()
                    .map(|kv| (kv.key.clone(), text(&kv.value)))
                    .collect(),
            });
        }
    }
    // An empty ExportTraceServiceResponse.
    HttpResponse::Ok()
        .content_type("application/x-protobuf")
        .finish()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An OTLP/HTTP receiver on a free port: its base URL and what it received.
fn receiver() -> (String, Spans) {
    let spans: Spans = Arc::default();
    let data = web::Data::new(spans.clone());
    let port = free_port();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route("/v1/traces", web::post().to(receive))
    })
    .workers(1)
    .bind(("127.0.0.1", port))
    .unwrap()
    .run();
    actix_rt::spawn(server);
    (format!("http://127.0.0.1:{port}"), spans)
}

/// A worker's arguments, with `extra`.
fn worker_args<'a>(cert_dir: &'a str, port: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "worker",
        "--cert-dir",
        cert_dir,
        "--port",
        port,
        "--worker-id",
        "hello-world-1",
        "--heartbeat-interval",
        "200ms",
    ];
    args.extend_from_slice(extra);
    args
}

#[cfg(feature = "otlp")]
#[actix_rt::test]
async fn one_call_is_one_trace_from_the_caller_through_the_route_to_the_worker() {
    let (endpoint, received) = receiver();
    let mut fleet = Fleet::new();
    // Batches sent every 100 ms rather than every 5 s.
    let quick = [
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ("RUST_LOG", "info,crank_worker=debug"),
    ];
    let url = fleet.controller_url();
    let port = fleet.controller_port.to_string();
    let cert_dir = fleet.cert_dir();
    let cert_dir = path_str(&cert_dir).to_owned();
    let _controller = fleet.spawn_with_env(
        "controller",
        &[
            "controller",
            "--cert-dir",
            &cert_dir,
            "--port",
            &port,
            "--otlp-endpoint",
            &endpoint,
        ],
        &quick,
    );
    let worker_port = free_port().to_string();
    let args = worker_args(
        &cert_dir,
        &worker_port,
        &["--controller-url", &url, "--otlp-endpoint", &endpoint],
    );
    let worker = fleet.spawn_with_env("hello-world-1", &args, &quick);
    eventually("the worker is healthy", Duration::from_secs(15), || async {
        let status = fleet.worker("hello-world-1").await?.status;
        (status == WorkerStatus::Healthy).then_some(())
    })
    .await;

    let call = [
        "call",
        "invoke:hello.greet",
        "/greet",
        "--data",
        r#"{"message":"traced"}"#,
        "--controller-url",
        &url,
        "--cert-dir",
        &cert_dir,
        "--otlp-endpoint",
        &endpoint,
        // Reports are sent without waiting: the last call's may be cut off
        // by the exit.
        "--count",
        "3",
    ]
    .map(str::to_owned);
    let (ok, out, err) = actix_web::rt::task::spawn_blocking(move || {
        run_cli(&call.iter().map(String::as_str).collect::<Vec<_>>())
    })
    .await
    .unwrap();
    assert!(ok, "{err}");
    assert!(out.contains("3 calls, 0 failed"), "{out}");

    // The caller's span, exported as `crank call` exits.
    let caller = eventually(
        "the caller's span arrives",
        Duration::from_secs(10),
        || async {
            received
                .lock()
                .unwrap()
                .iter()
                .find(|s| s.service == "crank-call")
                .cloned()
        },
    )
    .await;
    assert_eq!(caller.name, "call invoke:hello.greet");
    assert_eq!(caller.kind, CLIENT);
    assert_eq!(
        caller.parent_span_id, "",
        "a root: the command had no parent"
    );
    assert_eq!(caller.attribute("crank.worker_id"), Some("hello-world-1"));

    let in_trace = |service: &'static str, name: &'static str| {
        let received = received.clone();
        let trace_id = caller.trace_id.clone();
        move || {
            let found = received
                .lock()
                .unwrap()
                .iter()
                .find(|s| s.service == service && s.name == name && s.trace_id == trace_id)
                .cloned();
            async move { found }
        }
    };
    let route = eventually(
        "the controller's route span arrives in the caller's trace",
        Duration::from_secs(10),
        in_trace("crank-controller", "POST /route"),
    )
    .await;
    assert_eq!(route.parent_span_id, caller.span_id, "{route:?}");
    assert_eq!(route.kind, SERVER);
    assert_eq!(
        route.attribute("crank.capability"),
        Some("invoke:hello.greet")
    );
    assert_eq!(
        route.attribute("crank.route.strategy"),
        Some("least_loaded")
    );
    assert_eq!(route.attribute("crank.route.candidates"), Some("1"));
    assert_eq!(route.attribute("crank.route.chosen"), Some("hello-world-1"));
    assert_eq!(route.attribute("crank.route.rejected"), Some(""));

    let handled = eventually(
        "the worker's span arrives in the caller's trace",
        Duration::from_secs(10),
        in_trace("crank-hello-world", "POST /greet"),
    )
    .await;
    assert_eq!(handled.parent_span_id, caller.span_id, "{handled:?}");
    assert_eq!(handled.kind, SERVER);
    assert_eq!(handled.attribute("http.response.status_code"), Some("200"));

    // A report joins the trace of the call it reports.
    eventually(
        "a report's span arrives in its call's trace",
        Duration::from_secs(10),
        || async {
            let received = received.lock().unwrap();
            let callers: Vec<&Received> = received
                .iter()
                .filter(|s| s.service == "crank-call")
                .collect();
            received
                .iter()
                .filter(|s| s.service == "crank-controller" && s.name == "POST /report")
                .any(|report| {
                    callers.iter().any(|call| {
                        call.trace_id == report.trace_id && call.span_id == report.parent_span_id
                    })
                })
                .then_some(())
        },
    )
    .await;

    // The worker's log line of that request names the trace.
    let needle = format!("trace_id={}", caller.trace_id);
    eventually(
        "the worker logs the trace id",
        Duration::from_secs(5),
        || async {
            let log = worker.log_text();
            log.lines()
                .any(|line| line.contains("greeting ") && line.contains(&needle))
                .then_some(())
        },
    )
    .await;
    // Heartbeats are not traced: nothing but these requests made spans.
    let names: Vec<String> = received
        .lock()
        .unwrap()
        .iter()
        .map(|s| s.name.clone())
        .collect();
    assert!(names.iter().all(|n| n != "POST /heartbeat"), "{names:?}");
}

#[actix_rt::test]
async fn without_an_exporter_a_callers_trace_still_reaches_the_workers_log() {
    let mut fleet = Fleet::new();
    let cert_dir = fleet.cert_dir();
    let cert_dir = path_str(&cert_dir).to_owned();
    let worker_port = free_port();
    let port = worker_port.to_string();
    let args = worker_args(&cert_dir, &port, &[]);
    let worker = fleet.spawn_with_env(
        "hello-world-1",
        &args,
        &[("RUST_LOG", "info,crank_worker=debug")],
    );
    let client =
        tls_peers::worker_client(std::path::Path::new(&cert_dir), "client", "hello-world-1");
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let traceparent = format!("00-{trace_id}-00f067aa0ba902b7-01");
    let url = format!("https://localhost:{worker_port}/greet");
    eventually(
        "the worker answers a traced call",
        Duration::from_secs(15),
        || {
            let request = client
                .post(&url)
                .insert_header(("traceparent", traceparent.as_str()))
                .send_json(&common::greeting("untraced exporter"));
            async move { (request.await.ok()?.status() == 200).then_some(()) }
        },
    )
    .await;
    let needle = format!("trace_id={trace_id}");
    eventually(
        "the worker logs the caller's trace id",
        Duration::from_secs(5),
        || async {
            let log = worker.log_text();
            log.lines()
                .any(|line| line.contains("greeting 1:") && line.contains(&needle))
                .then_some(())
        },
    )
    .await;
    // A line outside any request carries none.
    let log = worker.log_text();
    let serving = log.lines().find(|l| l.contains("serving")).unwrap();
    assert!(!serving.contains("trace_id="), "{serving}");
}
