//! The HTTPS server under both crank apps: actix-server accepting TCP, rustls
//! requiring a client certificate from the fleet's CA, then actix-web over
//! HTTP/1.1.
//!
//! It is assembled here rather than with `HttpServer::bind_rustls_0_23` because an
//! operator must see why a connection was refused: a refused or timed-out
//! handshake is logged once, with the peer address and the reason (no client
//! certificate, unknown CA, expired, wrong usage, no handshake in time).

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_http::body::MessageBody;
use actix_http::{HttpService, Request, Response};
use actix_service::{
    apply_fn_factory, boxed, map_config, IntoServiceFactory, Service, ServiceFactory,
    ServiceFactoryExt,
};
use actix_tls::accept::rustls_0_23::{Acceptor, TlsStream};
use actix_tls::accept::TlsError;
use actix_web::dev::{AppConfig, Extensions};
use actix_web::rt::net::TcpStream;
use rustls::ServerConfig;

use crate::body::bound_body;
use crate::caller::{identify, record_identity};
use crate::connections::{
    Connection, ConnectionLimiter, LimitKey, DEFAULT_MAX_CONNECTIONS_PER_IDENTITY,
};
use crate::metrics::transport::{transport, Refusal};
use crate::on_demand::OnDemand;

/// TLS handshakes one HTTP worker thread runs at once. actix-tls's default of
/// 256 would let a few hundred silent connections stall new clients until their
/// handshake timeout; a handshake in progress costs a few KiB.
const MAX_CONCURRENT_HANDSHAKES: usize = 16 * 1024;
/// On stop, how long open connections get to finish. Requests take
/// milliseconds; what lingers is idle keep-alive connections, which must not
/// hold a shutdown for actix's default 30 s.
const SHUTDOWN_GRACE_SECS: u64 = 2;
/// How long an idle keep-alive connection stays open: longer than a worker's
/// 30 s heartbeat interval (plus jitter), so a worker's heartbeats reuse one
/// connection instead of paying a TLS handshake each; nginx's default too.
pub const KEEP_ALIVE: Duration = Duration::from_secs(75);

/// Timing and sizing of an mTLS server.
#[derive(Debug, Clone, Copy)]
pub struct ServerLimits {
    /// Time for the TLS handshake, then for the first request's headers, and
    /// for each request's body once its headers are in ([`bound_body`]).
    pub client_timeout: Duration,
    /// HTTP worker threads (0 = one per core).
    pub workers: usize,
    /// Open connections one identity may hold (certificates without a usable
    /// identity count per IP address); 0 = no limit. See [`ConnectionLimiter`].
    pub max_connections_per_identity: usize,
    /// Build each thread's HTTP service when a connection needs it and drop
    /// it after the last one closes ([`OnDemand`]), so a server with no open
    /// connection runs no timer: actix-http's 500 ms date-header task lives
    /// as long as the service. For workers, idle most of the time; the
    /// controller, which always holds its workers' connections, gains nothing.
    pub http_on_demand: bool,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            client_timeout: Duration::from_secs(10),
            workers: 0,
            max_connections_per_identity: DEFAULT_MAX_CONNECTIONS_PER_IDENTITY,
            http_on_demand: false,
        }
    }
}

/// The TLS handshakes a server completed: all of them, and those that resumed
/// an earlier session; the rest were full handshakes (key exchange, signatures,
/// the client certificate verified). One counter per server, shared by its
/// threads; every connection carries it in its extensions, where a handler
/// finds it with [`HttpRequest::conn_data`](actix_web::HttpRequest::conn_data).
/// It lets a benchmark prove what it paid for, rather than assume it.
#[derive(Debug, Clone, Default)]
pub struct HandshakeCounter(Arc<HandshakeCounts>);

#[derive(Debug, Default)]
struct HandshakeCounts {
    completed: AtomicU64,
    resumed: AtomicU64,
}

