//! TLS setup. Servers require a client certificate signed by the fleet's CA
//! whose extended key usage names clientAuth ([`WebPkiClientVerifier`], which
//! checks the chain, the validity dates and the usage when the extension is
//! there, wrapped so that a certificate without the extension is refused too);
//! clients present their certificate and trust only that CA. TLS 1.2 and 1.3
//! only, with the ring provider.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, DistinguishedName, OtherError,
    RootCertStore, ServerConfig, SignatureScheme,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::identity::{identity_from_der, IdentityError, PeerIdentity, Role};

/// A certificate, its key and the CA that signs the fleet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TlsFiles {
    /// `<dir>/ca.crt`, `<dir>/<name>.crt`, `<dir>/<name>.key`.
    pub fn in_dir(dir: &Path, name: &str) -> Self {
        TlsFiles {
            ca: dir.join("ca.crt"),
            cert: dir.join(format!("{name}.crt")),
            key: dir.join(format!("{name}.key")),
        }
    }
}

/// A TLS file that cannot be used, named.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{}: {problem}", path.display())]
    File { path: PathBuf, problem: String },
    #[error("{} does not match its key {}: {problem}", cert.display(), key.display())]
    KeyMismatch {
        cert: PathBuf,
        key: PathBuf,
        problem: String,
    },
    #[error("{}: cannot be used as the trusted CA: {problem}", path.display())]
    Ca { path: PathBuf, problem: String },
}

fn file_problem(path: &Path, problem: impl ToString) -> TlsError {
    TlsError::File {
        path: path.to_owned(),
        problem: problem.to_string(),
    }
}

fn pem_problem(path: &Path, error: rustls_pki_types::pem::Error) -> TlsError {
    match error {
        rustls_pki_types::pem::Error::Io(io) => file_problem(path, io),
        rustls_pki_types::pem::Error::NoItemsFound => {
            file_problem(path, "contains no PEM item of the expected kind")
        }
        other => file_problem(path, format!("is not valid PEM ({other:?})")),
    }
}

/// Reads every certificate of a PEM file; an empty file is an error.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_problem(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_problem(path, e))?;
    if certs.is_empty() {
        return Err(file_problem(path, "contains no certificate"));
    }
    Ok(certs)
}

/// Reads the private key of a PEM file (PKCS#8, PKCS#1 or SEC1).
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| pem_problem(path, e))
}

/// The crypto provider every crank TLS endpoint uses.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn roots(ca: &Path) -> Result<Arc<RootCertStore>, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(ca)? {
        roots.add(cert).map_err(|e| TlsError::Ca {
            path: ca.to_owned(),
            problem: e.to_string(),
        })?;
    }
    Ok(Arc::new(roots))
}

fn key_mismatch(files: &TlsFiles, error: rustls::Error) -> TlsError {
    TlsError::KeyMismatch {
        cert: files.cert.clone(),
        key: files.key.clone(),
        problem: error.to_string(),
    }
}

/// A server that refuses any client without a certificate from `files.ca`.
pub fn server_config(files: &TlsFiles) -> Result<ServerConfig, TlsError> {
    let provider = provider();
    let verifier = WebPkiClientVerifier::builder_with_provider(roots(&files.ca)?, provider.clone())
        .build()
        .map_err(|e| TlsError::Ca {
            path: files.ca.clone(),
            problem: e.to_string(),
        })?;
    let verifier = Arc::new(RequireClientAuthUsage(verifier));
    let chain = load_certs(&files.cert)?;
    let key = load_key(&files.key)?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports TLS 1.2 and 1.3")
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| key_mismatch(files, e))?;
    // Stateless session tickets: a worker that reconnects for its next heartbeat
    // resumes its session instead of redoing certificate signatures, whatever the
    // fleet's size (the default stateful cache holds 256 sessions).
    config.ticketer = rustls::crypto::ring::Ticketer::new().map_err(|e| TlsError::File {
        path: files.cert.clone(),
        problem: format!("cannot set up session tickets: {e}"),
    })?;
    Ok(config)
}

/// Who a client expects the server to be. Any certificate from the fleet's CA
/// passes the TLS chain check; this says which identity (see
/// [`identity_from_der`]) the server's certificate must also carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpectedPeer {
    /// A controller: `controller/<name>`, of any name when `name` is `None`.
    /// What workers and the CLI expect of the controller URL they are given.
    Controller { name: Option<String> },
    /// The worker `<id>`: a certificate `worker/<id>`, `service/<name>` of which
    /// `<id>` is a replica ([`PeerIdentity::is_worker`]), or one without a URI
    /// SAN whose CN is `<id>`. What a client expects of the worker a route named.
    Worker(String),
    /// Any worker of the fleet: `worker/*` or `service/*`. What the
    /// controller's active checks expect (one TLS client for every worker:
    /// they confirm a fleet worker answers at the URL, not which one).
    AnyWorker,
}

