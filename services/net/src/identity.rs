//! Who is calling. Every connection to a crank server carries a client certificate
//! signed by the fleet's CA; its identity is the URI SAN
//! `spiffe://crank.local/<role>/<name>`, or, for certificates made the way the
//! original Python project made them (no URI SAN), the subject CN as a worker name.
//!
//! A `worker/<id>` certificate speaks for exactly one worker id; a
//! `service/<name>` certificate speaks for the service `<name>` and each of its
//! replicas `<name>.<suffix>` ([`is_replica_of`]), so a fleet of replicas shares
//! one certificate.
//!
//! This module knows certificates and the authorization rule, not HTTP; the
//! [`Caller`](crate::caller::Caller) extractor hands the identity to handlers.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use crank_proto::domain::WorkerId;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

/// The trust domain of every crank identity.
pub const TRUST_DOMAIN: &str = "crank.local";

/// What a certificate may do, by its role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The controller itself.
    Controller,
    /// A worker: may register, heartbeat and deregister its own id.
    Worker,
    /// A service: may register, heartbeat and deregister the ids of its
    /// replicas, `<name>` and `<name>.<suffix>` ([`is_replica_of`]).
    Service,
    /// A reader: may list and route.
    Client,
    /// An operator tool: may do anything for any worker.
    Admin,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Controller,
        Role::Worker,
        Role::Service,
        Role::Client,
        Role::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Controller => "controller",
            Role::Worker => "worker",
            Role::Service => "service",
            Role::Client => "client",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A peer's identity: `role/name`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PeerIdentity {
    pub role: Role,
    pub name: String,
}

impl PeerIdentity {
    pub fn new(role: Role, name: impl Into<String>) -> Self {
        PeerIdentity {
            role,
            name: name.into(),
        }
    }

    /// The SPIFFE URI that carries this identity in a certificate.
    pub fn spiffe_uri(&self) -> String {
        format!("spiffe://{TRUST_DOMAIN}/{}/{}", self.role, self.name)
    }

    /// Whether this identity is the worker `worker_id`: `worker/<worker_id>`,
    /// or `service/<name>` when `worker_id` is one of that service's replicas
    /// ([`is_replica_of`]). What a worker's certificate must say, both to act
    /// for its record and to be called as that worker.
    pub fn is_worker(&self, worker_id: &str) -> bool {
        match self.role {
            Role::Worker => self.name == worker_id,
            Role::Service => is_replica_of(worker_id, &self.name),
            Role::Controller | Role::Client | Role::Admin => false,
        }
    }

    /// Whether this identity may register, heartbeat and deregister `worker_id`:
    /// an admin for any worker, a worker for its own id, a service for the ids
    /// of its replicas ([`PeerIdentity::is_worker`]).
    pub fn may_act_for(&self, worker_id: &str) -> Result<(), NotAllowed> {
        if self.is_admin() || self.is_worker(worker_id) {
            return Ok(());
        }
        Err(NotAllowed {
            caller: self.to_string(),
            worker_id: worker_id.to_owned(),
        })
    }

    /// [`PeerIdentity::may_act_for`], where a service may also act for the
    /// ids the controller's [`ServiceIds`](crate::service_ids::ServiceIds) map to it.
    pub fn may_act_for_mapped(
        &self,
        worker_id: &str,
        mapped: &crate::service_ids::ServiceIds,
    ) -> Result<(), NotAllowed> {
        if self.role == Role::Service && mapped.allows(&self.name, worker_id) {
            return Ok(());
        }
        self.may_act_for(worker_id)
    }

    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

impl fmt::Display for PeerIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.role, self.name)
    }
}

/// What separates a service's name from a replica's suffix in a worker id:
/// `hello.3` is replica `3` of the service `hello`.
pub const REPLICA_SEPARATOR: char = '.';

/// Whether `name` can name a service: a valid worker id (see
/// [`WorkerId`]) without [`REPLICA_SEPARATOR`]. Since no service name holds a
/// `.`, the service of a replica id is everything before its first `.`, and
/// no two services can claim the same id.
pub fn is_service_name(name: &str) -> bool {
    WorkerId::parse("name", name).is_ok() && !name.contains(REPLICA_SEPARATOR)
}

