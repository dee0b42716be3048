//! What a TLS peer must be, over real rustls connections to in-process servers:
//! a client certificate must say clientAuth, a resumed session must not outlive
//! its certificate, and a client calling a worker accepts only that worker.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::start_controller;
use crank_net::certs::{self, CertificateAuthority, LeafSpec};
use crank_net::identity::Role;
use crank_net::tls::{self, ExpectedPeer, TlsFiles};
use rustls::ClientConfig;
use rustls::HandshakeKind;
use serde_json::Value;

mod common;

/// Mints `spec` from the CA in `dir` as `<dir>/<name>.crt/.key`.
fn mint(dir: &Path, spec: &LeafSpec) {
    let ca = CertificateAuthority::load(dir).unwrap();
    certs::write_minted(dir, &spec.identity.name, &ca.issue(spec).unwrap()).unwrap();
}

fn port_of(base: &str) -> u16 {
    base.rsplit(':').next().unwrap().parse().unwrap()
}

/// A status and JSON body, with how the TLS session was set up.
#[derive(Debug)]
struct Answer {
    kind: Option<HandshakeKind>,
    status: u16,
    body: Value,
}

/// One `GET path` over a fresh TCP connection with `config` (blocking): the
/// answer, or why there was none.
fn get(config: &Arc<ClientConfig>, port: u16, path: &str) -> Result<Answer, String> {
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let server_name = "localhost".try_into().unwrap();
    let mut tls = rustls::ClientConnection::new(config.clone(), server_name).unwrap();
    while tls.is_handshaking() {
        tls.complete_io(&mut tcp)
            .map_err(|e| format!("handshake: {e}"))?;
    }
    let kind = tls.handshake_kind();
    let mut stream = rustls::StreamOwned::new(tls, tcp);
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("write: {e}"))?;
    let mut raw = Vec::new();
    // A server that closes without close_notify ends the read with an error
    // after the answer: keep what came.
    if let Err(e) = stream.read_to_end(&mut raw) {
        if raw.is_empty() {
            return Err(format!("read: {e}"));
        }
    }
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no HTTP answer: {text:?}"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status: {head:?}"))?;
    let body = serde_json::from_str(body).unwrap_or(Value::Null);
    Ok(Answer { kind, status, body })
}

fn config_for(dir: &Path, name: &str) -> Arc<ClientConfig> {
    Arc::new(tls::client_config(&TlsFiles::in_dir(dir, name)).unwrap())
}

#[actix_web::test]
async fn a_client_certificate_without_extended_key_usage_is_refused_at_the_handshake() {
    let fleet = tempfile::tempdir().unwrap();
    certs::init(fleet.path(), false).unwrap();
    let port = port_of(&start_controller(fleet.path()));
    let mut spec = LeafSpec::for_role(Role::Admin, "no-eku");
    spec.client = false;
    spec.server = false;
    mint(fleet.path(), &spec);

    let honest = config_for(fleet.path(), "client");
    let no_eku = config_for(fleet.path(), "no-eku");
    let (honest, refused) = actix_web::rt::task::spawn_blocking(move || {
        (
            get(&honest, port, "/workers"),
            get(&no_eku, port, "/workers"),
        )
    })
    .await
    .unwrap();
    assert_eq!(honest.unwrap().status, 200);
    assert!(
        refused.is_err(),
        "a certificate without extended key usage must be refused, got {refused:?}"
    );
}

#[actix_web::test]
async fn a_resumed_session_does_not_outlive_its_certificate() {
    let fleet = tempfile::tempdir().unwrap();
    certs::init(fleet.path(), false).unwrap();
    let port = port_of(&start_controller(fleet.path()));
    let mut spec = LeafSpec::for_role(Role::Admin, "brief");
    let now = time::OffsetDateTime::now_utc();
    spec.not_after = now + time::Duration::seconds(3);
    mint(fleet.path(), &spec);
    let dir = fleet.path().to_owned();

    let (first, fresh, resumed) = actix_web::rt::task::spawn_blocking(move || {
        // One config, so its session store hands the ticket to the next connection.
        let config = config_for(&dir, "brief");
        let first = get(&config, port, "/workers");
        // A second config has no session: its handshakes are full ones, refused
        // once the certificate has expired.
        let mut fresh_config = tls::client_config(&TlsFiles::in_dir(&dir, "brief")).unwrap();
        fresh_config.resumption = rustls::client::Resumption::disabled();
        let fresh_config = Arc::new(fresh_config);
        let start = Instant::now();
        let fresh = loop {
            match get(&fresh_config, port, "/workers") {
                Err(refused) => break refused,
                Ok(_) if start.elapsed() < Duration::from_secs(15) => {
                    std::thread::sleep(Duration::from_millis(250))
                }
                Ok(answer) => panic!("still served 15 s later: {answer:?}"),
            }
        };
        (first, fresh, get(&config, port, "/workers"))
    })
    .await
    .unwrap();

    let first = first.unwrap();
    assert_eq!(first.status, 200, "{first:?}");
    assert_eq!(first.kind, Some(HandshakeKind::Full));
    eprintln!("a full handshake after expiry: {fresh}");
    let resumed = resumed.unwrap();
    assert_eq!(
        resumed.kind,
        Some(HandshakeKind::Resumed),
        "the test must resume the session"
    );
    assert_eq!(resumed.status, 403, "{resumed:?}");
    assert_eq!(resumed.body["error"], "no_identity", "{resumed:?}");
    let detail = resumed.body["detail"].as_str().unwrap();
    assert!(detail.contains("expired"), "{detail}");
}

