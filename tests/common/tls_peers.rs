//! Clients of a fleet's workers: since clients check who the server is, a call
//! to a worker expects that worker's certificate, not the controller's. Kept
//! apart from `mod.rs`; a test includes it with
//! `#[path = "common/tls_peers.rs"] mod tls_peers;`.

#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crank_net::tls::{client_config_for, ExpectedPeer, TlsFiles};

/// An mTLS client with the certificate `cert` of `cert_dir` that talks only to
/// the worker `worker_id`.
pub fn worker_client(cert_dir: &Path, cert: &str, worker_id: &str) -> awc::Client {
    let files = TlsFiles::in_dir(cert_dir, cert);
    let config = client_config_for(&files, ExpectedPeer::Worker(worker_id.into())).unwrap();
    crank_net::https::mtls_client(Arc::new(config), Duration::from_secs(3))
}
