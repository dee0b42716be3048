//! The etcd client, over mutual TLS with the controller's certificate by
//! default (see [`ClusterSettings`]).

use std::time::Duration;

use etcd_client::{Certificate, Client, ConnectOptions, Identity, TlsOptions};

use super::{ClusterError, ClusterSettings};

/// Time allowed to connect, and for each request.
const TIMEOUT: Duration = Duration::from_secs(3);

/// Connects to the store's endpoints.
pub async fn connect(settings: &ClusterSettings) -> Result<Client, ClusterError> {
    let read = |path: &std::path::Path| {
        std::fs::read(path).map_err(|source| ClusterError::File {
            path: path.to_owned(),
            source,
        })
    };
    let tls = TlsOptions::new()
        .ca_certificate(Certificate::from_pem(read(&settings.ca)?))
        .identity(Identity::from_pem(
            read(&settings.cert)?,
            read(&settings.key)?,
        ));
    let options = ConnectOptions::new()
        .with_tls(tls)
        .with_connect_timeout(TIMEOUT)
        .with_timeout(TIMEOUT)
        .with_keep_alive(Duration::from_secs(5), TIMEOUT);
    Client::connect(&settings.endpoints, Some(options))
        .await
        .map_err(|source| etcd_error(settings, source))
}

/// An etcd failure, naming the endpoints.
pub fn etcd_error(settings: &ClusterSettings, source: etcd_client::Error) -> ClusterError {
    ClusterError::Etcd {
        endpoints: settings.endpoints.join(","),
        source,
    }
}