#[actix_web::test]
async fn the_controller_counts_full_and_resumed_handshakes_in_its_stats() {
    let fleet = tempfile::tempdir().unwrap();
    certs::init(fleet.path(), false).unwrap();
    let port = port_of(&start_controller(fleet.path()));
    let dir = fleet.path().to_owned();
    let answers = actix_web::rt::task::spawn_blocking(move || {
        // One config: its second connection resumes the first one's session.
        let config = config_for(&dir, "client");
        let mut fresh = tls::client_config(&TlsFiles::in_dir(&dir, "client")).unwrap();
        fresh.resumption = rustls::client::Resumption::disabled();
        let fresh = Arc::new(fresh);
        [
            get(&config, port, "/stats"),
            get(&config, port, "/stats"),
            get(&fresh, port, "/stats"),
        ]
    })
    .await
    .unwrap();
    let answers: Vec<Answer> = answers.into_iter().map(Result::unwrap).collect();
    let kinds: Vec<_> = answers.iter().map(|a| a.kind).collect();
    assert_eq!(
        kinds,
        [
            Some(HandshakeKind::Full),
            Some(HandshakeKind::Resumed),
            Some(HandshakeKind::Full)
        ],
        "the test must make full, resumed, full handshakes"
    );
    // Each answer already counts the handshake of its own connection.
    let counts: Vec<(u64, u64)> = answers
        .iter()
        .map(|a| {
            assert_eq!(a.status, 200, "{a:?}");
            (
                a.body["tls_handshakes"].as_u64().unwrap(),
                a.body["tls_resumed"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(counts, [(1, 0), (2, 1), (3, 1)]);
}

/// Serves a bare app over mTLS with `dir`'s certificate `cert`; its port.
fn serve_as(dir: &Path, cert: &str) -> u16 {
    use actix_web::{web, App, HttpResponse};
    use crank_net::server::{mtls_server, ServerLimits};
    let tls = tls::server_config(&TlsFiles::in_dir(dir, cert)).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let limits = ServerLimits {
        workers: 1,
        ..ServerLimits::default()
    };
    let server = mtls_server("test", listener, tls, limits, false, || {
        App::new().route(
            "/health",
            web::get().to(|| async { HttpResponse::Ok().json(serde_json::json!({})) }),
        )
    })
    .unwrap();
    actix_web::rt::spawn(server);
    port
}

#[actix_web::test]
async fn a_client_expecting_one_worker_refuses_another_workers_certificate() {
    let fleet = tempfile::tempdir().unwrap();
    certs::init(fleet.path(), false).unwrap();
    for name in ["w1", "w2"] {
        mint(fleet.path(), &LeafSpec::for_role(Role::Worker, name));
    }
    let port = serve_as(fleet.path(), "w2");
    let expecting = |expected: ExpectedPeer| {
        Arc::new(
            tls::client_config_for(&TlsFiles::in_dir(fleet.path(), "client"), expected).unwrap(),
        )
    };
    let (w1, w2, controller) = (
        expecting(ExpectedPeer::Worker("w1".into())),
        expecting(ExpectedPeer::Worker("w2".into())),
        expecting(ExpectedPeer::Controller { name: None }),
    );
    let (w1, w2, controller) = actix_web::rt::task::spawn_blocking(move || {
        (
            get(&w1, port, "/health"),
            get(&w2, port, "/health"),
            get(&controller, port, "/health"),
        )
    })
    .await
    .unwrap();
    assert_eq!(
        w2.unwrap().status,
        200,
        "the routed worker itself is accepted"
    );
    let w1 = w1.expect_err("w2's certificate must be refused when w1 is expected");
    assert!(w1.contains("worker/w2") && w1.contains("worker/w1"), "{w1}");
    let controller = controller.expect_err("a worker is no controller");
    assert!(controller.contains("worker/w2"), "{controller}");
}
