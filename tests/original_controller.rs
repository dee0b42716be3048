//! crank's worker with the original system's controller: a stand-in that
//! answers exactly as the original does (`{"status":"registered"}` and nothing
//! more to a registration, so no heartbeat advice; `404
//! {"status":"unknown_worker"}` to a heartbeat of a worker it does not know),
//! served over mTLS with the fleet's controller certificate. A real `crank
//! worker` registers, heartbeats at its own interval, registers again once
//! forgotten, and deregisters on SIGTERM. The stand-in's reads answer the
//! original's bodies as it writes them (`GET /workers` rows with no `status`,
//! no `registered_at`, and naive timestamps; no `/watch`), and crank's CLI
//! reads them: `crank workers`, `capabilities`, `route`, `greet`, `watch`.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, App, HttpRequest, HttpResponse};
use common::{eventually, free_port, path_str, run_cli, Fleet};
use crank_net::server::{mtls_server, ServerLimits};
use crank_net::tls::{server_config, TlsFiles};
use nix::sys::signal::Signal;
use serde_json::{json, Value};

/// A registered worker: its URL, last heartbeat (as the original writes it)
/// and capability keys.
type Registered = (String, String, Vec<String>);

/// What the stand-in was sent, in order: (method and path, body).
#[derive(Default)]
struct Original {
    calls: Mutex<Vec<(String, Value)>>,
    /// Registered workers by id.
    workers: Mutex<BTreeMap<String, Registered>>,
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

/// Python's `datetime.utcnow().isoformat()`: microseconds, no zone.
fn python_now() -> String {
    chrono::Utc::now()
        .naive_utc()
        .format("%Y-%m-%dT%H:%M:%S%.6f")
        .to_string()
}

async fn register(
    state: web::Data<Original>,
    request: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    state.record(&request, &body);
    let registration: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if let (Some(id), Some(url)) = (
        registration["worker_id"].as_str(),
        registration["worker_url"].as_str(),
    ) {
        let keys = registration["capabilities"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                format!(
                    "{}:{}",
                    c["verb"].as_str().unwrap_or(""),
                    c["name"].as_str().unwrap_or("")
                )
            })
            .collect();
        state
            .workers
            .lock()
            .unwrap()
            .insert(id.to_owned(), (url.to_owned(), python_now(), keys));
    }
    HttpResponse::Ok().json(json!({"status": "registered"}))
}

/// The original's `GET /workers`, key for key and in its order.
async fn workers(state: web::Data<Original>) -> HttpResponse {
    let rows: Vec<String> = state
        .workers
        .lock()
        .unwrap()
        .iter()
        .map(|(id, (url, beat, keys))| {
            format!(
                r#"{{"worker_id":{},"worker_url":{},"is_healthy":true,"last_heartbeat":"{beat}","capabilities":{}}}"#,
                json!(id),
                json!(url),
                json!(keys)
            )
        })
        .collect();
    HttpResponse::Ok()
        .content_type("application/json")
        .body(format!(r#"{{"workers":[{}]}}"#, rows.join(",")))
}

async fn capabilities(state: web::Data<Original>) -> HttpResponse {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for (_, _, keys) in state.workers.lock().unwrap().values() {
        for key in keys {
            *counts.entry(key.clone()).or_default() += 1;
        }
    }
    let capabilities: serde_json::Map<String, Value> = counts
        .into_iter()
        .map(|(key, n)| (key, json!({"workers": n, "healthy_workers": n})))
        .collect();
    HttpResponse::Ok().json(json!({ "capabilities": capabilities }))
}

/// The original's route: the first provider, with no `version`.
async fn route(state: web::Data<Original>, body: web::Json<Value>) -> HttpResponse {
    let key = format!(
        "{}:{}",
        body["verb"].as_str().unwrap_or(""),
        body["capability"].as_str().unwrap_or("")
    );
    let workers = state.workers.lock().unwrap();
    match workers.iter().find(|(_, (_, _, keys))| keys.contains(&key)) {
        Some((id, (url, _, _))) => {
            HttpResponse::Ok().json(json!({"worker_id": id, "worker_url": url, "capability": key}))
        }
        None => HttpResponse::NotFound().json(json!({
            "error": "no_worker_available",
            "detail": format!("No worker available for {key}")
        })),
    }
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
    state.workers.lock().unwrap().remove(id.as_str());
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
            .route("/workers", web::get().to(workers))
            .route("/capabilities", web::get().to(capabilities))
            .route("/route", web::post().to(route))
            .route(
                "/health",
                web::get().to(|| async { HttpResponse::Ok().json(json!({"status": "healthy"})) }),
            )
            // FastAPI's answer to a path it does not serve: the original has no /watch.
            .default_service(web::to(|| async {
                HttpResponse::NotFound().json(json!({"detail": "Not Found"}))
            }))
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

#[actix_rt::test]
async fn cranks_cli_reads_the_original_controllers_bodies() {
    let mut fleet = Fleet::new();
    let state = Arc::new(Original::default());
    let url = start_original(&fleet, state.clone());
    let port = free_port().to_string();
    let _worker = fleet.spawn(
        "hello-world-1",
        &[
            "worker",
            "--cert-dir",
            path_str(&fleet.cert_dir()),
            "--port",
            &port,
            "--controller-url",
            &url,
        ],
    );
    eventually("the worker registered", Duration::from_secs(15), || {
        let n = state.count("POST /register");
        async move { (n >= 1).then_some(()) }
    })
    .await;
    let cert_dir = fleet.cert_dir();
    let cli = |args: &[&str]| {
        let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        all.extend([
            "--cert-dir".into(),
            path_str(&cert_dir).into(),
            "--controller-url".into(),
            url.clone(),
        ]);
        actix_rt::task::spawn_blocking(move || {
            let args: Vec<&str> = all.iter().map(String::as_str).collect();
            run_cli(&args)
        })
    };
    let (ok, out, err) = cli(&["workers"]).await.unwrap();
    assert!(ok, "crank workers: {err}");
    assert!(
        out.contains("hello-world-1") && out.contains("healthy"),
        "{out}"
    );
    let (ok, out, err) = cli(&["capabilities"]).await.unwrap();
    assert!(ok, "crank capabilities: {err}");
    assert!(out.contains("invoke:hello.greet"), "{out}");
    let (ok, out, err) = cli(&["route", "invoke", "hello.greet"]).await.unwrap();
    assert!(ok, "crank route: {err}");
    assert!(out.contains("hello-world-1"), "{out}");
    let (ok, out, err) = cli(&["greet", "original"]).await.unwrap();
    assert!(ok, "crank greet: {err}");
    assert!(out.contains("Hello, original!"), "{out}");

    // No /watch at the original: `crank watch` polls /workers instead.
    let watch = fleet.spawn(
        "watch",
        &[
            "watch",
            "--cert-dir",
            path_str(&cert_dir),
            "--controller-url",
            &url,
        ],
    );
    let log = eventually(
        "crank watch shows the polled fleet",
        Duration::from_secs(15),
        || {
            let log = watch.log_text();
            async move { log.contains("= 1 worker (polled)").then_some(log) }
        },
    )
    .await;
    assert!(
        log.contains("hello-world-1  healthy  invoke:hello.greet"),
        "{log}"
    );
    assert!(log.contains("polling /workers"), "{log}");
}