impl ExpectedPeer {
    /// Whether a server certificate of `identity` is what is expected.
    pub fn admits(&self, identity: &PeerIdentity) -> bool {
        match self {
            ExpectedPeer::Controller { name } => {
                identity.role == Role::Controller
                    && name.as_ref().is_none_or(|name| *name == identity.name)
            }
            ExpectedPeer::Worker(id) => identity.is_worker(id),
            ExpectedPeer::AnyWorker => matches!(identity.role, Role::Worker | Role::Service),
        }
    }

    /// Checks the identity of the server's end-entity certificate `der`.
    pub fn check(&self, der: &[u8]) -> Result<(), WrongPeer> {
        match identity_from_der(der) {
            Ok(found) if self.admits(&found) => Ok(()),
            Ok(found) => Err(WrongPeer::Other {
                found,
                expected: self.clone(),
            }),
            Err(problem) => Err(WrongPeer::NoIdentity {
                problem,
                expected: self.clone(),
            }),
        }
    }
}

impl fmt::Display for ExpectedPeer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpectedPeer::Controller { name: None } => f.write_str("a controller"),
            ExpectedPeer::Controller { name: Some(name) } => write!(f, "controller/{name}"),
            ExpectedPeer::Worker(id) => write!(f, "worker/{id}"),
            ExpectedPeer::AnyWorker => f.write_str("a worker"),
        }
    }
}

/// A server whose certificate, though signed by the fleet's CA, is not the
/// [`ExpectedPeer`]. A client refuses the handshake with it.
#[derive(Debug, thiserror::Error)]
pub enum WrongPeer {
    #[error("the server's certificate is {found}, not {expected}")]
    Other {
        found: PeerIdentity,
        expected: ExpectedPeer,
    },
    #[error("the server's certificate has no crank identity ({problem}), so it is not {expected}")]
    NoIdentity {
        problem: IdentityError,
        expected: ExpectedPeer,
    },
}

/// A [`ServerCertVerifier`] that asks the fleet CA's [`WebPkiServerVerifier`]
/// first (chain, dates, server name), then requires the certificate's crank
/// identity to be the [`ExpectedPeer`], failing with [`WrongPeer`] inside a
/// [`rustls::Error::Other`].
#[derive(Debug)]
struct ExpectPeer {
    inner: Arc<WebPkiServerVerifier>,
    expected: ExpectedPeer,
}

impl ServerCertVerifier for ExpectPeer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verified = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )?;
        self.expected
            .check(end_entity)
            .map_err(|wrong| rustls::Error::Other(OtherError(Arc::new(wrong))))?;
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }

    fn requires_raw_public_keys(&self) -> bool {
        self.inner.requires_raw_public_keys()
    }
}

/// A client that presents `files.cert`, trusts only `files.ca`, and talks only
/// to a server whose certificate is the [`ExpectedPeer`]: workers and the CLI
/// expect a controller of their controller URL, and a client calling a routed
/// worker expects [`ExpectedPeer::Worker`] of the route's `worker_id`.
pub fn client_config_for(
    files: &TlsFiles,
    expected: ExpectedPeer,
) -> Result<ClientConfig, TlsError> {
    let provider = provider();
    let chain = load_certs(&files.cert)?;
    let key = load_key(&files.key)?;
    let inner = WebPkiServerVerifier::builder_with_provider(roots(&files.ca)?, provider.clone())
        .build()
        .map_err(|e| TlsError::Ca {
            path: files.ca.clone(),
            problem: e.to_string(),
        })?;
    ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports TLS 1.2 and 1.3")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ExpectPeer { inner, expected }))
        .with_client_auth_cert(chain, key)
        .map_err(|e| key_mismatch(files, e))
}

/// A client of the controller: [`client_config_for`] expecting a controller of
/// any name. For calling a worker, use [`client_config_for`] with
/// [`ExpectedPeer::Worker`].
pub fn client_config(files: &TlsFiles) -> Result<ClientConfig, TlsError> {
    client_config_for(files, ExpectedPeer::Controller { name: None })
}

/// Whether `der` has an extended-key-usage extension that names clientAuth: a
/// certificate without the extension is valid for any purpose to webpki, but a
/// crank client certificate must say it is one.
fn require_client_auth_usage(der: &CertificateDer<'_>) -> Result<(), rustls::Error> {
    let refused = || rustls::Error::InvalidCertificate(CertificateError::InvalidPurpose);
    let (_, cert) = X509Certificate::from_der(der)
        .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
    match cert.extended_key_usage() {
        Ok(Some(usage)) if usage.value.client_auth => Ok(()),
        Ok(_) => Err(refused()),
        Err(_) => Err(rustls::Error::InvalidCertificate(
            CertificateError::BadEncoding,
        )),
    }
}