impl HandshakeCounter {
    /// Counts one completed handshake of `kind`, here and in the process's
    /// [`TransportMetrics`](crate::metrics::transport::TransportMetrics).
    pub fn record(&self, kind: Option<rustls::HandshakeKind>) {
        let resumed = kind == Some(rustls::HandshakeKind::Resumed);
        self.0.completed.fetch_add(1, Ordering::Relaxed);
        if resumed {
            self.0.resumed.fetch_add(1, Ordering::Relaxed);
        }
        crate::metrics::transport::transport().handshake(resumed);
    }

    /// Handshakes completed so far, full and resumed.
    pub fn completed(&self) -> u64 {
        self.0.completed.load(Ordering::Relaxed)
    }

    /// Of those, the ones that resumed a session.
    pub fn resumed(&self) -> u64 {
        self.0.resumed.load(Ordering::Relaxed)
    }
}

fn describe(peer: Option<SocketAddr>) -> String {
    peer.map(|p| p.to_string())
        .unwrap_or_else(|| "an unknown peer".into())
}

/// Why a handshake failed, as a [`Refusal`] (the `reason` of
/// `crank_tls_refused_total`) and in an operator's words, with rustls's own
/// reason.
pub fn classify_handshake_error(error: &std::io::Error) -> (Refusal, String) {
    use rustls::{CertificateError, Error};
    let Some(tls) = error.get_ref().and_then(|e| e.downcast_ref::<Error>()) else {
        return (Refusal::HandshakeFailed, error.to_string());
    };
    let (reason, plainly) = match tls {
        Error::NoCertificatesPresented => (Refusal::NoCertificate, "no client certificate"),
        Error::InvalidCertificate(problem) => match problem {
            CertificateError::UnknownIssuer | CertificateError::BadSignature => (
                Refusal::UnknownCa,
                "client certificate not signed by this fleet's CA",
            ),
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                (Refusal::Expired, "client certificate expired")
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                (Refusal::NotYetValid, "client certificate not valid yet")
            }
            CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => (
                Refusal::WrongUsage,
                "client certificate not made for client authentication (no clientAuth usage)",
            ),
            CertificateError::Revoked => (Refusal::Revoked, "client certificate revoked"),
            _ => (Refusal::CertificateRefused, "client certificate refused"),
        },
        Error::PeerIncompatible(_) => (
            Refusal::Incompatible,
            "client cannot speak TLS 1.2 or 1.3 with our cipher suites",
        ),
        Error::InvalidMessage(_) => (Refusal::NotTls, "not a TLS client"),
        _ => (Refusal::HandshakeFailed, "TLS handshake failed"),
    };
    (reason, format!("{plainly} ({tls})"))
}

/// Whether a handshake failed only because the peer hung up without a TLS
/// error: what a health check or `nc -z` does (connect, then close). Not a
/// refusal, so not worth a warning.
fn closed_before_handshake(error: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    let tls_error = error
        .get_ref()
        .is_some_and(|e| e.downcast_ref::<rustls::Error>().is_some());
    !tls_error
        && matches!(
            error.kind(),
            ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset | ErrorKind::BrokenPipe
        )
}

