//! [`WorkerConfig`]: `crank worker`'s settings, each declared once in
//! [`WorkerConfig::SETTINGS`](crank_net::config::Layered::SETTINGS). See
//! `config/worker.toml`.

use crank_trace::settings::{otlp_endpoint, OTLP_ENDPOINT};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;
use url::Url;

use crank_agent::heartbeat::MIN_HEARTBEAT_INTERVAL;
use crank_proto::domain::{WorkerId, WorkerUrl};

use crank_net::config::parse::{
    duration_at_least, number, optional_text, optional_url, parse_duration, path,
    positive_duration, text,
};
use crank_net::config::{ConfigError, Flags, Layered, Layers, Setting};

pub(super) const BIND: Setting = Setting {
    key: "bind",
    flag: "bind",
    env: "WORKER_BIND",
    value_name: "ADDR",
    default: Some("127.0.0.1"),
    help: "Address to listen on",
};
pub(super) const PORT: Setting = Setting {
    key: "port",
    flag: "port",
    env: "WORKER_HTTPS_PORT",
    value_name: "N",
    default: Some("8500"),
    help: "HTTPS port",
};
pub(super) const WORKER_ID: Setting = Setting {
    key: "worker_id",
    flag: "worker-id",
    env: "WORKER_ID",
    value_name: "ID",
    default: Some("hello-world-1"),
    help: "The id this worker registers; its certificate must be worker/<ID>, or service/<NAME> for ID = NAME or NAME.<suffix>",
};
pub(super) const WORKER_URL: Setting = Setting {
    key: "worker_url",
    flag: "worker-url",
    env: "WORKER_URL",
    value_name: "URL",
    default: None,
    help: "URL the controller hands to clients; unset: https://localhost:<port>",
};
pub(super) const CONTROLLER_URL: Setting = Setting {
    key: "controller_url",
    flag: "controller-url",
    env: "CONTROLLER_URL",
    value_name: "URL",
    default: None,
    help: "Controller to register with; unset or empty: standalone",
};
pub(super) const CONTROLLER_NAME: Setting = Setting {
    key: "controller_name",
    flag: "controller-name",
    env: "WORKER_CONTROLLER_NAME",
    value_name: "NAME",
    default: None,
    help: "Name the controller's certificate must carry (controller/NAME); unset: any controller/* certificate",
};
pub(super) const HEARTBEAT_INTERVAL: Setting = Setting {
    key: "heartbeat_interval",
    flag: "heartbeat-interval",
    env: "WORKER_HEARTBEAT_INTERVAL",
    value_name: "D",
    default: Some("30s"),
    help: "Time between heartbeats, shortened to the controller's advice",
};
pub(super) const CERT_DIR: Setting = Setting {
    key: "cert_dir",
    flag: "cert-dir",
    env: "CERT_DIR",
    value_name: "DIR",
    default: Some("certs"),
    help: "Directory of ca.crt and this worker's certificate",
};
pub(super) const CERT: Setting = Setting {
    key: "cert",
    flag: "cert",
    env: "WORKER_CERT",
    value_name: "NAME",
    default: None,
    help:
        "Base name of this worker's certificate and key (NAME.crt, NAME.key); unset: the worker id",
};
pub(super) const REGISTRATION_BACKOFF_INITIAL: Setting = Setting {
    key: "registration_backoff_initial",
    flag: "registration-backoff-initial",
    env: "WORKER_REGISTRATION_BACKOFF_INITIAL",
    value_name: "D",
    default: Some("1s"),
    help: "First ceiling of the jittered registration retry delay",
};
pub(super) const REGISTRATION_BACKOFF_MAX: Setting = Setting {
    key: "registration_backoff_max",
    flag: "registration-backoff-max",
    env: "WORKER_REGISTRATION_BACKOFF_MAX",
    value_name: "D",
    default: Some("30s"),
    help: "Largest ceiling of the registration retry delay",
};
pub(super) const DRAIN_TIMEOUT: Setting = Setting {
    key: "drain_timeout",
    flag: "drain-timeout",
    env: "WORKER_DRAIN_TIMEOUT",
    value_name: "D",
    default: Some("30s"),
    help: "On SIGTERM/SIGINT: mark this worker draining at the controller (no new routes), then wait this long at most for the calls in flight to finish before deregistering; 0 = deregister at once",
};
pub(super) const DEREGISTER_TIMEOUT: Setting = Setting {
    key: "deregister_timeout",
    flag: "deregister-timeout",
    env: "WORKER_DEREGISTER_TIMEOUT",
    value_name: "D",
    default: Some("2s"),
    help: "Time allowed for deregistering on shutdown",
};
pub(super) const CONTROLLER_TIMEOUT: Setting = Setting {
    key: "controller_timeout",
    flag: "controller-timeout",
    env: "WORKER_CONTROLLER_TIMEOUT",
    value_name: "D",
    default: Some("5s"),
    help: "Time allowed for each call to the controller",
};
pub(super) const HTTP_WORKERS: Setting = Setting {
    key: "http_workers",
    flag: "http-workers",
    env: "WORKER_HTTP_WORKERS",
    value_name: "N",
    default: Some("1"),
    help: "HTTP worker threads; 0 = one per core",
};
pub(super) const CAPACITY: Setting = Setting {
    key: "capacity",
    flag: "capacity",
    env: "WORKER_CAPACITY",
    value_name: "N",
    default: None,
    help: "Requests of each capability served at once, announced as max_concurrency (a capability declaring fewer keeps its own); more are answered 503. Unset: the worker's own (hello-world: 256)",
};
pub(super) const SERVICE_TIME: Setting = Setting {
    key: "service_time",
    flag: "service-time",
    env: "WORKER_SERVICE_TIME",
    value_name: "D",
    default: Some("0s"),
    help: "Holds every capability answer this long: a slower worker, for tests and benchmarks of routing",
};

