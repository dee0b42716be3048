//! The one HTTPS client crank's processes make: awc over rustls, with the
//! keep-alive and timeouts every caller of a controller or worker wants.

use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;

/// Builds an awc client that presents the certificate of `tls` and trusts its CA.
pub fn mtls_client(tls: Arc<ClientConfig>, timeout: Duration) -> awc::Client {
    let connector = awc::Connector::new()
        .rustls_0_23(tls)
        .timeout(timeout)
        // Keep a heartbeat's connection until the next beat: the server keeps
        // idle connections 75 s, and awc's defaults (15 s idle, 75 s lifetime)
        // would reconnect, and redo TLS, for every 30 s heartbeat.
        .conn_keep_alive(crate::server::KEEP_ALIVE - Duration::from_secs(5))
        .conn_lifetime(Duration::from_secs(3600));
    awc::Client::builder()
        .connector(connector)
        .timeout(timeout)
        .finish()
}

/// Longest `Retry-After` believed: a server asking for more is asking for a
/// day, and gets an hour.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// The `Retry-After` of an answer's `headers`, in seconds, at most
/// [`MAX_RETRY_AFTER`] (the HTTP-date form is not sent by crank, and is
/// ignored).
pub fn retry_after(headers: &awc::http::header::HeaderMap) -> Option<Duration> {
    let seconds: u64 = headers
        .get(awc::http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(seconds).min(MAX_RETRY_AFTER))
}
