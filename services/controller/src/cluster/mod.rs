//! The cluster store: several controllers share one registry through etcd.
//! The design (keys, leases, who owns what, what happens on each failure) is
//! in docs/cluster.md; in short:
//!
//! - every controller holds every record in its own registry and answers
//!   reads and routes from it, fed by an etcd watch (`watcher`);
//! - a record is judged by one controller, its owner, the one its worker
//!   heartbeats to; heartbeats never touch etcd, and only changes of state,
//!   of owner, registrations and removals are written (`writer`), batched;
//! - each controller holds one etcd lease as its session and announces itself
//!   under it (`session`); when it is gone, the first of the survivors adopts
//!   its workers.
//!
//! | file | job |
//! |---|---|
//! | `keys` | the key layout under the prefix |
//! | `connect` | the etcd client over mTLS |
//! | `session` | the lease, its keep-alive, the announcement |
//! | `writer` | `StoreSink`: the registry's changes, written in batches, kept while etcd is away |
//! | `watcher` | the initial load and the watch that feeds the registry |
//! | [`health`] | [`StoreHealth`]: what `/health` says of the store |
//!
//! (The etcd modules are built, and linked here, only with the `etcd` feature.)

//!
//! Everything that talks to etcd is built with the `etcd` feature (the
//! etcd-client crate needs `protoc` to build); without it the controller
//! runs the embedded in-memory store only.

#[cfg(feature = "etcd")]
pub mod connect;
pub mod health;
#[cfg(feature = "etcd")]
pub mod keys;
#[cfg(feature = "etcd")]
pub mod session;
#[cfg(feature = "etcd")]
pub mod watcher;
#[cfg(feature = "etcd")]
pub mod writer;

use std::path::PathBuf;
use std::time::Duration;

pub use self::health::{StoreHealth, StoreState};
/// The etcd client crate, for callers that measure the store (the bench).
#[cfg(feature = "etcd")]
pub use etcd_client;

/// How a controller reaches the cluster store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSettings {
    /// etcd client URLs (`https://host:2379`).
    pub endpoints: Vec<String>,
    /// The CA that signs etcd's certificate.
    pub ca: PathBuf,
    /// The certificate and key this controller presents to etcd.
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Every key lives under this prefix.
    pub prefix: String,
    /// This controller's id in the cluster.
    pub controller_id: String,
    /// Where this controller is reached, for the announcement.
    pub controller_url: String,
    /// The session lease's time to live: how long after a controller's death
    /// the others notice.
    pub session_ttl: Duration,
}

/// Attempts, a second apart, to reach etcd at start before giving up.
#[cfg(feature = "etcd")]
const START_ATTEMPTS: u32 = 30;

/// How long a controller's session outlives its last renewal: how soon the
/// others notice that it is gone and adopt its workers.
pub const SESSION_TTL: Duration = Duration::from_secs(5);

impl ClusterSettings {
    /// The store settings of `config`, with TLS files defaulting to the
    /// controller's own (`files`), and a fresh id for this process.
    pub fn of(config: &crate::config::ControllerConfig, files: &crank_net::tls::TlsFiles) -> Self {
        let suffix = crank_proto::domain::InstanceId::random().into_string();
        ClusterSettings {
            endpoints: config.etcd_endpoints.clone(),
            ca: config.etcd_ca.clone().unwrap_or_else(|| files.ca.clone()),
            cert: config
                .etcd_cert
                .clone()
                .unwrap_or_else(|| files.cert.clone()),
            key: config.etcd_key.clone().unwrap_or_else(|| files.key.clone()),
            prefix: config.etcd_prefix.clone(),
            controller_id: format!("controller-{}-{}", config.port, &suffix[..6]),
            controller_url: format!("https://localhost:{}", config.port),
            session_ttl: SESSION_TTL,
        }
    }
}

/// What the etcd store hands the registry when it starts: a connected
/// client, the store's contents, and the session to keep alive.
#[cfg(feature = "etcd")]
pub struct ClusterStart {
    pub client: etcd_client::Client,
    pub settings: ClusterSettings,
    pub loaded: watcher::Loaded,
    pub lease: i64,
}

/// Without the `etcd` feature there is never a cluster to start.
#[cfg(not(feature = "etcd"))]
pub enum ClusterStart {}

/// Without the `etcd` feature: the one line that says how to get it.
#[cfg(not(feature = "etcd"))]
pub async fn start(
    _: &crate::config::ControllerConfig,
    _: &crank_net::tls::TlsFiles,
) -> Result<ClusterStart, ClusterError> {
    Err(ClusterError::NotBuilt)
}

/// Connects to etcd, opens this controller's session and loads the store:
/// everything the registry needs before the controller serves, so that a
/// controller that starts serves the whole fleet at once.
#[cfg(feature = "etcd")]
pub async fn start(
    config: &crate::config::ControllerConfig,
    files: &crank_net::tls::TlsFiles,
) -> Result<ClusterStart, ClusterError> {
    let settings = ClusterSettings::of(config, files);
    let keys = keys::Keys::new(&settings.prefix);
    // etcd may be starting alongside this controller: wait for it a while,
    // then give up with the reason.
    let mut attempt = 0u32;
    let (client, lease, loaded) = loop {
        let joined = async {
            let mut client = connect::connect(&settings).await?;
            let lease = session::open(&mut client, &settings, &keys).await?;
            let loaded = watcher::load(&mut client, &keys)
                .await
                .map_err(|e| connect::etcd_error(&settings, e))?;
            Ok::<_, ClusterError>((client, lease, loaded))
        };
        match joined.await {
            Ok(joined) => break joined,
            Err(problem @ ClusterError::File { .. }) => return Err(problem),
            Err(problem) if attempt >= START_ATTEMPTS => return Err(problem),
            Err(problem) => {
                attempt += 1;
                if attempt == 1 {
                    log::warn!(
                        "cannot reach etcd yet ({problem}); retrying for {} s before giving up",
                        START_ATTEMPTS
                    );
                }
                actix_rt::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    log::info!(
        "controller {} joined the cluster at {} ({} workers, {} controllers, revision {})",
        settings.controller_id,
        settings.endpoints.join(","),
        loaded.workers.len(),
        loaded.controllers.len(),
        loaded.revision
    );
    Ok(ClusterStart {
        client,
        settings,
        loaded,
        lease,
    })
}

/// Why the cluster store could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cannot read {}: {source}", path.display())]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[cfg(feature = "etcd")]
    #[error("etcd at {endpoints}: {source}")]
    Etcd {
        endpoints: String,
        source: etcd_client::Error,
    },
    #[error("this crank was built without the etcd store; build it with `--features etcd` (it needs protoc: apt-get install -y protobuf-compiler)")]
    NotBuilt,
}
