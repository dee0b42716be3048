//! A worker that cannot heartbeat, as the original system's workers cannot,
//! against a real `crank controller` with `--active-checks silent` and a
//! service id mapping: it registers once as `worker-<8 hex>` with a
//! `service/hello-world` certificate, stays healthy while its `GET /health`
//! answers (the controller's checks count as heartbeats), goes stale once it
//! stops answering, and is evicted. Ids of another service are refused.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, App, HttpResponse};
use common::{eventually, path_str, post, Fleet};
use crank_net::identity::Role;
use crank_net::server::{mtls_server, ServerLimits};
use crank_net::tls::{client_config, server_config, TlsFiles};
use crank_proto::wire::WorkerStatus;
use serde_json::json;

const ID: &str = "worker-1a2b3c4d";

/// A worker that registers and never beats: it only answers `GET /health`,
/// 200 while `up`, 503 after.
fn start_silent_worker(fleet: &Fleet, up: Arc<AtomicBool>) -> String {
    let tls = server_config(&TlsFiles::in_dir(&fleet.cert_dir(), "hello-world")).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let limits = ServerLimits {
        workers: 1,
        ..ServerLimits::default()
    };
    let server = mtls_server("silent", listener, tls, limits, false, move || {
        let up = up.clone();
        App::new().route(
            "/health",
            web::get().to(move || {
                let up = up.load(Ordering::SeqCst);
                async move {
                    if up {
                        HttpResponse::Ok().json(json!({"status": "healthy"}))
                    } else {
                        HttpResponse::ServiceUnavailable().finish()
                    }
                }
            }),
        )
    })
    .unwrap();
    actix_rt::spawn(server);
    format!("https://localhost:{port}")
}

#[actix_rt::test]
async fn a_worker_that_never_heartbeats_is_kept_alive_by_checks_then_stale_then_evicted() {
    let mut fleet = Fleet::new();
    crank_net::certs::issue(&fleet.cert_dir(), Role::Service, "hello-world", false).unwrap();
    let port = fleet.controller_port.to_string();
    let cert_dir = fleet.cert_dir();
    let _controller = fleet.spawn(
        "controller",
        &[
            "controller",
            "--cert-dir",
            path_str(&cert_dir),
            "--port",
            &port,
            "--stale-after",
            "2s",
            "--sweep-interval",
            "100ms",
            "--evict-after",
            "1s",
            "--active-checks",
            "silent",
            "--service-ids",
            "hello-world=worker-*,billing=bill-*",
        ],
    );
    let up = Arc::new(AtomicBool::new(true));
    let worker_url = start_silent_worker(&fleet, up.clone());
    let files = TlsFiles::in_dir(&cert_dir, "hello-world");
    let as_service = crank_net::https::mtls_client(
        Arc::new(client_config(&files).unwrap()),
        Duration::from_secs(3),
    );
    let register = |id: &str| {
        json!({
            "worker_id": id,
            "worker_url": worker_url,
            "capabilities": [{"name": "hello.greet", "verb": "invoke", "version": "1.0.0"}]
        })
    };
    let url = format!("{}/register", fleet.controller_url());
    let reply = eventually(
        "the controller answers a registration",
        Duration::from_secs(20),
        || {
            let (client, url, body) = (as_service.clone(), url.clone(), register(ID));
            async move { post(&client, &url, &body).await.ok() }
        },
    )
    .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    // Another service's ids, and ids no pattern names, are refused.
    for other in ["bill-7", "billing", "hello"] {
        let reply = post(&as_service, &url, &register(other)).await.unwrap();
        assert_eq!(reply.status, 403, "{other}: {:?}", reply.body);
    }

    // Healthy well past stale_after with no heartbeat: the checks keep it so.
    let registered = fleet.worker(ID).await.unwrap().last_heartbeat;
    eventually(
        "checks keep it healthy past stale_after",
        Duration::from_secs(15),
        || async {
            let worker = fleet.worker(ID).await?;
            assert_eq!(worker.status, WorkerStatus::Healthy, "{worker:?}");
            (worker.last_heartbeat - registered > chrono::Duration::milliseconds(3000))
                .then_some(())
        },
    )
    .await;
    let metrics = fleet.get("/metrics").await.unwrap();
    let text = String::from_utf8_lossy(&metrics.body).into_owned();
    assert!(
        text.lines()
            .any(|l| l.starts_with("crank_health_checks_total{outcome=\"passed\"}")),
        "{text}"
    );

    // It stops answering: stale, then evicted.
    up.store(false, Ordering::SeqCst);
    eventually("it goes stale", Duration::from_secs(15), || async {
        let worker = fleet.worker(ID).await?;
        (worker.status == WorkerStatus::Stale).then_some(())
    })
    .await;
    eventually("it is evicted", Duration::from_secs(15), || async {
        let workers = fleet.workers().await?;
        workers.iter().all(|w| w.worker_id != ID).then_some(())
    })
    .await;
}
