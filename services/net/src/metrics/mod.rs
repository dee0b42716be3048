//! The plumbing of every `GET /metrics` (OpenMetrics text, with
//! `prometheus-client`): the controller's metrics live in `crank-controller`,
//! a worker's in `crank-worker`.
//!
//! | file | answers |
//! |---|---|
//! | [`requests`] | [`RequestMetrics`]: requests served and their latency, per endpoint, with a lock-free histogram |
//! | [`transport`] | [`TransportMetrics`](transport::TransportMetrics): open connections, refused handshakes |
//!
//! Every metric is named `crank_…`; a scrape is one body ending in `# EOF`.

pub mod requests;
pub mod transport;

use actix_web::HttpResponse;
use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::registry::Registry;

pub use requests::RequestMetrics;

/// The media type of an OpenMetrics text exposition.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Latency buckets (seconds) of requests and sweeps: 50 µs to 2.5 s.
pub const LATENCY_BUCKETS: [f64; 15] = [
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5,
];

/// A histogram with [`LATENCY_BUCKETS`].
pub fn latency_histogram() -> prometheus_client::metrics::histogram::Histogram {
    prometheus_client::metrics::histogram::Histogram::new(LATENCY_BUCKETS)
}

/// `registries` as one OpenMetrics answer.
pub fn exposition(registries: &[&Registry]) -> HttpResponse {
    let mut text = String::with_capacity(8 * 1024);
    for registry in registries {
        // Writing to a String cannot fail.
        let _ = encode_registry(&mut text, registry);
    }
    let _ = encode_eof(&mut text);
    HttpResponse::Ok()
        .content_type(OPENMETRICS_CONTENT_TYPE)
        .body(text)
}
