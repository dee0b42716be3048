//! What making certificates can fail with ([`CertError`]), and writing a
//! file of key material with the right permissions: shared by
//! [`certs`](crate::certs) and [`bundle`](crate::bundle), which depend on it
//! and not on each other's internals.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::identity::Role;

/// Why certificates could not be made or written.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} already exists; pass --force to replace it", path.display())]
    Exists { path: PathBuf },
    #[error("{what}: {source}")]
    Rcgen { what: String, source: rcgen::Error },
    #[error("{0:?} is not a valid certificate name: use 1-128 of [A-Za-z0-9._-], and not \"ca\"")]
    BadName(String),
    #[error("{0:?} is not a valid service name: use 1-128 of [A-Za-z0-9_-], without '.' (a '.' separates a service from its replicas' suffixes: service hello runs as hello, hello.1, hello.2…)")]
    BadServiceName(String),
    #[error("the PKCS#12 bundle: {0}")]
    Bundle(String),
    #[error("{0:?} is not a DNS name: use labels of [A-Za-z0-9-] separated by '.', at most 253 characters")]
    BadDnsName(String),
    #[error("--dns names a host a certificate serves on; a {0} certificate serves nothing")]
    DnsForClient(Role),
}

/// Writes `contents` to `path`, readable by the owner only when `private`.
pub(crate) fn write_bytes(path: &Path, contents: &[u8], private: bool) -> Result<(), CertError> {
    let io = |source| CertError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(if private { 0o600 } else { 0o644 })
        .open(path)
        .map_err(io)?;
    if private {
        use std::os::unix::fs::PermissionsExt;
        // `mode` applies only when the file is created; tighten an existing one.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(io)?;
    }
    file.write_all(contents).map_err(io)
}
