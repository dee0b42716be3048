//! In-process controllers over real mTLS, for the services' integration tests.

#![allow(dead_code)]

pub mod app;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crank_controller::controller::controller_app;
use crank_controller::controller_state::{ControllerState, WatchLimits};
use crank_net::https::mtls_client;
use crank_net::server::{mtls_server, ServerLimits};
use crank_net::tls::{self, TlsFiles};
use crank_registry::RegistrySettings;

/// Serves a controller with `dir`'s `controller` certificate on a free loopback
/// port of the current actix system; its base URL.
pub fn start_controller(dir: &Path) -> String {
    start_controller_with(dir, WatchLimits::default())
}

/// [`start_controller`] with a watch stream of `watch`'s limits.
pub fn start_controller_with(dir: &Path, watch: WatchLimits) -> String {
    let tls = tls::server_config(&TlsFiles::in_dir(dir, "controller")).unwrap();
    let registry = ControllerState::start(
        RegistrySettings::default(),
        Some(Duration::from_secs(5)),
        watch,
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let limits = ServerLimits {
        workers: 1,
        ..ServerLimits::default()
    };
    let server = mtls_server("test", listener, tls, limits, false, move || {
        controller_app(registry.clone())
    })
    .unwrap();
    actix_rt::spawn(server);
    format!("https://localhost:{port}")
}

/// An mTLS client with `dir`'s certificate `name`.
pub fn client_in(dir: &Path, name: &str) -> awc::Client {
    let config = tls::client_config(&TlsFiles::in_dir(dir, name)).unwrap();
    mtls_client(Arc::new(config), Duration::from_secs(5))
}

/// The value of the sample `name` (with its labels) in an OpenMetrics exposition.
pub fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no sample {name} in:\n{text}"))
        .parse()
        .unwrap()
}
