//! crank's worker with the original system's controller: a stand-in that
//! answers exactly as the original does (`{"status":"registered"}` and nothing
//! more to a registration, so no heartbeat advice; `404
//! {"status":"unknown_worker"}` to a heartbeat of a worker it does not know),
//! served over mTLS with the fleet's controller certificate. A real `crank
//! worker` registers, heartbeats at its own interval, registers again once
//! forgotten, and deregisters on SIGTERM.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, App, HttpRequest, HttpResponse};
use common::{eventually, free_port, path_str, Fleet};
use crank_services::server::{mtls_server, ServerLimits};
use crank_services::tls::{server_config, TlsFiles};
use nix::sys::signal::Signal;
use serde_json::{json, Value};

/// What the stand-in was sent, in order: (method and path, body).
#[derive(Default)]
struct Original {
    calls: Mutex<Vec<(String, Value)>>,
    /// The next heartbeat is answered as a restarted controller would.
    forget: AtomicBool,
}

impl Original {
    fn calls(&self) -> Vec<(String, Value)> {
        self.calls.lock().unwrap().clone()
    }

    fn count(&self, call: &str) -> usize {
        self.calls().iter().filter(|(c, _)| c == call).count()
    }

    fn record(&self, request: &HttpRequest, body: &[u8]) {
        let body = serde_json::from_slice(body).unwrap_or(Value::Null);
        let call = format!("{} {}", request.method(), request.path());
        self.calls.lock().unwrap().push((call, body));
    }
}

async fn register(
    state: web::Data<Original>,
    request: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    state.record(&request, &body);
    HttpResponse::Ok().json(json!({"status": "registered"}))
}

async fn heartbeat(
    state: web::Data<Original>,
    request: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    state.record(&request, &body);
    if state.forget.swap(false, Ordering::SeqCst) {
        return HttpResponse::NotFound()
            .json(json!({"status": "unknown_worker", "acknowledged": false}));
    }
    HttpResponse::Ok().json(json!({"status": "ok", "acknowledged": true}))
}

async fn deregister(
    state: web::Data<Original>,
    request: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    state.record(&request, b"null");
    HttpResponse::Ok().json(json!({"status": "deregistered", "worker_id": id.into_inner()}))
}

/// Serves the stand-in with the fleet's controller certificate; its URL.
fn start_original(fleet: &Fleet, state: Arc<Original>) -> String {
    let tls = server_config(&TlsFiles::in_dir(&fleet.cert_dir(), "controller")).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let limits = ServerLimits {
        workers: 1,
        ..ServerLimits::default()
    };
    let server = mtls_server("original", listener, tls, limits, false, move || {
        App::new()
            .app_data(web::Data::from(state.clone()))
            .route("/register", web::post().to(register))
            .route("/heartbeat", web::post().to(heartbeat))
            .route("/deregister/{id}", web::delete().to(deregister))
    })
    .unwrap();
    actix_rt::spawn(server);
    format!("https://localhost:{port}")
}

#[actix_rt::test]
async fn crank_worker_registers_heartbeats_recovers_and_leaves_with_the_original_controller() {
    let mut fleet = Fleet::new();
    let state = Arc::new(Original::default());
    let url = start_original(&fleet, state.clone());
    let port = free_port().to_string();
    let mut worker = fleet.spawn(
        "hello-world-1",
        &[
            "worker",
            "--cert-dir",
            path_str(&fleet.cert_dir()),
            "--port",
            &port,
            "--controller-url",
            &url,
            "--heartbeat-interval",
            "200ms",
        ],
    );
    eventually("the worker heartbeats", Duration::from_secs(15), || {
        let beats = state.count("POST /heartbeat");
        async move { (beats >= 2).then_some(()) }
    })
    .await;
    let calls = state.calls();
    let (first, registration) = &calls[0];
    assert_eq!(first, "POST /register");
    assert_eq!(registration["worker_id"], "hello-world-1");
    assert_eq!(
        registration["worker_url"],
        format!("https://localhost:{port}")
    );
    assert_eq!(registration["capabilities"][0]["verb"], "invoke");
    assert_eq!(registration["capabilities"][0]["name"], "hello.greet");
    let (_, beat) = &calls[1];
    assert_eq!(beat["worker_id"], "hello-world-1");
    assert_eq!(beat["load"]["capacity"], 256);

    // The original restarted and forgot the worker: it registers again, and beats on.
    state.forget.store(true, Ordering::SeqCst);
    eventually(
        "the worker registers again",
        Duration::from_secs(15),
        || {
            let registrations = state.count("POST /register");
            async move { (registrations == 2).then_some(()) }
        },
    )
    .await;
    let beats = state.count("POST /heartbeat");
    eventually(
        "it beats again after registering",
        Duration::from_secs(15),
        || {
            let now = state.count("POST /heartbeat");
            async move { (now > beats).then_some(()) }
        },
    )
    .await;

    worker.signal(Signal::SIGTERM);
    let status = worker.exits_within(Duration::from_secs(10)).await;
    assert!(status.success(), "{status}");
    let calls = state.calls();
    assert_eq!(
        calls.last().map(|(call, _)| call.as_str()),
        Some("DELETE /deregister/hello-world-1")
    );
    assert!(worker.log_text().contains("deregistered from controller"));
}
