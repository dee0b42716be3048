//! Process wiring for `crank controller` (load TLS material, start the
//! registry, serve), and what every process shares: [`StartError`] and
//! [`ShutdownSignals`]. A worker's wiring is the worker library's
//! ([`crate::worker`]).

use std::sync::{Arc, Mutex};

use actix::Addr;
use crank_actors::registry::{RegistryActor, RegistrySettings};

use crate::config::ControllerConfig;
use crate::controller::controller_app;
use crate::server::{mtls_server, ServerLimits};
use crate::tls::{server_config, TlsError, TlsFiles};

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

/// Runs the controller until SIGTERM/SIGINT.
pub async fn run_controller(config: ControllerConfig) -> Result<(), StartError> {
    let files = TlsFiles::in_dir(&config.cert_dir, &config.cert);
    let tls = server_config(&files)?;
    let registry = RegistryHost::new(config.registry_settings(), config.sweep_interval);
    raise_open_file_limit();
    let address = format!("{}:{}", config.bind, config.port);
    let limits = ServerLimits {
        client_timeout: config.client_timeout,
        workers: config.http_workers,
        max_connections_per_identity: config.max_connections_per_identity,
        ..ServerLimits::default()
    };
    let bind_error = bind_error(&address);
    let listener = std::net::TcpListener::bind(&address).map_err(bind_error)?;
    let server = mtls_server("crank-controller", listener, tls, limits, true, move || {
        controller_app(registry.address())
    })
    .map_err(bind_error)?;
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

/// Where the registry lives: on the first HTTP worker thread that asks for it.
///
/// Every request is one message to the registry and one answer back. Across
/// threads each costs a wake-up of the other thread (an eventfd write and a
/// context switch), which profiling showed to be most of what the registry
/// added on top of the transport; on the thread that also serves HTTP, sending a
/// message is a queue push. Other HTTP threads still reach it through its
/// (thread-safe) address.
#[derive(Clone)]
struct RegistryHost {
    settings: RegistrySettings,
    sweep_interval: std::time::Duration,
    address: Arc<Mutex<Option<Addr<RegistryActor>>>>,
}

impl RegistryHost {
    fn new(settings: RegistrySettings, sweep_interval: std::time::Duration) -> Self {
        RegistryHost {
            settings,
            sweep_interval,
            address: Arc::new(Mutex::new(None)),
        }
    }

    /// The registry's address, starting it on this thread if it is not running.
    /// Each HTTP thread asks once, when actix-server builds its app; should a
    /// worker thread be rebuilt after the registry's thread died, it starts a
    /// new, empty registry, and workers register again on their next heartbeat.
    fn address(&self) -> Addr<RegistryActor> {
        let mut slot = self.address.lock().unwrap_or_else(|e| e.into_inner());
        match slot.as_ref() {
            Some(address) if address.connected() => address.clone(),
            _ => {
                let address = RegistryActor::start_with_sweeper(self.settings, self.sweep_interval);
                *slot = Some(address.clone());
                address
            }
        }
    }
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
