//! TLS at the process level: every kind of bad client certificate is refused at
//! the handshake and logged once with its reason; the worker's own server demands
//! a certificate too; unusable certificate files stop `crank` at start with one
//! line naming the file.

mod common;
#[path = "common/tls_peers.rs"]
mod tls_peers;

use std::sync::Arc;
use std::time::Duration;

use common::{eventually, free_port, greeting, path_str, run_cli, Fleet};
use crank_net::certs::{self, CertificateAuthority, LeafSpec};
use crank_net::identity::Role;
use crank_net::tls::{self, TlsFiles};
use crank_proto::wire::WorkerList;

fn anonymous_client(fleet: &Fleet) -> awc::Client {
    let mut roots = rustls::RootCertStore::empty();
    for cert in tls::load_certs(&fleet.cert_dir().join("ca.crt")).unwrap() {
        roots.add(cert).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(Arc::new(roots))
        .with_no_client_auth();
    crank_net::https::mtls_client(Arc::new(config), Duration::from_secs(3))
}

/// Writes a certificate from the fleet's CA (or another) and returns a client using it.
fn client_with(fleet: &Fleet, name: &str, spec: LeafSpec, foreign_ca: bool) -> awc::Client {
    let ca = if foreign_ca {
        CertificateAuthority::generate("crank dev CA").unwrap()
    } else {
        CertificateAuthority::load(&fleet.cert_dir()).unwrap()
    };
    let dir = fleet.dir.path().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    certs::write_minted(&dir, name, &ca.issue(&spec).unwrap()).unwrap();
    std::fs::copy(fleet.cert_dir().join("ca.crt"), dir.join("ca.crt")).unwrap();
    let config = tls::client_config(&TlsFiles::in_dir(&dir, name)).unwrap();
    crank_net::https::mtls_client(Arc::new(config), Duration::from_secs(3))
}

#[actix_rt::test]
async fn bad_client_certificates_are_refused_and_logged_once_with_the_reason() {
    let mut fleet = Fleet::new();
    let controller = fleet.start_controller("5s");
    eventually(
        "the controller answers",
        Duration::from_secs(10),
        || async { fleet.get("/health").await.ok() },
    )
    .await;
    let now = time::OffsetDateTime::now_utc();

    let mut expired = LeafSpec::for_role(Role::Client, "expired");
    expired.not_before = now - time::Duration::days(30);
    expired.not_after = now - time::Duration::days(1);
    let mut early = LeafSpec::for_role(Role::Client, "early");
    early.not_before = now + time::Duration::days(1);
    early.not_after = now + time::Duration::days(30);
    let mut server_only = LeafSpec::for_role(Role::Worker, "server-only");
    server_only.client = false;

    let cases = [
        ("no client certificate", anonymous_client(&fleet)),
        (
            "client certificate not signed by this fleet's CA",
            client_with(
                &fleet,
                "rogue",
                LeafSpec::for_role(Role::Admin, "rogue"),
                true,
            ),
        ),
        (
            "client certificate expired",
            client_with(&fleet, "expired", expired, false),
        ),
        (
            "client certificate not valid yet",
            client_with(&fleet, "early", early, false),
        ),
        (
            "no clientAuth usage",
            client_with(&fleet, "server-only", server_only, false),
        ),
    ];
    let url = format!("{}/workers", fleet.controller_url());
    for (reason, client) in &cases {
        let answer = client.get(&url).send().await;
        assert!(
            answer.is_err(),
            "{reason}: must be refused, got {:?}",
            answer.map(|r| r.status())
        );
        eventually(
            &format!("the controller logs '{reason}'"),
            Duration::from_secs(5),
            || {
                let logged = controller.log_text().contains(reason);
                async move { logged.then_some(()) }
            },
        )
        .await;
    }
    let log = controller.log_text();
    for (reason, _) in &cases {
        let lines = log
            .lines()
            .filter(|l| l.contains("refused TLS connection") && l.contains(reason))
            .count();
        assert_eq!(lines, 1, "'{reason}' logged {lines} times:\n{log}");
    }
    // The refusals did not hurt anyone else.
    assert_eq!(fleet.get("/workers").await.unwrap().status, 200);
}

#[actix_rt::test]
async fn the_workers_own_server_demands_a_client_certificate_from_the_ca() {
    let mut fleet = Fleet::new();
    let port = free_port();
    let cert_dir = fleet.cert_dir();
    let _worker = fleet.spawn(
        "worker",
        &[
            "worker",
            "--cert-dir",
            path_str(&cert_dir),
            "--port",
            &port.to_string(),
        ],
    );
    let url = format!("https://localhost:{port}/greet");
    let client = tls_peers::worker_client(&cert_dir, "client", "hello-world-1");
    eventually(
        "the standalone worker greets a client with a certificate",
        Duration::from_secs(10),
        || async {
            common::post(&client, &url, &greeting("hi"))
                .await
                .ok()
                .filter(|reply| reply.status == 200)
        },
    )
    .await;
    let refused = anonymous_client(&fleet)
        .post(&url)
        .send_json(&greeting("hi"))
        .await;
    assert!(
        refused.is_err(),
        "no certificate must be refused by the worker"
    );
    let rogue = client_with(
        &fleet,
        "rogue",
        LeafSpec::for_role(Role::Admin, "rogue"),
        true,
    );
    let refused = rogue.post(&url).send_json(&greeting("hi")).await;
    assert!(
        refused.is_err(),
        "a foreign CA must be refused by the worker"
    );
}

#[test]
fn unusable_certificate_files_stop_crank_at_start_with_one_line() {
    let fleet = Fleet::new();
    let dir = fleet.cert_dir();
    let port = free_port().to_string();

    // Missing: a cert dir without the controller's certificate.
    let empty = fleet.dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    std::fs::copy(dir.join("ca.crt"), empty.join("ca.crt")).unwrap();
    let (ok, _, err) = run_cli(&[
        "controller",
        "--cert-dir",
        path_str(&empty),
        "--port",
        &port,
    ]);
    assert!(!ok);
    assert!(
        err.contains("controller.crt") && err.contains("No such file"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    // Unreadable: the key is a directory.
    let broken = fleet.dir.path().join("broken");
    std::fs::create_dir_all(broken.join("controller.key")).unwrap();
    for file in ["ca.crt", "controller.crt"] {
        std::fs::copy(dir.join(file), broken.join(file)).unwrap();
    }
    let (ok, _, err) = run_cli(&[
        "controller",
        "--cert-dir",
        path_str(&broken),
        "--port",
        &port,
    ]);
    assert!(!ok);
    assert!(err.contains("controller.key"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    // Mismatched: the worker's certificate with the client's key.
    let mismatched = fleet.dir.path().join("mismatched");
    std::fs::create_dir_all(&mismatched).unwrap();
    std::fs::copy(dir.join("ca.crt"), mismatched.join("ca.crt")).unwrap();
    std::fs::copy(
        dir.join("hello-world-1.crt"),
        mismatched.join("hello-world-1.crt"),
    )
    .unwrap();
    std::fs::copy(dir.join("client.key"), mismatched.join("hello-world-1.key")).unwrap();
    let (ok, _, err) = run_cli(&[
        "worker",
        "--cert-dir",
        path_str(&mismatched),
        "--port",
        &port,
    ]);
    assert!(!ok);
    assert!(
        err.contains("hello-world-1.crt") && err.contains("does not match its key"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    // Not PEM at all.
    let garbage = fleet.dir.path().join("garbage");
    std::fs::create_dir_all(&garbage).unwrap();
    std::fs::write(garbage.join("ca.crt"), "hello").unwrap();
    let (ok, _, err) = run_cli(&[
        "controller",
        "--cert-dir",
        path_str(&garbage),
        "--port",
        &port,
    ]);
    assert!(!ok);
    assert!(err.contains("ca.crt"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

/// A client of the fleet's CA that accepts any server certificate from it, as
/// clients did before they checked the server's identity: to look inside a
/// server that is not what it should be.
fn unchecked_client(fleet: &Fleet, name: &str) -> awc::Client {
    let files = TlsFiles::in_dir(&fleet.cert_dir(), name);
    let mut roots = rustls::RootCertStore::empty();
    for cert in tls::load_certs(&files.ca).unwrap() {
        roots.add(cert).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(Arc::new(roots))
        .with_client_auth_cert(
            tls::load_certs(&files.cert).unwrap(),
            tls::load_key(&files.key).unwrap(),
        )
        .unwrap();
    crank_net::https::mtls_client(Arc::new(config), Duration::from_secs(3))
}

#[actix_rt::test]
async fn a_controller_with_a_worker_certificate_is_refused_by_workers_and_the_cli() {
    let mut fleet = Fleet::new();
    let cert_dir = fleet.cert_dir();
    let port = fleet.controller_port.to_string();
    // A real controller process, but serving with a worker's certificate.
    let _impostor = fleet.spawn(
        "impostor",
        &[
            "controller",
            "--cert-dir",
            path_str(&cert_dir),
            "--port",
            &port,
            "--cert",
            "hello-world-1",
        ],
    );
    let inside = unchecked_client(&fleet, "admin");
    let workers_url = format!("{}/workers", fleet.controller_url());
    eventually("the impostor answers", Duration::from_secs(10), || async {
        common::get(&inside, &workers_url).await.ok()
    })
    .await;

    fleet.issue_worker("w1");
    let worker = fleet.start_worker("w1", free_port(), "200ms");
    eventually(
        "the worker logs why it does not register",
        Duration::from_secs(10),
        || {
            let log = worker.log_text();
            let logged = log.contains("worker/hello-world-1") && log.contains("not a controller");
            async move { logged.then_some(()) }
        },
    )
    .await;
    let listed = common::get(&inside, &workers_url).await.unwrap();
    assert_eq!(listed.status, 200);
    assert!(
        listed.json::<WorkerList>().workers.is_empty(),
        "the worker registered with an impostor"
    );

    let controller_url = fleet.controller_url();
    let (ok, out, err) = run_cli(&[
        "workers",
        "--controller-url",
        &controller_url,
        "--cert-dir",
        path_str(&cert_dir),
    ]);
    assert!(!ok, "crank workers trusted the impostor: {out}");
    eprintln!("crank workers said: {err}");
    eprintln!(
        "the worker logged: {}",
        worker
            .log_text()
            .lines()
            .find(|l| l.contains("not a controller"))
            .unwrap_or_default()
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("worker/hello-world-1") && err.contains("not a controller"),
        "{err}"
    );
}

#[actix_rt::test]
async fn a_port_check_is_not_a_warning_but_a_refused_certificate_is() {
    let mut fleet = Fleet::new();
    let controller = fleet.start_controller("5s");
    eventually(
        "the controller answers",
        Duration::from_secs(10),
        || async { fleet.get("/health").await.ok() },
    )
    .await;
    // What a health check or `nc -z` does: connect, send nothing, close.
    drop(std::net::TcpStream::connect(("127.0.0.1", fleet.controller_port)).unwrap());
    let mut no_usage = LeafSpec::for_role(Role::Client, "no-usage");
    no_usage.client = false;
    let refused = client_with(&fleet, "no-usage", no_usage, false)
        .get(format!("{}/workers", fleet.controller_url()))
        .send()
        .await;
    assert!(
        refused.is_err(),
        "a certificate without EKU must be refused"
    );
    eventually("the refusal is logged", Duration::from_secs(5), || {
        let logged = controller.log_text().contains("no clientAuth usage");
        async move { logged.then_some(()) }
    })
    .await;
    // The port check was accepted before the refused handshake: its line, had
    // there been one, is in the log by now.
    let log = controller.log_text();
    let warnings: Vec<&str> = log.lines().filter(|l| l.contains(" WARN ")).collect();
    assert_eq!(warnings.len(), 1, "{log}");
    assert!(warnings[0].contains("no clientAuth usage"), "{log}");
}

#[actix_rt::test]
async fn a_worker_with_a_controller_name_refuses_a_controller_of_another_name() {
    let mut fleet = Fleet::new();
    let _controller = fleet.start_controller("5s");
    let cert_dir = fleet.cert_dir();
    let controller_url = fleet.controller_url();
    let port = free_port().to_string();
    let picky = fleet.spawn(
        "picky",
        &[
            "worker",
            "--cert-dir",
            path_str(&cert_dir),
            "--port",
            &port,
            "--controller-url",
            &controller_url,
            "--controller-name",
            "ctl-b",
        ],
    );
    eventually(
        "the worker logs why it does not register",
        Duration::from_secs(10),
        || {
            let logged = picky
                .log_text()
                .contains("is controller/controller, not controller/ctl-b");
            async move { logged.then_some(()) }
        },
    )
    .await;
    assert_eq!(fleet.workers().await, Some(vec![]));
}
