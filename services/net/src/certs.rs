//! Certificates for a crank fleet, made with rcgen: a dev CA and leaf
//! certificates whose identity is the URI SAN `spiffe://crank.local/<role>/<name>`
//! (the CN carries the name too, for tools that only show subjects).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

use crate::identity::{PeerIdentity, Role};

/// The certificates `crank certs init` makes besides the CA: (role, name).
pub const DEV_SET: [(Role, &str); 4] = [
    (Role::Controller, "controller"),
    (Role::Worker, "hello-world-1"),
    (Role::Client, "client"),
    (Role::Admin, "admin"),
];

use crate::cert_files::write_bytes;
pub use crate::cert_files::CertError;

fn rcgen_error(what: impl Into<String>) -> impl FnOnce(rcgen::Error) -> CertError {
    let what = what.into();
    move |source| CertError::Rcgen { what, source }
}

/// A PEM certificate and its PEM private key.
#[derive(Debug, Clone)]
pub struct Minted {
    pub cert_pem: String,
    pub key_pem: String,
}

/// What a leaf certificate is for.
#[derive(Debug, Clone)]
pub struct LeafSpec {
    pub identity: PeerIdentity,
    /// Serves HTTPS: adds serverAuth and the loopback SANs.
    pub server: bool,
    /// Presents itself as a client: adds clientAuth.
    pub client: bool,
    pub not_before: time::OffsetDateTime,
    pub not_after: time::OffsetDateTime,
    /// Host names it serves on besides `localhost` (`crank certs issue --dns`):
    /// a worker whose URL names its host, as the original's `hello-world` does.
    pub dns_names: Vec<String>,
}

impl LeafSpec {
    /// The usual certificate of `role`: controllers, workers and services
    /// serve and call, clients and admins only call. Valid from an hour ago for ten years.
    pub fn for_role(role: Role, name: &str) -> Self {
        let now = time::OffsetDateTime::now_utc();
        LeafSpec {
            identity: PeerIdentity::new(role, name),
            server: matches!(role, Role::Controller | Role::Worker | Role::Service),
            client: true,
            not_before: now - time::Duration::hours(1),
            not_after: now + time::Duration::days(3650),
            dns_names: Vec::new(),
        }
    }
}

/// Whether `name` is a DNS host name: labels of letters, digits and `-`
/// (not at either end), 1–63 characters each, 253 in all.
fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// A certificate authority able to sign leaves.
pub struct CertificateAuthority {
    issuer: Issuer<'static, KeyPair>,
    pub cert_pem: String,
    pub key_pem: String,
}

impl CertificateAuthority {
    /// A fresh self-signed CA.
    pub fn generate(common_name: &str) -> Result<Self, CertError> {
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::hours(1);
        params.not_after = now + time::Duration::days(3650);
        let key = KeyPair::generate().map_err(rcgen_error("generating the CA key"))?;
        let cert = params
            .self_signed(&key)
            .map_err(rcgen_error("self-signing the CA"))?;
        Ok(CertificateAuthority {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            issuer: Issuer::new(params, key),
        })
    }