/// `crank worker`'s settings.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerConfig {
    /// Address to listen on.
    pub bind: String,
    /// HTTPS port.
    pub port: u16,
    /// This worker's id, a valid wire `worker_id`.
    pub worker_id: String,
    /// URL the controller hands to clients, a valid wire `worker_url`; `None`:
    /// `https://localhost:<port>` (see [`WorkerConfig::announced_url`]).
    pub worker_url: Option<String>,
    /// Controller to register with; `None`: standalone.
    pub controller_url: Option<String>,
    /// Name the controller's certificate must carry (`controller/<name>`);
    /// `None`: any controller.
    pub controller_name: Option<String>,
    /// Time between heartbeats, shortened to the controller's advice.
    pub heartbeat_interval: Duration,
    /// Directory of `ca.crt` and this worker's certificate.
    pub cert_dir: PathBuf,
    /// Base name of this worker's certificate and key; `None`: the worker id.
    pub cert: Option<String>,
    /// First registration retry ceiling.
    pub registration_backoff_initial: Duration,
    /// Largest registration retry ceiling.
    pub registration_backoff_max: Duration,
    /// Time allowed for deregistering on shutdown.
    pub deregister_timeout: Duration,
    /// How long a stopping worker waits for its calls in flight, draining.
    pub drain_timeout: Duration,
    /// Time allowed for each call to the controller.
    pub controller_timeout: Duration,
    /// HTTP worker threads; 0 = one per core.
    pub http_workers: usize,
    /// Requests of each capability served at once; `None`: the worker's own
    /// ([`Worker::capacity`](crate::Worker::capacity)).
    pub capacity: Option<u32>,
    /// Held before every capability answer
    /// ([`Worker::service_time`](crate::Worker::service_time)).
    pub service_time: Duration,
    /// Where spans are exported; `None`: nowhere.
    pub otlp_endpoint: Option<Url>,
}

