//! Process wiring for `crank controller`: load TLS material, load the store,
//! start the registry and its checker, serve until SIGTERM/SIGINT.

use std::sync::Arc;
use std::time::Duration;

use actix_web::web;
use crank_net::process::{bind_error, raise_open_file_limit, ShutdownSignals, StartError};
use crank_net::server::{mtls_server, ServerLimits};
use crank_net::tls::{client_config_for, server_config, ExpectedPeer, TlsFiles};

use crate::checker::CheckerSettings;
use crate::cluster::{StoreHealth, StoreState};
use crate::config::{ControllerConfig, StoreKind};
use crate::controller::controller_app;
use crate::file_store::FileStore;
use crate::protection::policy::Mode;
use crate::protection::Protection;
use crate::readiness::Lifecycle;
use crate::registry_host::RegistryHost;

/// Why a controller could not start, or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error(transparent)]
    Start(#[from] StartError),
    #[error("cluster store: {0}")]
    Cluster(#[from] crate::cluster::ClusterError),
    #[error("file store: {0}")]
    File(#[from] crate::file_store::StoreError),
    #[error("{0}")]
    Protection(String),
    #[error("tracing: {0}")]
    Tracing(#[from] crank_trace::export::ExportError),
}

impl From<crank_net::tls::TlsError> for ControllerError {
    fn from(error: crank_net::tls::TlsError) -> Self {
        ControllerError::Start(StartError::Tls(error))
    }
}

/// Active checks in flight at most.
const CHECKS_IN_FLIGHT: usize = 64;
/// How long an active check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs the controller until SIGTERM/SIGINT.
pub async fn run_controller(config: ControllerConfig) -> Result<(), ControllerError> {
    crank_supervision::install_panic_policy("controller".into());
    let mut signals = ShutdownSignals::install().map_err(StartError::Serve)?;
    let lifecycle = Lifecycle::default();
    let files = TlsFiles::in_dir(&config.cert_dir, &config.cert);
    let tls = server_config(&files)?;
    // A policy or SLO file that does not parse stops the start, naming it.
    let protection =
        Arc::new(Protection::load(config.protection.clone()).map_err(ControllerError::Protection)?);
    describe(&protection);
    // Held to the end: dropping it sends the spans still batched.
    let _exporter = crank_trace::export::install_or_warn(
        "crank-controller",
        None,
        config.otlp_endpoint.as_ref(),
    )?;
    let address = format!("{}:{}", config.bind, config.port);
    // Held for the life of the process: its lock keeps the directory ours.
    let mut file_store = None;
    let (health, cluster) = match config.store {
        StoreKind::Memory => (StoreHealth::new(StoreState::Memory), None),
        StoreKind::File => {
            let (store, loaded) = FileStore::open(&config.data_dir, config.fsync)?;
            let health = StoreHealth::new(StoreState::File);
            health.attach_file(store.stats.clone());
            log::info!(
                "loaded {} workers from {} (--store file, --fsync {:?}); they are judged as after a pause: stale unless they heartbeat within {:?}",
                loaded.workers.len(),
                config.data_dir.display(),
                config.fsync,
                config.stale_after
            );
            file_store = Some((store, loaded.workers));
            (health, None)
        }
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
    let (registry, _store) = match file_store {
        Some((store, loaded)) => (registry.with_file(store.sink(), loaded), Some(store)),
        None => (registry, None),
    };
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
    let guard = web::Data::from(protection.clone());
    actix_rt::spawn(crank_supervision::supervised(
        "protection",
        crate::protection::reload::run(protection),
    ));
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
                .app_data(guard.clone())
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

/// One line on what protects the controller, when anything does.
fn describe(protection: &Protection) {
    let settings = protection.settings();
    if let Some(file) = &settings.policy_file {
        let mode = protection.mode();
        let note = match mode {
            Mode::Off => "decides nothing",
            Mode::Shadow => "decides and logs denials, refuses none",
            Mode::Enforce => "refuses what no rule allows",
        };
        log::info!(
            "access policy {} in {} mode: {note}",
            file.display(),
            mode.as_str()
        );
    }
    if let Some(dir) = &settings.slo_dir {
        log::info!(
            "SLOs of {} capabilities from {}, measured over {:?}",
            protection.slo_count(),
            dir.display(),
            settings.slo_window
        );
    }
}
