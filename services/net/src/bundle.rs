//! A certificate and its key as one PKCS#12 bundle (`<name>.p12`), the form a
//! browser imports: `crank certs init` writes `client.p12`, so a person can
//! open the dashboard (`GET /ui`) with the client identity. Pure Rust
//! (`p12-keystore`): AES-256 encryption with PBKDF2, an HMAC-SHA256 MAC.

use std::path::{Path, PathBuf};

use p12_keystore::{Certificate, KeyStore, KeyStoreEntry, PrivateKey, PrivateKeyChain};

use crate::cert_files::{write_bytes, CertError};
use crate::tls::{load_certs, load_key, TlsFiles};

/// The password of every bundle crank writes. Not a secret (the key sits
/// beside it unencrypted): browsers and keychains insist on some password,
/// and some refuse an empty one.
pub const PKCS12_PASSWORD: &str = "crank";

/// Writes `<dir>/<name>.p12` (0600): the certificate `<name>.crt` with its key
/// and the CA that signed it, under the alias `crank-<name>`, locked with
/// [`PKCS12_PASSWORD`].
pub fn write_pkcs12(dir: &Path, name: &str) -> Result<PathBuf, CertError> {
    let files = TlsFiles::in_dir(dir, name);
    let problem = |what: &str, detail: String| CertError::Bundle(format!("{what}: {detail}"));
    let mut chain = Vec::new();
    for path in [&files.cert, &files.ca] {
        for der in load_certs(path).map_err(|e| problem("reading", e.to_string()))? {
            chain.push(
                Certificate::from_der(&der)
                    .map_err(|e| problem(&path.display().to_string(), e.to_string()))?,
            );
        }
    }
    let key = load_key(&files.key).map_err(|e| problem("reading", e.to_string()))?;
    let key = PrivateKey::from_der(key.secret_der())
        .map_err(|e| problem(&files.key.display().to_string(), e.to_string()))?;
    let alias = format!("crank-{name}");
    let mut store = KeyStore::new();
    store.add_entry(
        &alias,
        KeyStoreEntry::PrivateKeyChain(PrivateKeyChain::new(alias.as_bytes(), key, chain)),
    );
    let bundle = store
        .writer(PKCS12_PASSWORD)
        .write()
        .map_err(|e| problem("writing PKCS#12", e.to_string()))?;
    let path = dir.join(format!("{name}.p12"));
    write_bytes(&path, &bundle, true)?;
    Ok(path)
}

/// One line telling a person how to use `bundle` in a browser.
pub fn import_hint(dir: &Path, bundle: &Path) -> String {
    format!(
        "to open the dashboard (https://localhost:9000/ui) in a browser, import {} (password: {PKCS12_PASSWORD}) as your certificate and trust {} as an authority; Chromium on Linux: pk12util -d sql:$HOME/.pki/nssdb -i {} -W {PKCS12_PASSWORD} && certutil -d sql:$HOME/.pki/nssdb -A -t C,, -n crank-ca -i {}",
        bundle.display(),
        dir.join("ca.crt").display(),
        bundle.display(),
        dir.join("ca.crt").display(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use p12_keystore::Pkcs12ImportPolicy;

    #[test]
    fn the_client_bundle_holds_its_key_and_chain_under_the_documented_password() {
        let dir = tempfile::tempdir().unwrap();
        crate::certs::init(dir.path(), false).unwrap();
        let bytes = std::fs::read(dir.path().join("client.p12")).unwrap();
        let store =
            KeyStore::from_pkcs12(&bytes, PKCS12_PASSWORD, Pkcs12ImportPolicy::Strict).unwrap();
        let (alias, chain) = store.private_key_chain().unwrap();
        assert_eq!(alias, "crank-client");
        assert_eq!(chain.certs().len(), 2);
        assert_eq!(chain.certs()[1].subject(), "CN=crank dev CA");
        assert!(KeyStore::from_pkcs12(&bytes, "wrong", Pkcs12ImportPolicy::Strict).is_err());
    }
}