/// A [`ClientCertVerifier`] that asks its inner verifier (the fleet CA's
/// [`WebPkiClientVerifier`]) first, then refuses a certificate whose extended
/// key usage does not name clientAuth, the extension's absence included, with
/// [`CertificateError::InvalidPurpose`].
#[derive(Debug)]
struct RequireClientAuthUsage(Arc<dyn ClientCertVerifier>);

impl ClientCertVerifier for RequireClientAuthUsage {
    fn offer_client_auth(&self) -> bool {
        self.0.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.0.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.0.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self.0.verify_client_cert(end_entity, intermediates, now)?;
        require_client_auth_usage(end_entity)?;
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }

    fn requires_raw_public_keys(&self) -> bool {
        self.0.requires_raw_public_keys()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certs::{CertificateAuthority, LeafSpec};

    fn der_of(spec: &LeafSpec) -> Vec<u8> {
        let minted = CertificateAuthority::generate("test CA")
            .unwrap()
            .issue(spec)
            .unwrap();
        CertificateDer::from_pem_slice(minted.cert_pem.as_bytes())
            .unwrap()
            .to_vec()
    }

    #[test]
    fn a_controller_is_expected_by_role_and_optionally_by_name() {
        let any = ExpectedPeer::Controller { name: None };
        let named = ExpectedPeer::Controller {
            name: Some("ctl-a".into()),
        };
        let ctl_a = PeerIdentity::new(Role::Controller, "ctl-a");
        let ctl_b = PeerIdentity::new(Role::Controller, "ctl-b");
        assert!(any.admits(&ctl_a) && any.admits(&ctl_b));
        assert!(named.admits(&ctl_a) && !named.admits(&ctl_b));
        for role in [Role::Worker, Role::Client, Role::Admin] {
            assert!(!any.admits(&PeerIdentity::new(role, "ctl-a")), "{role}");
        }
        let worker = der_of(&LeafSpec::for_role(Role::Worker, "hello-world-1"));
        let refused = any.check(&worker).unwrap_err().to_string();
        assert_eq!(
            refused,
            "the server's certificate is worker/hello-world-1, not a controller"
        );
    }

    #[test]
    fn a_routed_worker_is_expected_by_its_id_or_its_cn() {
        let w1 = ExpectedPeer::Worker("w1".into());
        assert!(w1.admits(&PeerIdentity::new(Role::Worker, "w1")));
        assert!(!w1.admits(&PeerIdentity::new(Role::Worker, "w2")));
        assert!(!w1.admits(&PeerIdentity::new(Role::Controller, "w1")));
        assert!(!w1.admits(&PeerIdentity::new(Role::Admin, "w1")));
        assert!(w1
            .check(&der_of(&LeafSpec::for_role(Role::Worker, "w1")))
            .is_ok());
        assert_eq!(
            w1.check(&der_of(&LeafSpec::for_role(Role::Worker, "w2")))
                .unwrap_err()
                .to_string(),
            "the server's certificate is worker/w2, not worker/w1"
        );

        // A certificate made the original project's way: CN only, no URI SAN.
        let cn_only = |cn: &str| {
            let mut params = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap();
            params.distinguished_name = rcgen::DistinguishedName::new();
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, cn);
            let key = rcgen::KeyPair::generate().unwrap();
            params.self_signed(&key).unwrap().der().to_vec()
        };
        assert!(w1.check(&cn_only("w1")).is_ok());
        assert!(matches!(
            w1.check(&cn_only("w2")),
            Err(WrongPeer::Other { .. })
        ));
        assert!(matches!(
            w1.check(b"not a certificate"),
            Err(WrongPeer::NoIdentity { .. })
        ));
    }

    #[test]
    fn a_routed_replica_may_present_its_services_certificate() {
        let hello = der_of(&LeafSpec::for_role(Role::Service, "hello"));
        for id in ["hello", "hello.1", "hello.a1b2"] {
            assert!(
                ExpectedPeer::Worker(id.into()).check(&hello).is_ok(),
                "{id}"
            );
        }
        for id in ["hello-world", "hello-world.1", "hellothere"] {
            assert_eq!(
                ExpectedPeer::Worker(id.into())
                    .check(&hello)
                    .unwrap_err()
                    .to_string(),
                format!("the server's certificate is service/hello, not worker/{id}")
            );
        }
    }
}
