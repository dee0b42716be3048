//! What observes the fleet, over real mTLS: refused handshakes counted by
//! reason, and a watcher whose connection stops reading resynced rather than
//! buffered for.

use std::sync::Arc;
use std::time::Duration;

use common::{client_in, sample, start_controller_with};
use crank_controller::controller_state::WatchLimits;
use crank_controller::watch::SseParser;
use crank_net::certs;
use crank_net::https::mtls_client;
use crank_net::tls;
use crank_proto::wire::{Capability, RegisterRequest, WatchSnapshot};
use futures_util::StreamExt;

mod common;

async fn metrics(client: &awc::Client, base: &str) -> String {
    let mut response = client.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    String::from_utf8(response.body().await.unwrap().to_vec()).unwrap()
}

#[actix_web::test]
async fn a_connection_without_a_certificate_is_refused_and_counted() {
    let fleet = tempfile::tempdir().unwrap();
    certs::init(fleet.path(), false).unwrap();
    let base = start_controller_with(fleet.path(), WatchLimits::default());
    let client = client_in(fleet.path(), "client");
    let before = sample(
        &metrics(&client, &base).await,
        r#"crank_tls_refused_total{reason="no_certificate"}"#,
    );
    let mut roots = rustls::RootCertStore::empty();
    for cert in tls::load_certs(&fleet.path().join("ca.crt")).unwrap() {
        roots.add(cert).unwrap();
    }
    let anonymous = rustls::ClientConfig::builder_with_provider(tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(Arc::new(roots))
        .with_no_client_auth();
    let anonymous = mtls_client(Arc::new(anonymous), Duration::from_secs(5));
    for path in ["/metrics", "/watch", "/ui"] {
        let refused = anonymous.get(format!("{base}{path}")).send().await;
        assert!(
            refused.is_err(),
            "{path}: {:?}",
            refused.map(|r| r.status())
        );
    }
    let text = metrics(&client, &base).await;
    assert!(
        sample(&text, r#"crank_tls_refused_total{reason="no_certificate"}"#) >= before + 3.0,
        "{text}"
    );
    assert!(sample(&text, "crank_open_connections") >= 1.0, "{text}");
    // This test's own connection at least: a full handshake, counted once
    // it completed.
    assert!(
        sample(&text, r#"crank_tls_handshakes_total{kind="full"}"#) >= 1.0,
        "{text}"
    );
}

/// A registration announcing `n` capabilities with long names: a big event.
fn big_registration(id: &str, n: usize) -> RegisterRequest {
    RegisterRequest {
        worker_id: id.into(),
        worker_url: format!("https://{id}.local:8500"),
        capabilities: (0..n)
            .map(|k| Capability::new("invoke", &format!("{}.{k}", "x".repeat(200)), "1.0.0"))
            .collect(),
        instance: None,
        health_check: None,
    }
}

#[actix_web::test]
async fn a_watcher_that_stops_reading_is_resynced_not_buffered_for() {
    let fleet = tempfile::tempdir().unwrap();
    certs::init(fleet.path(), false).unwrap();
    let backlog = 16;
    let base = start_controller_with(
        fleet.path(),
        WatchLimits {
            backlog,
            history: backlog,
        },
    );
    let watcher = client_in(fleet.path(), "client");
    let mut stream = watcher.get(format!("{base}/watch")).send().await.unwrap();
    let mut parser = SseParser::default();
    let mut opening = Vec::new();
    while !opening
        .iter()
        .any(|m: &crank_controller::watch::SseMessage| m.event == "snapshot")
    {
        let chunk = stream.next().await.unwrap().unwrap();
        opening.extend(parser.feed(&chunk));
    }

    // The watcher reads nothing while 600 changes of about 50 KB each (30 MB,
    // more than any socket buffer) are published.
    let admin = client_in(fleet.path(), "admin");
    let total = 600;
    for i in 0..total {
        let response = admin
            .post(format!("{base}/register"))
            .send_json(&big_registration(&format!("w{i}"), 240))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    // Then it reads: a resync, and a snapshot of everyone.
    let mut events = 0;
    let mut resynced = None;
    let mut read = 0usize;
    while resynced.is_none() {
        let chunk = tokio::time::timeout(Duration::from_secs(20), stream.next())
            .await
            .expect("the stream goes on")
            .unwrap()
            .unwrap();
        read += chunk.len();
        for message in parser.feed(&chunk) {
            match message.event.as_str() {
                "registered" => events += 1,
                "resync" => {}
                "snapshot" => {
                    let snapshot: WatchSnapshot = serde_json::from_str(&message.data).unwrap();
                    resynced = Some(snapshot);
                }
                other => panic!("unexpected {other}"),
            }
        }
    }
    let snapshot = resynced.unwrap();
    assert_eq!(snapshot.workers.len(), total);
    assert!(
        events < total,
        "{events} events were held for a watcher that read nothing ({read} bytes read)"
    );
}