/// Whether `worker_id` is the service `service` or one of its replicas: the id
/// `service` itself, or `service.<suffix>` with a suffix of at least one
/// character. `hello` has the replicas `hello`, `hello.1` and `hello.a1b2`,
/// never `hello-world`, `hello-world.1`, `hellothere` or `hello.`. A name
/// that is not a service name ([`is_service_name`]) has no replicas.
pub fn is_replica_of(worker_id: &str, service: &str) -> bool {
    if !is_service_name(service) {
        return false;
    }
    match worker_id.strip_prefix(service) {
        Some("") => true,
        Some(rest) => rest
            .strip_prefix(REPLICA_SEPARATOR)
            .is_some_and(|suffix| !suffix.is_empty()),
        None => false,
    }
}

/// The authorization rule refused: this identity may not act for that worker.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("certificate {caller} may not act for worker {worker_id}")]
pub struct NotAllowed {
    pub caller: String,
    pub worker_id: String,
}

/// Why a certificate carries no usable identity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("the certificate is not valid DER X.509: {0}")]
    Unparsable(String),
    #[error("the certificate has neither a spiffe://{TRUST_DOMAIN}/ URI SAN nor a subject CN")]
    Anonymous,
    #[error("the certificate's URI SAN {0:?} is not spiffe://{TRUST_DOMAIN}/<controller|worker|service|client|admin>/<name> (a service's name without '.')")]
    MalformedUri(String),
    #[error("the certificate names more than one crank identity: {0:?}")]
    Ambiguous(Vec<String>),
    #[error("the certificate's URI SAN {0:?} is a SPIFFE ID but not spiffe://{TRUST_DOMAIN}/<role>/<name> spelled exactly; a certificate with a SPIFFE ID outside crank's trust domain has no crank identity, whatever its CN")]
    ForeignSpiffe(String),
    #[error("the certificate expired at {0} (a resumed TLS session outlived it); present a current certificate")]
    Expired(String),
    #[error("the certificate is not valid before {0}")]
    NotYetValid(String),
}

/// Reads the crank identity of a DER certificate.
///
/// The identity is the one URI SAN spelled exactly `spiffe://crank.local/<role>/<name>`.
/// SPIFFE IDs of other trust domains beside it are ignored (a certificate may serve
/// other meshes too). A certificate without one has its subject CN as a worker name
/// only if it carries no SPIFFE ID at all: a certificate that does (the scheme
/// compared case-insensitively) was made for some SPIFFE trust domain, and falling
/// back to its CN would let `spiffe://evil.local/...` or
/// `SPIFFE://crank.local/...` with `CN=w1` act as `worker/w1`. A near miss of
/// crank's own domain (`spiffe://CRANK.LOCAL/`, `spiffe://crank.local./`, a port
/// or user part) refuses the certificate even beside a valid URI. A malformed URI
/// inside the domain is refused too, since falling back to the CN would hand a
/// mistyped admin certificate a worker's rights.
pub fn identity_from_der(der: &[u8]) -> Result<PeerIdentity, IdentityError> {
    identity_of(&parse(der)?)
}

/// The crank identity of a DER certificate ([`identity_from_der`]), if the
/// certificate is valid at `now`.
///
/// A full TLS handshake checks the validity dates; a resumed session does not
/// look at the certificate again, so a session ticket would otherwise carry an
/// identity past its certificate's `notAfter`. Servers call this for every
/// connection, resumed or not.
pub fn current_identity_from_der(
    der: &[u8],
    now: SystemTime,
) -> Result<PeerIdentity, IdentityError> {
    let cert = parse(der)?;
    let validity = cert.validity();
    let now = match now.duration_since(UNIX_EPOCH) {
        Ok(since) => i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
        Err(_) => 0,
    };
    if now > validity.not_after.timestamp() {
        return Err(IdentityError::Expired(validity.not_after.to_string()));
    }
    if now < validity.not_before.timestamp() {
        return Err(IdentityError::NotYetValid(validity.not_before.to_string()));
    }
    identity_of(&cert)
}

fn parse(der: &[u8]) -> Result<X509Certificate<'_>, IdentityError> {
    X509Certificate::from_der(der)
        .map(|(_, cert)| cert)
        .map_err(|e| IdentityError::Unparsable(e.to_string()))
}