/// Builds an actix-server that serves `app_factory`'s app over mutual TLS on
/// `listener` (bound by the caller, so a test can bind port 0 and keep it). The
/// caller runs it (`.await`); it stops on SIGTERM/SIGINT unless `handle_signals`
/// is false.
pub fn mtls_server<F, I, S, B>(
    name: &str,
    listener: std::net::TcpListener,
    tls: ServerConfig,
    limits: ServerLimits,
    handle_signals: bool,
    app_factory: F,
) -> std::io::Result<actix_server::Server>
where
    F: Fn() -> I + Send + Clone + 'static,
    I: IntoServiceFactory<S, Request>,
    S: ServiceFactory<Request, Config = AppConfig> + 'static,
    S::Error: Into<actix_web::Error> + 'static,
    S::InitError: fmt::Debug,
    S::Response: Into<Response<B>> + 'static,
    B: MessageBody + 'static,
{
    actix_tls::accept::max_concurrent_tls_connect(MAX_CONCURRENT_HANDSHAKES);
    let client_timeout = limits.client_timeout;
    let on_demand = limits.http_on_demand;
    let limiter = ConnectionLimiter::new(limits.max_connections_per_identity);
    let handshakes = HandshakeCounter::default();
    let mut builder = actix_server::Server::build().shutdown_timeout(SHUTDOWN_GRACE_SECS);
    if limits.workers > 0 {
        builder = builder.workers(limits.workers);
    }
    if !handle_signals {
        builder = builder.disable_signals();
    }
    builder
        .listen(name, listener, move || {
            let mut acceptor = Acceptor::new(tls.clone());
            acceptor.set_handshake_timeout(client_timeout);
            let limiter = limiter.clone();
            let (counter, handshakes) = (handshakes.clone(), handshakes.clone());
            let handshake = apply_fn_factory::<_, _, _, _, TcpStream, TcpStream, _, _>(acceptor, move |tcp, acceptor| {
                let peer = tcp.peer_addr().ok();
                // Requests and answers are small and latency-bound.
                let _ = tcp.set_nodelay(true);
                let accepted = Service::call(acceptor, tcp);
                let (limiter, counter) = (limiter.clone(), counter.clone());
                async move {
                    let stream = accepted.await.inspect_err(|error| match error {
                        TlsError::Timeout => {
                            transport().refused(Refusal::Timeout);
                            log::warn!(
                                "dropped connection from {}: no TLS handshake within {client_timeout:?}",
                                describe(peer)
                            )
                        }
                        TlsError::Tls(error) if closed_before_handshake(error) => log::debug!(
                            "connection from {} closed before a TLS handshake (a port check?); nothing to do",
                            describe(peer)
                        ),
                        TlsError::Tls(error) => {
                            let (reason, explained) = classify_handshake_error(error);
                            transport().refused(reason);
                            log::warn!("refused TLS connection from {}: {explained}", describe(peer))
                        }
                        TlsError::Service(never) => match *never {},
                    })?;
                    counter.record(stream.get_ref().1.handshake_kind());
                    let identity = identify(peer, stream.get_ref().1.peer_certificates());
                    let key = match identity.as_ref().map(|found| found.result()) {
                        Some(Ok(identity)) => Some(LimitKey::Identity(identity.clone())),
                        _ => peer.map(|peer| LimitKey::Unidentified(peer.ip())),
                    };
                    let slot = match key {
                        // Refused (and logged) past the cap: the error only
                        // drops the connection.
                        Some(key) => Some(limiter.admit(key, peer).ok_or_else(|| {
                            transport().refused(Refusal::TooManyConnections);
                            TlsError::Tls(std::io::Error::other("too many connections"))
                        })?),
                        None => None,
                    };
                    Ok((Connection::new(stream, peer, identity, slot), peer))
                }
            })
            .map_err(|_| ())
            .map_init_err(|_| ());
            let app_factory = app_factory.clone();
            let http = move || {
                let handshakes = handshakes.clone();
                HttpService::<Connection<TlsStream<TcpStream>>, _, _>::build()
                    .client_request_timeout(client_timeout)
                    .keep_alive(KEEP_ALIVE)
                    .on_connect_ext(move |connection: &Connection<TlsStream<TcpStream>>, data: &mut Extensions| {
                        record_identity(connection.identity.clone(), data);
                        data.insert(connection.cutoff.clone());
                        data.insert(handshakes.clone());
                    })
                    .h1(map_config(
                        apply_fn_factory(app_factory().into_factory(), move |mut request: Request, app| {
                            bound_body(&mut request, client_timeout);
                            app.call(request)
                        })
                        .map_err(|error| error.into().error_response()),
                        |_| AppConfig::default(),
                    ))
                    .map_err(|error| log::debug!("HTTP connection ended with an error: {error}"))
                    .map_init_err(|error| log::error!("could not build the HTTP service: {error:?}"))
            };
            if on_demand {
                boxed::factory(handshake.and_then(OnDemand::new(http)))
            } else {
                boxed::factory(handshake.and_then(http()))
            }
        })
        .map(|builder| builder.run())
}