impl Layered for WorkerConfig {
    const SETTINGS: &'static [Setting] = &[
        BIND,
        PORT,
        WORKER_ID,
        WORKER_URL,
        CONTROLLER_URL,
        CONTROLLER_NAME,
        HEARTBEAT_INTERVAL,
        CERT_DIR,
        CERT,
        REGISTRATION_BACKOFF_INITIAL,
        REGISTRATION_BACKOFF_MAX,
        DEREGISTER_TIMEOUT,
        DRAIN_TIMEOUT,
        CONTROLLER_TIMEOUT,
        HTTP_WORKERS,
        CAPACITY,
        SERVICE_TIME,
        OTLP_ENDPOINT,
    ];

    fn from_layers(layers: &Layers) -> Result<Self, ConfigError> {
        Ok(WorkerConfig {
            bind: layers.value(&BIND, text)?,
            port: layers.value(&PORT, number)?,
            worker_id: layers.value(&WORKER_ID, worker_id)?,
            worker_url: layers.optional(&WORKER_URL, worker_url)?.flatten(),
            controller_url: layers.optional(&CONTROLLER_URL, optional_url)?.flatten(),
            controller_name: layers.optional(&CONTROLLER_NAME, optional_text)?.flatten(),
            heartbeat_interval: layers.value(
                &HEARTBEAT_INTERVAL,
                duration_at_least(
                    MIN_HEARTBEAT_INTERVAL,
                    "faster beats load the controller and say nothing more",
                ),
            )?,
            cert_dir: layers.value(&CERT_DIR, path)?,
            cert: layers.optional(&CERT, optional_text)?.flatten(),
            registration_backoff_initial: layers
                .value(&REGISTRATION_BACKOFF_INITIAL, positive_duration)?,
            registration_backoff_max: layers.value(&REGISTRATION_BACKOFF_MAX, positive_duration)?,
            deregister_timeout: layers.value(&DEREGISTER_TIMEOUT, positive_duration)?,
            drain_timeout: layers.value(&DRAIN_TIMEOUT, parse_duration)?,
            controller_timeout: layers.value(&CONTROLLER_TIMEOUT, positive_duration)?,
            http_workers: layers.value(&HTTP_WORKERS, number)?,
            capacity: layers.optional(&CAPACITY, positive_count)?,
            service_time: layers.value(&SERVICE_TIME, parse_duration)?,
            otlp_endpoint: layers.optional(&OTLP_ENDPOINT, otlp_endpoint)?.flatten(),
        })
    }
}

/// A capacity: a whole number of requests, at least one.
fn positive_count(value: &str) -> Result<u32, String> {
    match number::<u32>(value)? {
        0 => Err("must be at least 1 (a worker that serves nothing at once serves nothing)".into()),
        count => Ok(count),
    }
}

/// A worker id the controller will accept.
fn worker_id(value: &str) -> Result<String, String> {
    let id = text(value)?;
    WorkerId::parse(WORKER_ID.key, &id).map_err(|e| e.problem)?;
    Ok(id)
}

/// A worker URL the controller will accept; empty means unset.
fn worker_url(value: &str) -> Result<Option<String>, String> {
    let url = optional_url(value)?;
    if let Some(url) = &url {
        WorkerUrl::parse(WORKER_URL.key, url).map_err(|e| e.problem)?;
    }
    Ok(url)
}

impl Default for WorkerConfig {
    /// Every setting at its declared default.
    fn default() -> Self {
        Self::resolve(&HashMap::new(), &Flags::default())
            .expect("the worker's declared defaults are valid")
    }
}

impl WorkerConfig {
    /// The URL this worker announces.
    pub fn announced_url(&self) -> String {
        self.worker_url
            .clone()
            .unwrap_or_else(|| format!("https://localhost:{}", self.port))
    }

    /// Base name of the certificate files.
    pub fn cert_name(&self) -> &str {
        self.cert.as_deref().unwrap_or(&self.worker_id)
    }
}
