//! [`TransportMetrics`]: the connections of this process's mTLS server, open
//! now, its completed TLS handshakes (full or resumed), and the connections
//! refused at the handshake by [`Refusal`] reason. One per process (a
//! crank process serves one listener): the server counts into it wherever it
//! runs, and each app's `/metrics` shows it.

use std::sync::LazyLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Why a connection was refused before it could send a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    NoCertificate,
    UnknownCa,
    Expired,
    NotYetValid,
    /// No clientAuth extended key usage.
    WrongUsage,
    Revoked,
    /// Another certificate error.
    CertificateRefused,
    /// No common TLS version or cipher suite.
    Incompatible,
    /// Not TLS at all.
    NotTls,
    /// Another TLS error.
    HandshakeFailed,
    /// No handshake within the client timeout.
    Timeout,
    /// Its identity already holds the most connections it may.
    TooManyConnections,
}

impl Refusal {
    /// Every reason, in the order `/metrics` lists them.
    pub const ALL: [Refusal; 12] = [
        Refusal::NoCertificate,
        Refusal::UnknownCa,
        Refusal::Expired,
        Refusal::NotYetValid,
        Refusal::WrongUsage,
        Refusal::Revoked,
        Refusal::CertificateRefused,
        Refusal::Incompatible,
        Refusal::NotTls,
        Refusal::HandshakeFailed,
        Refusal::Timeout,
        Refusal::TooManyConnections,
    ];

    /// Its `reason` label.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::NoCertificate => "no_certificate",
            Refusal::UnknownCa => "unknown_ca",
            Refusal::Expired => "expired",
            Refusal::NotYetValid => "not_yet_valid",
            Refusal::WrongUsage => "wrong_usage",
            Refusal::Revoked => "revoked",
            Refusal::CertificateRefused => "certificate_refused",
            Refusal::Incompatible => "incompatible",
            Refusal::NotTls => "not_tls",
            Refusal::HandshakeFailed => "handshake_failed",
            Refusal::Timeout => "timeout",
            Refusal::TooManyConnections => "too_many_connections",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

const FULL: KindLabel = KindLabel { kind: "full" };
const RESUMED: KindLabel = KindLabel { kind: "resumed" };

/// See the [module](self) docs.
#[derive(Debug, Default)]
pub struct TransportMetrics {
    open: Gauge,
    handshakes: Family<KindLabel, Counter>,
    refused: Family<ReasonLabel, Counter>,
}

static TRANSPORT: LazyLock<TransportMetrics> = LazyLock::new(|| {
    let metrics = TransportMetrics::default();
    for kind in [FULL, RESUMED] {
        let _ = metrics.handshakes.get_or_create(&kind);
    }
    for reason in Refusal::ALL {
        let _ = metrics.refused.get_or_create(&ReasonLabel {
            reason: reason.label(),
        });
    }
    metrics
});

/// This process's transport metrics.
pub fn transport() -> &'static TransportMetrics {
    &TRANSPORT
}

impl TransportMetrics {
    /// Counts a refused connection.
    pub fn refused(&self, reason: Refusal) {
        self.refused
            .get_or_create(&ReasonLabel {
                reason: reason.label(),
            })
            .inc();
    }

    /// Counts a completed handshake: a full one (key exchange, signatures,
    /// the client certificate verified) unless it `resumed` a session.
    pub fn handshake(&self, resumed: bool) {
        self.handshakes
            .get_or_create(if resumed { &RESUMED } else { &FULL })
            .inc();
    }

    /// Connections refused so far for `reason`.
    pub fn refusals(&self, reason: Refusal) -> u64 {
        self.refused
            .get_or_create(&ReasonLabel {
                reason: reason.label(),
            })
            .get()
    }

    /// Counts a connection open for as long as the guard lives.
    pub fn open_connection(&self) -> OpenConnection {
        self.open.inc();
        OpenConnection(self.open.clone())
    }

    /// Adds these metrics to `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "crank_open_connections",
            "Connections past their TLS handshake, open now",
            self.open.clone(),
        );
        registry.register(
            "crank_tls_handshakes",
            "TLS handshakes completed, full or resumed",
            self.handshakes.clone(),
        );
        registry.register(
            "crank_tls_refused",
            "Connections refused at or right after the TLS handshake, by reason",
            self.refused.clone(),
        );
    }
}

/// One open connection; dropping it (with the connection) uncounts it.
#[derive(Debug)]
pub struct OpenConnection(Gauge);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.dec();
    }
}