fn identity_of(cert: &X509Certificate<'_>) -> Result<PeerIdentity, IdentityError> {
    let prefix = format!("spiffe://{TRUST_DOMAIN}/");
    let uris: Vec<&str> = match cert.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|name| match name {
                GeneralName::URI(uri) => Some(*uri),
                _ => None,
            })
            .collect(),
        Ok(None) => Vec::new(),
        Err(e) => return Err(IdentityError::Unparsable(e.to_string())),
    };
    let mut ours = Vec::new();
    let mut foreign = None;
    for uri in uris {
        match classify(uri, &prefix) {
            SpiffeKind::Crank => ours.push(uri),
            SpiffeKind::NearMiss => return Err(IdentityError::ForeignSpiffe(uri.to_owned())),
            SpiffeKind::Foreign => {
                foreign.get_or_insert(uri);
            }
            SpiffeKind::NotSpiffe => {}
        }
    }
    match ours.as_slice() {
        [uri] => parse_spiffe_path(&uri[prefix.len()..])
            .ok_or_else(|| IdentityError::MalformedUri((*uri).to_owned())),
        [] => {
            if let Some(uri) = foreign {
                return Err(IdentityError::ForeignSpiffe(uri.to_owned()));
            }
            let cn = cert
                .subject()
                .iter_common_name()
                .next()
                .and_then(|cn| cn.as_str().ok())
                .filter(|cn| !cn.is_empty())
                .ok_or(IdentityError::Anonymous)?;
            Ok(PeerIdentity::new(Role::Worker, cn))
        }
        many => Err(IdentityError::Ambiguous(
            many.iter().map(|u| (*u).to_owned()).collect(),
        )),
    }
}

/// What a URI SAN is to crank.
enum SpiffeKind {
    /// Starts with `spiffe://crank.local/`, exactly.
    Crank,
    /// A SPIFFE ID whose trust domain, read leniently (case, a trailing dot, a
    /// port or user part), is crank's, but is not spelled exactly so.
    NearMiss,
    /// A SPIFFE ID of another trust domain.
    Foreign,
    /// Not a SPIFFE ID.
    NotSpiffe,
}

fn classify(uri: &str, prefix: &str) -> SpiffeKind {
    if uri.starts_with(prefix) {
        return SpiffeKind::Crank;
    }
    let Some((scheme, rest)) = uri.split_once(':') else {
        return SpiffeKind::NotSpiffe;
    };
    if !scheme.trim().eq_ignore_ascii_case("spiffe") {
        return SpiffeKind::NotSpiffe;
    }
    let authority = rest
        .trim_start_matches('/')
        .split(['/', '?', '#'])
        .next()
        .unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("");
    let host = host.split(':').next().unwrap_or("").trim_end_matches('.');
    if host.eq_ignore_ascii_case(TRUST_DOMAIN) {
        SpiffeKind::NearMiss
    } else {
        SpiffeKind::Foreign
    }
}

