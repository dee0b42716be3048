//! The controller over a real rustls listener: a client with a certificate from
//! the fleet's CA gets answers; a client with no certificate, or one from another
//! CA, is refused at the handshake.

use std::sync::Arc;
use std::time::Duration;

use common::{client_in, start_controller};
use crank_net::certs::{self, CertificateAuthority, LeafSpec};
use crank_net::https::mtls_client;
use crank_net::identity::Role;
use crank_net::tls;
use serde_json::{json, Value};

mod common;

#[actix_web::test]
async fn only_clients_with_a_certificate_from_the_ca_are_served() {
    let fleet = tempfile::tempdir().unwrap();
    certs::init(fleet.path(), false).unwrap();
    let base = start_controller(fleet.path());

    // A client certificate from the fleet's CA: answered.
    let client = client_in(fleet.path(), "client");
    let mut response = client.get(format!("{base}/workers")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({"workers": []}));

    // A worker certificate registers over the same listener.
    let worker = client_in(fleet.path(), "hello-world-1");
    let response = worker
        .post(format!("{base}/register"))
        .send_json(&json!({
            "worker_id": "hello-world-1",
            "worker_url": "https://localhost:8500",
            "capabilities": [{"name": "hello.greet", "verb": "invoke", "version": "1.0.0"}]
        }))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // No client certificate: refused.
    let roots = {
        let mut roots = rustls::RootCertStore::empty();
        for cert in tls::load_certs(&fleet.path().join("ca.crt")).unwrap() {
            roots.add(cert).unwrap();
        }
        Arc::new(roots)
    };
    let anonymous = rustls::ClientConfig::builder_with_provider(tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let anonymous = mtls_client(Arc::new(anonymous), Duration::from_secs(5));
    let refused = anonymous.get(format!("{base}/workers")).send().await;
    assert!(
        refused.is_err(),
        "no certificate must be refused: {:?}",
        refused.map(|r| r.status())
    );

    // A certificate from another CA (trusting the fleet's CA itself): refused.
    let rogue = tempfile::tempdir().unwrap();
    let rogue_ca = CertificateAuthority::generate("rogue CA").unwrap();
    let minted = rogue_ca
        .issue(&LeafSpec::for_role(Role::Admin, "mallory"))
        .unwrap();
    certs::write_minted(rogue.path(), "mallory", &minted).unwrap();
    std::fs::copy(fleet.path().join("ca.crt"), rogue.path().join("ca.crt")).unwrap();
    let mallory = client_in(rogue.path(), "mallory");
    let refused = mallory.get(format!("{base}/workers")).send().await;
    assert!(
        refused.is_err(),
        "a foreign CA must be refused: {:?}",
        refused.map(|r| r.status())
    );

    // The registry still holds exactly what the legitimate worker registered.
    let mut response = client.get(format!("{base}/workers")).send().await.unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["workers"][0]["worker_id"], "hello-world-1");
    assert_eq!(body["workers"].as_array().unwrap().len(), 1);
}
