//! The authenticated caller of a request. The client certificate of a
//! connection is parsed once, when the connection is accepted
//! ([`identify`], kept by [`record_identity`]), and handlers read the result
//! through the [`Caller`] extractor.

use std::future::{ready, Ready};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use actix_web::dev::{Extensions, Payload};
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use rustls_pki_types::CertificateDer;

use crate::error::ApiError;
use crate::identity::{current_identity_from_der, IdentityError, PeerIdentity};

/// What was learned of the peer when it connected: its identity, or why it has
/// none. Shared, so handing it to each request of the connection is a count.
#[derive(Debug, Clone)]
pub struct ConnectionIdentity(Result<Arc<PeerIdentity>, IdentityError>);

impl ConnectionIdentity {
    /// The identity, or why there is none.
    pub fn result(&self) -> Result<&PeerIdentity, &IdentityError> {
        self.0.as_deref()
    }
}

/// Parses the client certificate of a new connection once: its identity, if
/// the leaf certificate is valid now and names one (see
/// [`current_identity_from_der`]); `None` without a certificate. A certificate
/// without a usable identity is logged here, once per connection.
pub fn identify(
    peer: Option<SocketAddr>,
    certificates: Option<&[CertificateDer<'_>]>,
) -> Option<ConnectionIdentity> {
    let leaf = certificates.and_then(|certs| certs.first())?;
    // Checked on every connection: a resumed TLS session skips the handshake's
    // certificate checks, validity dates included.
    let identity = current_identity_from_der(leaf, SystemTime::now());
    if let Err(problem) = &identity {
        log::warn!(
            "client {} presented a certificate without a usable identity: {problem}; its requests are refused (403)",
            peer.map(|p| p.to_string()).unwrap_or_else(|| "?".into())
        );
    }
    Some(ConnectionIdentity(identity.map(Arc::new)))
}

/// Keeps the identity [`identify`] found in the connection's data, where
/// [`Caller`] finds it.
pub fn record_identity(identity: Option<ConnectionIdentity>, data: &mut Extensions) {
    if let Some(identity) = identity {
        data.insert(identity);
    }
}

/// The authenticated caller of a request. Handlers that act on a worker's record
/// take this extractor; it fails with 403 when the peer has no identity.
#[derive(Debug, Clone)]
pub struct Caller(pub Arc<PeerIdentity>);

impl Caller {
    /// Makes `identity` the caller of `req`: for tests and middleware that stand
    /// in front of TLS termination.
    pub fn attach(req: &impl HttpMessage, identity: PeerIdentity) {
        req.extensions_mut()
            .insert(ConnectionIdentity(Ok(Arc::new(identity))));
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let found = req
            .conn_data::<ConnectionIdentity>()
            .cloned()
            .or_else(|| req.extensions().get::<ConnectionIdentity>().cloned());
        ready(match found {
            Some(ConnectionIdentity(Ok(identity))) => Ok(Caller(identity)),
            Some(ConnectionIdentity(Err(problem))) => {
                Err(ApiError::NoIdentity(problem.to_string()))
            }
            None => Err(ApiError::NoIdentity(
                "the connection presented no client certificate".into(),
            )),
        })
    }
}
