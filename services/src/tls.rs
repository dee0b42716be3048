//! TLS setup. Servers require a client certificate signed by the fleet's CA
//! whose extended key usage names clientAuth ([`WebPkiClientVerifier`], which
//! checks the chain, the validity dates and the usage when the extension is
//! there, wrapped so that a certificate without the extension is refused too);
//! clients present their certificate and trust only that CA. TLS 1.2 and 1.3
//! only, with the ring provider.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, DistinguishedName, RootCertStore,
    ServerConfig, SignatureScheme,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use x509_parser::prelude::{FromDer, X509Certificate};

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

/// A client that presents `files.cert` and trusts only `files.ca`.
pub fn client_config(files: &TlsFiles) -> Result<ClientConfig, TlsError> {
    let chain = load_certs(&files.cert)?;
    let key = load_key(&files.key)?;
    ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports TLS 1.2 and 1.3")
        .with_root_certificates(roots(&files.ca)?)
        .with_client_auth_cert(chain, key)
        .map_err(|e| key_mismatch(files, e))
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