    /// The CA in `dir` (`ca.crt`, `ca.key`).
    pub fn load(dir: &Path) -> Result<Self, CertError> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read_to_string(&path).map_err(|source| CertError::Io { path, source })
        };
        let cert_pem = read("ca.crt")?;
        let key_pem = read("ca.key")?;
        let key = KeyPair::from_pem(&key_pem).map_err(rcgen_error("reading ca.key"))?;
        let issuer =
            Issuer::from_ca_cert_pem(&cert_pem, key).map_err(rcgen_error("reading ca.crt"))?;
        Ok(CertificateAuthority {
            issuer,
            cert_pem,
            key_pem,
        })
    }

    /// Signs a new leaf certificate with a fresh key.
    pub fn issue(&self, spec: &LeafSpec) -> Result<Minted, CertError> {
        let name = &spec.identity.name;
        if crank_proto::domain::WorkerId::parse("name", name).is_err() || name == "ca" {
            return Err(CertError::BadName(name.clone()));
        }
        if spec.identity.role == Role::Service && !crate::identity::is_service_name(name) {
            return Err(CertError::BadServiceName(name.clone()));
        }
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, name.as_str());
        let uri = spec.identity.spiffe_uri();
        params.subject_alt_names = vec![SanType::URI(
            uri.clone()
                .try_into()
                .map_err(rcgen_error(format!("URI SAN {uri}")))?,
        )];
        if !spec.server && !spec.dns_names.is_empty() {
            return Err(CertError::DnsForClient(spec.identity.role));
        }
        for dns in &spec.dns_names {
            if !is_dns_name(dns) {
                return Err(CertError::BadDnsName(dns.clone()));
            }
            params.subject_alt_names.push(SanType::DnsName(
                dns.as_str().try_into().map_err(rcgen_error("DNS SAN"))?,
            ));
        }
        if spec.server {
            params.subject_alt_names.extend([
                SanType::DnsName("localhost".try_into().map_err(rcgen_error("DNS SAN"))?),
                SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
                SanType::IpAddress(IpAddr::V6(Ipv6Addr::LOCALHOST)),
            ]);
            params
                .extended_key_usages
                .push(ExtendedKeyUsagePurpose::ServerAuth);
        }
        if spec.client {
            params
                .extended_key_usages
                .push(ExtendedKeyUsagePurpose::ClientAuth);
        }
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.use_authority_key_identifier_extension = true;
        params.not_before = spec.not_before;
        params.not_after = spec.not_after;
        let key =
            KeyPair::generate().map_err(rcgen_error(format!("generating the key of {name}")))?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(rcgen_error(format!("signing the certificate of {name}")))?;
        Ok(Minted {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// Writes `contents` to `path`, readable by the owner only when `private`.
fn write_file(path: &Path, contents: &str, private: bool) -> Result<(), CertError> {
    write_bytes(path, contents.as_bytes(), private)
}

/// Writes `<dir>/<name>.crt` and `<dir>/<name>.key` (0600).
pub fn write_minted(dir: &Path, name: &str, minted: &Minted) -> Result<Vec<PathBuf>, CertError> {
    let cert = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    write_file(&cert, &minted.cert_pem, false)?;
    write_file(&key, &minted.key_pem, true)?;
    Ok(vec![cert, key])
}

fn create_dir(dir: &Path) -> Result<(), CertError> {
    std::fs::create_dir_all(dir).map_err(|source| CertError::Io {
        path: dir.to_owned(),
        source,
    })
}

/// `crank certs init`: a new CA and the dev set in `dir`, and the client's
/// certificate as a PKCS#12 bundle for browsers (`client.p12`, see
/// [`crate::bundle`]). Refuses to replace existing files unless `force`.
pub fn init(dir: &Path, force: bool) -> Result<Vec<PathBuf>, CertError> {
    create_dir(dir)?;
    let names = std::iter::once("ca").chain(DEV_SET.iter().map(|(_, name)| *name));
    if !force {
        for name in names {
            for ext in ["crt", "key"] {
                let path = dir.join(format!("{name}.{ext}"));
                if path.exists() {
                    return Err(CertError::Exists { path });
                }
            }
        }
    }
    let ca = CertificateAuthority::generate("crank dev CA")?;
    let mut written = write_minted(
        dir,
        "ca",
        &Minted {
            cert_pem: ca.cert_pem.clone(),
            key_pem: ca.key_pem.clone(),
        },
    )?;
    for (role, name) in DEV_SET {
        written.extend(write_minted(
            dir,
            name,
            &ca.issue(&LeafSpec::for_role(role, name))?,
        )?);
    }
    written.push(crate::bundle::write_pkcs12(dir, "client")?);
    Ok(written)
}

/// `crank certs issue`: one more certificate from the CA in `dir`. Refuses to
/// replace an existing `NAME.crt`/`NAME.key` unless `force`.
pub fn issue(dir: &Path, role: Role, name: &str, force: bool) -> Result<Vec<PathBuf>, CertError> {
    issue_with_dns(dir, role, name, &[], force)
}

/// [`issue`], also valid for the host names `dns` (`--dns`).
pub fn issue_with_dns(
    dir: &Path,
    role: Role,
    name: &str,
    dns: &[String],
    force: bool,
) -> Result<Vec<PathBuf>, CertError> {
    let ca = CertificateAuthority::load(dir)?;
    let minted = ca.issue(&LeafSpec {
        dns_names: dns.to_vec(),
        ..LeafSpec::for_role(role, name)
    })?;
    if !force {
        for ext in ["crt", "key"] {
            let path = dir.join(format!("{name}.{ext}"));
            if path.exists() {
                return Err(CertError::Exists { path });
            }
        }
    }
    write_minted(dir, name, &minted)
}

/// Whether `dir` holds a CA to issue from.
pub fn has_ca(dir: &Path) -> bool {
    dir.join("ca.crt").exists() && dir.join("ca.key").exists()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::identity_from_der;
    use crate::tls::{load_certs, TlsFiles};
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn init_writes_the_dev_set_with_private_keys_and_identities() {
        let dir = tempfile::tempdir().unwrap();
        let written = init(dir.path(), false).unwrap();
        assert_eq!(written.len(), 11);
        for (role, name) in DEV_SET {
            let files = TlsFiles::in_dir(dir.path(), name);
            let cert = &load_certs(&files.cert).unwrap()[0];
            assert_eq!(
                identity_from_der(cert).unwrap(),
                PeerIdentity::new(role, name)
            );
            let mode = std::fs::metadata(&files.key).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{name}.key");
        }
        let mode = std::fs::metadata(dir.path().join("ca.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn issue_with_dns_adds_the_host_names_and_refuses_bad_ones() {
        use x509_parser::extensions::GeneralName;
        let dir = tempfile::tempdir().unwrap();
        init(dir.path(), false).unwrap();
        let dns = ["hello-world".to_owned(), "hello.example.org".to_owned()];
        issue_with_dns(dir.path(), Role::Service, "hello-world", &dns, false).unwrap();
        let cert = &load_certs(&TlsFiles::in_dir(dir.path(), "hello-world").cert).unwrap()[0];
        let (_, parsed) = x509_parser::parse_x509_certificate(cert).unwrap();
        let names: Vec<String> = parsed
            .subject_alternative_name()
            .unwrap()
            .unwrap()
            .value
            .general_names
            .iter()
            .filter_map(|name| match name {
                GeneralName::DNSName(dns) => Some((*dns).to_owned()),
                _ => None,
            })
            .collect();
        assert_eq!(names, ["hello-world", "hello.example.org", "localhost"]);
        for bad in ["-x", "a..b", "under_score", "sp ace", ""] {
            assert!(
                matches!(
                    issue_with_dns(dir.path(), Role::Service, "other", &[bad.to_owned()], true),
                    Err(CertError::BadDnsName(_))
                ),
                "{bad:?}"
            );
        }
        assert!(matches!(
            issue_with_dns(dir.path(), Role::Client, "c2", &dns, false),
            Err(CertError::DnsForClient(Role::Client))
        ));
    }

    #[test]
    fn init_refuses_to_overwrite_without_force() {
        let dir = tempfile::tempdir().unwrap();
        init(dir.path(), false).unwrap();
        let ca_before = std::fs::read(dir.path().join("ca.crt")).unwrap();
        assert!(matches!(
            init(dir.path(), false),
            Err(CertError::Exists { .. })
        ));
        assert_eq!(std::fs::read(dir.path().join("ca.crt")).unwrap(), ca_before);
        init(dir.path(), true).unwrap();
        assert_ne!(std::fs::read(dir.path().join("ca.crt")).unwrap(), ca_before);
    }

    #[test]
    fn issue_mints_from_the_existing_ca() {
        let dir = tempfile::tempdir().unwrap();
        init(dir.path(), false).unwrap();
        issue(dir.path(), Role::Worker, "worker-7", false).unwrap();
        let files = TlsFiles::in_dir(dir.path(), "worker-7");
        crate::tls::server_config(&files).unwrap();
        crate::tls::client_config(&files).unwrap();
        let cert = &load_certs(&files.cert).unwrap()[0];
        assert_eq!(
            identity_from_der(cert).unwrap(),
            PeerIdentity::new(Role::Worker, "worker-7")
        );
        assert!(matches!(
            issue(dir.path(), Role::Worker, "bad name", false),
            Err(CertError::BadName(_))
        ));
        let ca_before = std::fs::read(dir.path().join("ca.crt")).unwrap();
        assert!(matches!(
            issue(dir.path(), Role::Worker, "ca", true),
            Err(CertError::BadName(_))
        ));
        assert!(matches!(
            issue(dir.path(), Role::Worker, "worker-7", false),
            Err(CertError::Exists { .. })
        ));
        issue(dir.path(), Role::Worker, "worker-7", true).unwrap();
        assert_eq!(std::fs::read(dir.path().join("ca.crt")).unwrap(), ca_before);
    }

    #[test]
    fn a_service_certificate_serves_and_calls_and_its_name_has_no_dot() {
        let dir = tempfile::tempdir().unwrap();
        init(dir.path(), false).unwrap();
        issue(dir.path(), Role::Service, "hello", false).unwrap();
        let files = TlsFiles::in_dir(dir.path(), "hello");
        crate::tls::server_config(&files).unwrap();
        crate::tls::client_config(&files).unwrap();
        let cert = &load_certs(&files.cert).unwrap()[0];
        assert_eq!(
            identity_from_der(cert).unwrap(),
            PeerIdentity::new(Role::Service, "hello")
        );
        assert!(matches!(
            issue(dir.path(), Role::Service, "hello.1", false),
            Err(CertError::BadServiceName(_))
        ));
        // A per-replica worker certificate may have a dot.
        issue(dir.path(), Role::Worker, "hello.1", false).unwrap();
    }
}
