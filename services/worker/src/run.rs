//! Running a [`Worker`]: serve its app over mutual TLS from the cert
//! directory, register it and keep it alive with the [`RegistrationActor`] and
//! its `HeartbeatActor` (reporting the measured load), and on shutdown
//! deregister before the server stops.

use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;

use crank_agent::backoff::Backoff;
use crank_agent::registration::{
    RegistrationActor, RegistrationState, RegistrationStatus, Shutdown, WorkerTiming,
};
use crank_proto::domain::InstanceId;
use crank_proto::wire::RegisterRequest;

use crate::config::WorkerConfig;
use crate::failover::{Cursor, FailoverLink};
use crate::metrics::MeteredLink;
use crate::Worker;
use crank_net::process::{bind_error, ShutdownSignals, StartError};
use crank_net::server::{mtls_server, ServerLimits};
use crank_net::tls::{client_config_for, server_config, ExpectedPeer, TlsFiles};

impl Worker {
    /// Serves this worker with `config` until SIGTERM or SIGINT, then
    /// deregisters it and stops. Needs an actix system (`actix_rt::System`);
    /// [`Worker::main`] makes one. Installs crank's
    /// [supervision policy](crank_supervision): should its
    /// registration or heartbeat actor fail, the process exits with status 70
    /// rather than serve on unregistered.
    pub async fn run(self, config: WorkerConfig) -> Result<(), StartError> {
        crank_supervision::install_panic_policy(format!("worker {}", config.worker_id));
        // Before anything starts: until then the default disposition would kill
        // the process without deregistering.
        let mut signals = ShutdownSignals::install().map_err(StartError::Serve)?;
        self.run_until(config, async move { signals.recv().await.to_owned() })
            .await
    }

    /// Serves this worker with `config` until `stop` resolves (to the reason,
    /// for the log), then deregisters it and stops: [`Worker::run`] with
    /// another way to stop, for programs that embed a worker and for tests.
    pub async fn run_until(
        self,
        config: WorkerConfig,
        stop: impl Future<Output = String>,
    ) -> Result<(), StartError> {
        let this = match config.capacity {
            Some(capacity) => self.capacity(capacity),
            None => self,
        }
        .service_time(config.service_time);
        if !config.service_time.is_zero() {
            log::info!(
                "worker {} holds every answer {:?} (--service-time)",
                config.worker_id,
                config.service_time
            );
        }
        this.serve_with(config, stop).await
    }

    async fn serve_with(
        self,
        config: WorkerConfig,
        stop: impl Future<Output = String>,
    ) -> Result<(), StartError> {
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
        let context = self.context(&worker_id, status.clone());
        // Held to the end: dropping it sends the spans still batched.
        let _exporter = crank_trace::export::install_or_warn(
            self.name(),
            Some(&worker_id),
            config.otlp_endpoint.as_ref(),
        )
        .map_err(|e| StartError::Tracing(e.to_string()))?;
        let address = format!("{}:{}", config.bind, config.port);
        let bind_error = bind_error(&address);
        let listener = std::net::TcpListener::bind(&address).map_err(bind_error)?;
        let app_context = context.clone();
        let definition = self.clone();
        let server = mtls_server(
            self.name(),
            listener,
            server_tls,
            ServerLimits {
                workers: config.http_workers,
                // Idle most of the time: no timer without a connection.
                http_on_demand: true,
                ..ServerLimits::default()
            },
            false,
            move || definition.app(app_context.clone()),
        )
        .map_err(bind_error)?;
        let server_handle = server.handle();
        let serving = actix_rt::spawn(server);
        let keys: Vec<String> = self.capabilities().iter().map(|c| c.key()).collect();
        log::info!(
            "worker {worker_id} serving {} on https://{address} (announced as {worker_url})",
            if keys.is_empty() {
                "no capability".to_owned()
            } else {
                keys.join(", ")
            }
        );

        // The instance a drain names, so a replaced process cannot drain
        // the record of the one that replaced it.
        let mut drain_as: Option<String> = None;
        let registration = match &config.controller_url {
            Some(controller_url) => {
                // A comma-separated list names the controllers of one cluster:
                // both links follow one cursor, so they fail over together.
                let urls: Vec<String> = controller_url
                    .split(',')
                    .map(|url| url.trim().trim_end_matches('/').to_owned())
                    .filter(|url| !url.is_empty())
                    .collect();
                let cursor = Cursor::default();
                let link = || {
                    Rc::new(MeteredLink::new(
                        FailoverLink::new(
                            &urls,
                            client_tls.clone(),
                            config.controller_timeout,
                            cursor.clone(),
                        ),
                        context.metrics.clone(),
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
                let instance = InstanceId::random();
                drain_as = Some(instance.to_string());
                log::info!("worker {worker_id} runs as instance {instance}");
                let request = RegisterRequest {
                    instance: Some(instance.into_string()),
                    health_check: None,
                    worker_id: worker_id.clone(),
                    worker_url,
                    capabilities: self.capabilities(),
                };
                let load = context.clone();
                Some(RegistrationActor::launch(
                    link(),
                    link(),
                    request,
                    timing,
                    status,
                    Some(Box::new(move || load.take_load())),
                ))
            }
            None => {
                log::info!("no controller URL (CONTROLLER_URL / --controller-url): worker {worker_id} runs standalone and registers nowhere");
                None
            }
        };

        tokio::select! {
            reason = stop => log::info!("worker {worker_id} received {reason}; shutting down"),
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
        if let (Some(_), Some(urls)) = (&registration, &config.controller_url) {
            if !config.drain_timeout.is_zero() {
                let client =
                    crank_net::https::mtls_client(client_tls.clone(), config.controller_timeout);
                let announced = config.announced_url();
                let id = (worker_id.as_str(), drain_as.as_deref(), announced.as_str());
                crate::drain::drain(&client, urls, id, &context, config.drain_timeout).await;
            }
        }
        if let Some(registration) = registration {
            // Deregister first, so the controller stops routing here before we
            // stop answering. The actor bounds this by the deregister timeout.
            let _ = registration.send(Shutdown).await;
        }
        server_handle.stop(true).await;
        log::info!("worker {worker_id} stopped");
        Ok(())
    }
}
