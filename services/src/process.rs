//! Process wiring for `crank controller` and `crank worker`: load TLS material,
//! start the actors, serve, and shut down in the right order.

use std::rc::Rc;
use std::sync::{Arc, Mutex};

use crank_actors::registry::RegistrySettings;

use crank_actors::backoff::Backoff;
use crank_actors::registration::{
    RegistrationActor, RegistrationState, RegistrationStatus, Shutdown, WorkerTiming,
};
use crank_actors::wire::RegisterRequest;

use crate::config::{ControllerConfig, WorkerConfig};
use crate::controller::controller_app;
use crate::controller_state::{ControllerState, WatchLimits};
use crate::hello::{hello_app, HelloState};
use crate::link::HttpControllerLink;
use crate::metrics::worker::MeteredLink;
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
    #[error("server failed: {0}")]
    Serve(std::io::Error),
}

/// Maps a failure to listen on `address` to the error naming it.
fn bind_error(address: &str) -> impl Fn(std::io::Error) -> StartError + Copy + '_ {
    move |source| StartError::Bind {
        address: address.to_owned(),
        source,
    }
}

/// Runs the controller until SIGTERM/SIGINT.
pub async fn run_controller(config: ControllerConfig) -> Result<(), StartError> {
    let files = TlsFiles::in_dir(&config.cert_dir, &config.cert);
    let tls = server_config(&files)?;
    let registry = RegistryHost::new(
        config.registry_settings(),
        config.sweep_interval,
        config.watch_limits(),
    );
    raise_open_file_limit();
    let address = format!("{}:{}", config.bind, config.port);
    let limits = ServerLimits {
        client_timeout: config.client_timeout,
        workers: config.http_workers,
        max_connections_per_identity: config.max_connections_per_identity,
    };
    let bind_error = bind_error(&address);
    let listener = std::net::TcpListener::bind(&address).map_err(bind_error)?;
    let server = mtls_server("crank-controller", listener, tls, limits, true, move || {
        controller_app(registry.state())
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

/// Runs the hello-world worker until SIGTERM/SIGINT, then deregisters and stops.
pub async fn run_worker(config: WorkerConfig) -> Result<(), StartError> {
    let mut signals = ShutdownSignals::install().map_err(StartError::Serve)?;
    // Valid by construction: `WorkerConfig` checks both when it is resolved.
    let worker_id = config.worker_id.clone();
    let worker_url = config.announced_url();
    let files = TlsFiles::in_dir(&config.cert_dir, config.cert_name());
    let server_tls = server_config(&files)?;
    let client_tls = Arc::new(client_config_for(
        &files,
        ExpectedPeer::Controller {
            name: config.controller_name.clone(),
        },
    )?);

    let status = RegistrationStatus::new(match config.controller_url {
        Some(_) => RegistrationState::Registering,
        None => RegistrationState::Standalone,
    });
    let state = HelloState::new(worker_id.clone(), status.clone());
    let address = format!("{}:{}", config.bind, config.port);
    let app_state = state.clone();
    let bind_error = bind_error(&address);
    let listener = std::net::TcpListener::bind(&address).map_err(bind_error)?;
    let server = mtls_server(
        "crank-worker",
        listener,
        server_tls,
        ServerLimits {
            workers: config.http_workers,
            ..ServerLimits::default()
        },
        false,
        move || hello_app(app_state.clone()),
    )
    .map_err(bind_error)?;
    let server_handle = server.handle();
    let serving = actix_rt::spawn(server);
    log::info!("worker {worker_id} serving invoke:hello.greet on https://{address} (announced as {worker_url})");

    let registration = match &config.controller_url {
        Some(controller_url) => {
            let link = || {
                Rc::new(MeteredLink::new(
                    HttpControllerLink::new(
                        controller_url,
                        client_tls.clone(),
                        config.controller_timeout,
                    ),
                    state.metrics.clone(),
                ))
            };
            let timing = WorkerTiming {
                heartbeat_interval: config.heartbeat_interval,
                backoff: Backoff::new(
                    config.registration_backoff_initial,
                    config.registration_backoff_max,
                ),
                deregister_timeout: config.deregister_timeout,
            };
            let instance = crank_actors::domain::InstanceId::random();
            log::info!("worker {worker_id} runs as instance {instance}");
            let request = RegisterRequest {
                instance: Some(instance.into_string()),
                worker_id: worker_id.clone(),
                worker_url,
                capabilities: crate::hello::capabilities(),
            };
            let load_state = state.clone();
            Some(RegistrationActor::launch(
                link(),
                link(),
                request,
                timing,
                status,
                Some(Box::new(move || load_state.load())),
            ))
        }
        None => {
            log::info!("no controller URL (CONTROLLER_URL / --controller-url): worker {worker_id} runs standalone and registers nowhere");
            None
        }
    };

    tokio::select! {
        signal = signals.recv() => log::info!("worker {worker_id} received {signal}; shutting down"),
        ended = serving => {
            // The server is gone: stop being routed to before exiting.
            if let Some(registration) = &registration {
                let _ = registration.send(Shutdown).await;
            }
            return match ended {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(StartError::Serve(e)),
                Err(e) => Err(StartError::Serve(std::io::Error::other(e.to_string()))),
            };
        }
    }
    if let Some(registration) = registration {
        // Deregister first, so the controller stops routing here before we stop
        // answering. The actor bounds this by the deregister timeout.
        let _ = registration.send(Shutdown).await;
    }
    server_handle.stop(true).await;
    log::info!("worker {worker_id} stopped");
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
    watch: WatchLimits,
    state: Arc<Mutex<Option<ControllerState>>>,
}

impl RegistryHost {
    fn new(
        settings: RegistrySettings,
        sweep_interval: std::time::Duration,
        watch: WatchLimits,
    ) -> Self {
        RegistryHost {
            settings,
            sweep_interval,
            watch,
            state: Arc::new(Mutex::new(None)),
        }
    }

    /// The registry (with its watch hub and metrics), starting it on this
    /// thread if it is not running. Each HTTP thread asks once, when
    /// actix-server builds its app; should a worker thread be rebuilt after the
    /// registry's thread died, it starts a new, empty registry, and workers
    /// register again on their next heartbeat.
    fn state(&self) -> ControllerState {
        let mut slot = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match slot.as_ref() {
            Some(state) if state.address().connected() => state.clone(),
            _ => {
                let state =
                    ControllerState::start(self.settings, Some(self.sweep_interval), self.watch);
                *slot = Some(state.clone());
                state
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
