//! Process wiring for `crank controller` (load TLS material, start the
//! registry, serve), and what every process shares: [`StartError`] and
//! [`ShutdownSignals`]. A worker's wiring is the worker library's
//! ([`crate::worker`]).

use std::sync::Arc;
use std::time::Duration;

use actix_web::web;

use crate::checker::CheckerSettings;
use crate::cluster::{StoreHealth, StoreState};
use crate::config::{ControllerConfig, StoreKind};
use crate::controller::controller_app;
use crate::readiness::Lifecycle;
use crate::registry_host::RegistryHost;
use crate::server::{mtls_server, ServerLimits};
use crate::tls::{client_config_for, server_config, ExpectedPeer, TlsError, TlsFiles};

/// Why a process could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: String,
        source: std::io::Error,
    },
    #[error("cluster store: {0}")]
    Cluster(#[from] crate::cluster::ClusterError),
    #[error("server failed: {0}")]
    Serve(std::io::Error),
}

/// Maps a failure to listen on `address` to the error naming it.
pub(crate) fn bind_error(address: &str) -> impl Fn(std::io::Error) -> StartError + Copy + '_ {
    move |source| StartError::Bind {
        address: address.to_owned(),
        source,
    }
}

/// Active checks in flight at most.
const CHECKS_IN_FLIGHT: usize = 64;
/// How long an active check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs the controller until SIGTERM/SIGINT.
pub async fn run_controller(config: ControllerConfig) -> Result<(), StartError> {
    crank_supervision::install_panic_policy("controller".into());
    let mut signals = ShutdownSignals::install().map_err(StartError::Serve)?;
    let lifecycle = Lifecycle::default();
    let files = TlsFiles::in_dir(&config.cert_dir, &config.cert);
    let tls = server_config(&files)?;
    let address = format!("{}:{}", config.bind, config.port);
    let (health, cluster) = match config.store {
        StoreKind::Memory => (StoreHealth::new(StoreState::Memory), None),
        StoreKind::Etcd => {
            let start = crate::cluster::start(&config, &files).await?;
            (StoreHealth::new(StoreState::Ok), Some(start))
        }
    };
    let interval = config.registry_settings().advised_heartbeat_interval();
    let checker = CheckerSettings {
        mode: config.active_checks,
        interval,
        concurrency: CHECKS_IN_FLIGHT,
        tls: Arc::new(client_config_for(&files, ExpectedPeer::AnyWorker)?),
        timeout: interval.min(CHECK_TIMEOUT),
    };
    let registry = RegistryHost::new(
        config.registry_settings(),
        config.sweep_interval,
        config.watch_limits(),
        health,
        cluster,
    )
    .with_checker(checker);
    raise_open_file_limit();
    let limits = ServerLimits {
        client_timeout: config.client_timeout,
        workers: config.http_workers,
        max_connections_per_identity: config.max_connections_per_identity,
        ..ServerLimits::default()
    };
    let bind_error = bind_error(&address);
    let listener = std::net::TcpListener::bind(&address).map_err(bind_error)?;
    let app_lifecycle = lifecycle.clone();
    let service_ids = web::Data::new(config.service_ids.clone());
    if !config.service_ids.is_empty() {
        log::info!(
            "service certificates may also act for these worker ids: {}",
            config.service_ids
        );
    }
    let server = mtls_server(
        "crank-controller",
        listener,
        tls,
        limits,
        false,
        move || {
            controller_app(registry.state())
                .app_data(web::Data::new(registry.health()))
                .app_data(web::Data::new(app_lifecycle.clone()))
                .app_data(service_ids.clone())
        },
    )
    .map_err(bind_error)?;
    // Readiness fails from the signal on, while actix drains the connections.
    let handle = server.handle();
    actix_rt::spawn(async move {
        let signal = signals.recv().await;
        log::info!("controller received {signal}: not ready from now on; draining connections, then stopping");
        lifecycle.begin_shutdown();
        handle.stop(true).await;
    });
    log::info!(
        "controller listening on https://{address} (mTLS, CA {}); workers stale after {:?} without a heartbeat, evicted after {}",
        files.ca.display(),
        config.stale_after,
        if config.evict_after.is_zero() {
            "never".to_owned()
        } else {
            format!("{:?} more", config.evict_after)
        }
    );
    server.await.map_err(StartError::Serve)?;
    log::info!("controller stopped");
    Ok(())
}

/// Lifts the soft limit on open files to the hard limit: every worker holds a
/// keep-alive connection to its controller, and the default soft limit of 1024
/// would cap a controller at about a thousand workers.
fn raise_open_file_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            if let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
                log::warn!("could not raise the open-file limit from {soft} to {hard}: {e}; the controller can hold about {soft} connections");
            }
        }
    }
}

/// SIGTERM and SIGINT listeners. Install them before anything that must be
/// shut down in order starts: until then the default disposition would kill the
/// process on the spot.
pub struct ShutdownSignals {
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    pub fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(ShutdownSignals {
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }

    /// Resolves on the next SIGTERM or SIGINT, naming which.
    pub async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.terminate.recv() => "SIGTERM",
            _ = self.interrupt.recv() => "SIGINT",
        }
    }
}