fn parse_spiffe_path(path: &str) -> Option<PeerIdentity> {
    let (role, name) = path.split_once('/')?;
    let role = Role::parse(role)?;
    // Every role's name follows the worker id rule, so a worker's name is its
    // id; a service's has no `.`, which separates its replicas' suffixes.
    let name = WorkerId::parse("name", name).ok()?.into_string();
    if role == Role::Service && !is_service_name(&name) {
        return None;
    }
    Some(PeerIdentity::new(role, name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, DnType, KeyPair, SanType};

    fn der(cn: Option<&str>, uris: &[&str]) -> Vec<u8> {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        if let Some(cn) = cn {
            params.distinguished_name.push(DnType::CommonName, cn);
        }
        params.subject_alt_names = uris
            .iter()
            .map(|u| SanType::URI((*u).try_into().unwrap()))
            .chain([SanType::DnsName("localhost".try_into().unwrap())])
            .collect();
        let key = KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn a_spiffe_uri_names_role_and_name() {
        let id = identity_from_der(&der(None, &["spiffe://crank.local/admin/ops"])).unwrap();
        assert_eq!(id, PeerIdentity::new(Role::Admin, "ops"));
        assert_eq!(id.spiffe_uri(), "spiffe://crank.local/admin/ops");
    }

    #[test]
    fn a_cn_only_certificate_is_a_worker_named_by_its_cn() {
        let id = identity_from_der(&der(Some("hello-world-1"), &[])).unwrap();
        assert_eq!(id, PeerIdentity::new(Role::Worker, "hello-world-1"));
    }

    #[test]
    fn the_uri_wins_over_the_cn() {
        let id = identity_from_der(&der(
            Some("hello-world-1"),
            &["spiffe://crank.local/client/cli"],
        ))
        .unwrap();
        assert_eq!(id, PeerIdentity::new(Role::Client, "cli"));
    }

    #[test]
    fn neither_uri_nor_cn_is_anonymous() {
        assert_eq!(
            identity_from_der(&der(None, &[])),
            Err(IdentityError::Anonymous)
        );
    }

    #[test]
    fn malformed_crank_uris_are_refused_not_downgraded_to_the_cn() {
        for uri in [
            "spiffe://crank.local/worker",
            "spiffe://crank.local/worker/",
            "spiffe://crank.local/root/x",
            "spiffe://crank.local/worker/a/b",
            "spiffe://crank.local/worker/has%20space",
            "spiffe://crank.local/service/hello.1",
        ] {
            assert_eq!(
                identity_from_der(&der(Some("w1"), &[uri])),
                Err(IdentityError::MalformedUri(uri.into())),
                "{uri}"
            );
        }
    }

    #[test]
    fn foreign_uris_are_ignored_and_two_crank_uris_are_ambiguous() {
        let id = identity_from_der(&der(
            None,
            &["spiffe://other.mesh/ns/x", "spiffe://crank.local/worker/w1"],
        ))
        .unwrap();
        assert_eq!(id, PeerIdentity::new(Role::Worker, "w1"));
        assert!(matches!(
            identity_from_der(&der(
                None,
                &[
                    "spiffe://crank.local/worker/w1",
                    "spiffe://crank.local/admin/a"
                ]
            )),
            Err(IdentityError::Ambiguous(_))
        ));
        assert_eq!(
            identity_from_der(&der(None, &["spiffe://other.mesh/x"])),
            Err(IdentityError::ForeignSpiffe("spiffe://other.mesh/x".into()))
        );
    }

    #[test]
    fn near_miss_trust_domains_have_no_identity_and_never_fall_back_to_the_cn() {
        for uri in [
            "SPIFFE://crank.local/worker/w1",
            "Spiffe://crank.local/admin/ops",
            "spiffe://CRANK.LOCAL/worker/w1",
            "spiffe://Crank.Local/worker/w1",
            "spiffe://crank.local./worker/w1",
            "spiffe://evil.local/worker/w1",
            "spiffe://crank.local:443/worker/w1",
            "spiffe://user@crank.local/worker/w1",
        ] {
            let found = identity_from_der(&der(Some("w1"), &[uri]));
            assert!(
                matches!(&found, Err(IdentityError::ForeignSpiffe(u)) if u == uri),
                "{uri}: {found:?}"
            );
        }
        // A near miss of crank's own domain is suspect even beside a valid URI.
        assert!(matches!(
            identity_from_der(&der(
                None,
                &[
                    "spiffe://crank.local/worker/w1",
                    "spiffe://CRANK.LOCAL/admin/a"
                ]
            )),
            Err(IdentityError::ForeignSpiffe(_))
        ));
    }

    #[test]
    fn a_foreign_spiffe_uri_beside_a_crank_one_does_not_hide_it() {
        let id = identity_from_der(&der(
            Some("w9"),
            &["spiffe://other.mesh/ns/x", "spiffe://crank.local/worker/w1"],
        ))
        .unwrap();
        assert_eq!(id, PeerIdentity::new(Role::Worker, "w1"));
    }

    #[test]
    fn non_spiffe_uris_still_leave_the_cn() {
        let id = identity_from_der(&der(Some("w1"), &["https://example.com/x"])).unwrap();
        assert_eq!(id, PeerIdentity::new(Role::Worker, "w1"));
    }

    #[test]
    fn a_certificate_outside_its_validity_has_no_current_identity() {
        use crate::certs::{CertificateAuthority, LeafSpec};
        use rustls_pki_types::pem::PemObject;
        let ca = CertificateAuthority::generate("test CA").unwrap();
        let spec = LeafSpec::for_role(Role::Admin, "ops");
        let minted = ca.issue(&spec).unwrap();
        let der =
            rustls_pki_types::CertificateDer::from_pem_slice(minted.cert_pem.as_bytes()).unwrap();
        let at = |offset: time::Duration| SystemTime::from(spec.not_before + offset);
        assert_eq!(
            current_identity_from_der(&der, at(time::Duration::minutes(1))),
            Ok(PeerIdentity::new(Role::Admin, "ops"))
        );
        assert!(matches!(
            current_identity_from_der(&der, at(-time::Duration::minutes(1))),
            Err(IdentityError::NotYetValid(_))
        ));
        assert!(matches!(
            current_identity_from_der(
                &der,
                SystemTime::from(spec.not_after + time::Duration::seconds(2))
            ),
            Err(IdentityError::Expired(_))
        ));
    }

    #[test]
    fn garbage_is_unparsable() {
        assert!(matches!(
            identity_from_der(b"not a certificate"),
            Err(IdentityError::Unparsable(_))
        ));
    }

    #[test]
    fn a_service_has_its_own_id_and_ids_after_a_dot_as_replicas() {
        for replica in ["hello", "hello.1", "hello.a1b2", "hello.3.eu", "hello..x"] {
            assert!(is_replica_of(replica, "hello"), "{replica}");
        }
        for other in [
            "hello-world",
            "hello-world.1",
            "hello_world",
            "hellothere",
            "hello.",
            "hell",
            "Hello",
            "HELLO.1",
            "x.hello",
            "",
        ] {
            assert!(!is_replica_of(other, "hello"), "{other}");
        }
        // `hello-world` is a service of its own, with replicas of its own.
        assert!(is_replica_of("hello-world.1", "hello-world"));
        assert!(!is_replica_of("hello.1", "hello-world"));
        // A name with a dot, or not a valid id, names no service and has no replicas.
        for bad in ["hello.1", "hello.", ".hello", "", "a b", "a/b"] {
            assert!(!is_service_name(bad), "{bad:?}");
            assert!(!is_replica_of(bad, bad), "{bad:?}");
        }
        assert!(!is_replica_of("hello.1.2", "hello.1"));
    }

    #[test]
    fn a_service_certificate_acts_for_its_replicas_and_nothing_else() {
        let hello = PeerIdentity::new(Role::Service, "hello");
        for replica in ["hello", "hello.1", "hello.a1b2"] {
            assert!(hello.may_act_for(replica).is_ok(), "{replica}");
            assert!(hello.is_worker(replica), "{replica}");
        }
        for other in ["hello-world", "hello-world.1", "hellothere", "hello.", "w1"] {
            assert_eq!(
                hello.may_act_for(other),
                Err(NotAllowed {
                    caller: "service/hello".into(),
                    worker_id: other.into()
                }),
                "{other}"
            );
        }
        // A per-id certificate keeps meaning exactly its id, dots and all.
        let worker = PeerIdentity::new(Role::Worker, "hello");
        assert!(worker.may_act_for("hello").is_ok());
        assert!(worker.may_act_for("hello.1").is_err());
        assert!(PeerIdentity::new(Role::Worker, "hello.1")
            .may_act_for("hello.1")
            .is_ok());
        // Clients and controllers of that name are no service.
        for role in [Role::Client, Role::Controller] {
            assert!(PeerIdentity::new(role, "hello")
                .may_act_for("hello.1")
                .is_err());
        }
    }

    #[test]
    fn a_service_spiffe_uri_names_a_service() {
        let id = identity_from_der(&der(None, &["spiffe://crank.local/service/hello"])).unwrap();
        assert_eq!(id, PeerIdentity::new(Role::Service, "hello"));
        assert_eq!(id.spiffe_uri(), "spiffe://crank.local/service/hello");
    }

    #[test]
    fn only_admins_and_the_worker_itself_may_act_for_a_worker() {
        assert!(PeerIdentity::new(Role::Worker, "w1")
            .may_act_for("w1")
            .is_ok());
        assert!(PeerIdentity::new(Role::Admin, "ops")
            .may_act_for("w1")
            .is_ok());
        assert!(PeerIdentity::new(Role::Worker, "w2")
            .may_act_for("w1")
            .is_err());
        assert!(PeerIdentity::new(Role::Client, "w1")
            .may_act_for("w1")
            .is_err());
        assert!(PeerIdentity::new(Role::Controller, "w1")
            .may_act_for("w1")
            .is_err());
    }
}
