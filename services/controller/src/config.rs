//! [`ControllerConfig`]: `crank controller`'s settings, each declared once in
//! [`ControllerConfig::SETTINGS`](crank_net::config::Layered::SETTINGS). See
//! `config/controller.toml`.

use crank_trace::settings::{otlp_endpoint, OTLP_ENDPOINT};
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;
use url::Url;

use crank_proto::domain::Strategy;
use crank_registry::{RegistrySettings, MIN_STALE_AFTER};

use crate::checker::ActiveChecks;
use crate::file_store::Fsync;
use crate::protection::limits::{EndpointRates, Rate};
use crate::protection::ProtectionSettings;
use crank_net::config::parse::{
    at_least_one, duration_at_least, number, parse_duration, path, positive_duration, share, text,
};
use crank_net::config::{ConfigError, Flags, Layered, Layers, Setting};
use crank_net::service_ids::ServiceIds;

pub(super) const BIND: Setting = Setting {
    key: "bind",
    flag: "bind",
    env: "CONTROLLER_BIND",
    value_name: "ADDR",
    default: Some("127.0.0.1"),
    help: "Address to listen on (0.0.0.0 for other hosts)",
};
pub(super) const PORT: Setting = Setting {
    key: "port",
    flag: "port",
    env: "CONTROLLER_HTTPS_PORT",
    value_name: "N",
    default: Some("9000"),
    help: "HTTPS port",
};
pub(super) const CERT_DIR: Setting = Setting {
    key: "cert_dir",
    flag: "cert-dir",
    env: "CERT_DIR",
    value_name: "DIR",
    default: Some("certs"),
    help: "Directory of ca.crt and the controller's certificate",
};
pub(super) const CERT: Setting = Setting {
    key: "cert",
    flag: "cert",
    env: "CONTROLLER_CERT",
    value_name: "NAME",
    default: Some("controller"),
    help: "Base name of the controller's certificate and key in the cert dir (NAME.crt, NAME.key)",
};
pub(super) const STALE_AFTER: Setting = Setting {
    key: "stale_after",
    flag: "stale-after",
    env: "CONTROLLER_HEARTBEAT_TIMEOUT",
    value_name: "D",
    default: Some("120s"),
    help: "No heartbeat for this long makes a worker stale",
};
pub(super) const SWEEP_INTERVAL: Setting = Setting {
    key: "sweep_interval",
    flag: "sweep-interval",
    env: "CONTROLLER_SWEEP_INTERVAL",
    value_name: "D",
    default: Some("5s"),
    help: "Time between staleness sweeps",
};
pub(super) const EVICT_AFTER: Setting = Setting {
    key: "evict_after",
    flag: "evict-after",
    env: "CONTROLLER_EVICT_AFTER",
    value_name: "D",
    default: Some("600s"),
    help: "Remove workers stale this long; 0 = never",
};
pub(super) const STORE: Setting = Setting {
    key: "store",
    flag: "store",
    env: "CONTROLLER_STORE",
    value_name: "STORE",
    default: Some("file"),
    help: "Where the registry lives: file (this process's data directory, kept across restarts), memory (this process alone, lost on restart) or etcd (shared by several controllers)",
};
pub(super) const DATA_DIR: Setting = Setting {
    key: "data_dir",
    flag: "data-dir",
    env: "CONTROLLER_DATA_DIR",
    value_name: "DIR",
    default: Some("state/controller"),
    help: "With --store file: the directory the registry is kept in (one controller at a time)",
};
pub(super) const FSYNC: Setting = Setting {
    key: "fsync",
    flag: "fsync",
    env: "CONTROLLER_FSYNC",
    value_name: "WHEN",
    default: Some("batch"),
    help: "With --store file: always (sync each change; a power cut loses nothing acknowledged), batch (one sync per group of changes; loses the last few ms), never (the kernel's write-back; loses up to ~30 s)",
};
pub(super) const ETCD_ENDPOINTS: Setting = Setting {
    key: "etcd_endpoints",
    flag: "etcd-endpoints",
    env: "CONTROLLER_ETCD_ENDPOINTS",
    value_name: "URL[,URL…]",
    default: Some("https://127.0.0.1:2379"),
    help: "etcd client URLs, with --store etcd",
};
pub(super) const ETCD_CA: Setting = Setting {
    key: "etcd_ca",
    flag: "etcd-ca",
    env: "CONTROLLER_ETCD_CA",
    value_name: "FILE",
    default: None,
    help: "CA that signs etcd's certificate; unset: ca.crt in the cert dir",
};
pub(super) const ETCD_CERT: Setting = Setting {
    key: "etcd_cert",
    flag: "etcd-cert",
    env: "CONTROLLER_ETCD_CERT",
    value_name: "FILE",
    default: None,
    help: "Client certificate for etcd; unset: the controller's own",
};
pub(super) const ETCD_KEY: Setting = Setting {
    key: "etcd_key",
    flag: "etcd-key",
    env: "CONTROLLER_ETCD_KEY",
    value_name: "FILE",
    default: None,
    help: "Key of the etcd client certificate; unset: the controller's own",
};
pub(super) const ETCD_PREFIX: Setting = Setting {
    key: "etcd_prefix",
    flag: "etcd-prefix",
    env: "CONTROLLER_ETCD_PREFIX",
    value_name: "PREFIX",
    default: Some("/crank"),
    help: "Every key crank writes lives under this prefix",
};
pub(super) const PROTECT_THRESHOLD: Setting = Setting {
    key: "protect_threshold",
    flag: "protect-threshold",
    env: "CONTROLLER_PROTECT_THRESHOLD",
    value_name: "SHARE",
    default: Some("0.5"),
    help: "When more than this share of the fleet would go stale at once, hold back for stale_after / 2 and route to them as suspect; 1 = never",
};
pub(super) const CLIENT_TIMEOUT: Setting = Setting {
    key: "client_timeout",
    flag: "client-timeout",
    env: "CONTROLLER_CLIENT_TIMEOUT",
    value_name: "D",
    default: Some("10s"),
    help:
        "Drop clients that complete no TLS handshake, send no request headers, or (after the headers) no whole body, within this time",
};
pub(super) const HTTP_WORKERS: Setting = Setting {
    key: "http_workers",
    flag: "http-workers",
    env: "CONTROLLER_HTTP_WORKERS",
    value_name: "N",
    default: Some("0"),
    help: "HTTP worker threads; 0 = one per core",
};
pub(super) const MAX_CONNECTIONS_PER_IDENTITY: Setting = Setting {
    key: "max_connections_per_identity",
    flag: "max-connections-per-identity",
    env: "CONTROLLER_MAX_CONNECTIONS_PER_IDENTITY",
    value_name: "N",
    default: Some("256"),
    help: "Open connections one certificate identity may hold; past it new ones are refused. 0 = no limit",
};
pub(super) const ROUTE_STRATEGY: Setting = Setting {
    key: "route_strategy",
    flag: "route-strategy",
    env: "CONTROLLER_ROUTE_STRATEGY",
    value_name: "STRATEGY",
    default: Some("least_loaded"),
    help: "How routes that name no strategy choose: least_loaded (power of two choices by expected wait: measured latency and load), round_robin or cheapest",
};
pub(super) const WATCH_BACKLOG: Setting = Setting {
    key: "watch_backlog",
    flag: "watch-backlog",
    env: "CONTROLLER_WATCH_BACKLOG",
    value_name: "N",
    default: Some("16384"),
    help: "Changes a GET /watch stream may fall behind before it is sent a resync and a fresh snapshot (at least 1)",
};

pub(super) const SERVICE_IDS: Setting = Setting {
    key: "service_ids",
    flag: "service-ids",
    env: "CONTROLLER_SERVICE_IDS",
    value_name: "MAP",
    default: None,
    help: "Worker ids a service certificate may act for beyond its own, as service=pattern,… (a pattern is an id or a prefix ending in *), e.g. hello-world=worker-*; refused if two services could claim one id",
};

pub(super) const ACTIVE_CHECKS: Setting = Setting {
    key: "active_checks",
    flag: "active-checks",
    env: "CONTROLLER_ACTIVE_CHECKS",
    value_name: "WHICH",
    default: Some("requested"),
    help: "Which workers the controller checks itself (GET /health at the heartbeat interval; a pass counts as a heartbeat): requested (those registered with \"health_check\": \"active\"), silent (also those that sent no heartbeat one interval after registering, as the original system's never do), or off",
};

pub(super) const POLICY: Setting = Setting {
    key: "policy",
    flag: "policy",
    env: "CONTROLLER_POLICY",
    value_name: "FILE",
    default: None,
    help: "Access policy file (TOML): which identities may route to and watch which capabilities, per-identity rate limits; mode off, shadow or enforce. Reloaded on SIGHUP and when it changes",
};
pub(super) const SLO_DIR: Setting = Setting {
    key: "slo_dir",
    flag: "slo-dir",
    env: "CONTROLLER_SLO_DIR",
    value_name: "DIR",
    default: None,
    help: "Directory of SLO files, one YAML file per capability; while a capability breaches its p95 or availability target, routes of priority low are shed. Reloaded like the policy",
};
pub(super) const SLO_WINDOW: Setting = Setting {
    key: "slo_window",
    flag: "slo-window",
    env: "CONTROLLER_SLO_WINDOW",
    value_name: "D",
    default: Some("60s"),
    help: "The sliding window over which each capability's p95, availability and error budget are measured from callers' reports",
};
pub(super) const ROUTE_RATE: Setting = Setting {
    key: "route_rate",
    flag: "route-rate",
    env: "CONTROLLER_ROUTE_RATE",
    value_name: "N/s",
    default: None,
    help: "Routes per identity, as N/s or N/m; past it 429 rate_limit_exceeded with Retry-After. Unset: no limit",
};
pub(super) const REGISTER_RATE: Setting = Setting {
    key: "register_rate",
    flag: "register-rate",
    env: "CONTROLLER_REGISTER_RATE",
    value_name: "N/s",
    default: None,
    help: "Registrations per identity, as N/s or N/m; unset: no limit",
};
pub(super) const REPORT_RATE: Setting = Setting {
    key: "report_rate",
    flag: "report-rate",
    env: "CONTROLLER_REPORT_RATE",
    value_name: "N/s",
    default: None,
    help: "Outcome reports per identity, as N/s or N/m; unset: no limit",
};
pub(super) const RATE_BURST: Setting = Setting {
    key: "rate_burst",
    flag: "rate-burst",
    env: "CONTROLLER_RATE_BURST",
    value_name: "N",
    default: None,
    help: "Requests an identity may send at once above its rate (the bucket's size); unset: the rate's N",
};

/// `crank controller`'s settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ControllerConfig {
    /// Address to listen on.
    pub bind: String,
    /// HTTPS port.
    pub port: u16,
    /// Directory of `ca.crt` and the controller's certificate.
    pub cert_dir: PathBuf,
    /// Base name of the controller's certificate and key in `cert_dir`.
    pub cert: String,
    /// No heartbeat for this long makes a worker stale.
    pub stale_after: Duration,
    /// How often the sweeper marks stale workers.
    pub sweep_interval: Duration,
    /// A worker stale this long is removed; 0 keeps stale workers forever.
    pub evict_after: Duration,
    /// Share of the fleet that may go stale at once before the registry holds back.
    pub protect_threshold: f64,
    /// Where the registry lives.
    pub store: StoreKind,
    /// With [`StoreKind::File`]: where.
    pub data_dir: PathBuf,
    /// With [`StoreKind::File`]: how writes are synced.
    pub fsync: Fsync,
    /// etcd client URLs, with the etcd store.
    pub etcd_endpoints: Vec<String>,
    /// TLS files for etcd; unset: the cert dir's CA and the controller's own.
    pub etcd_ca: Option<PathBuf>,
    pub etcd_cert: Option<PathBuf>,
    pub etcd_key: Option<PathBuf>,
    /// The prefix of crank's keys in etcd.
    pub etcd_prefix: String,
    /// A client that has not completed its TLS handshake, sent its request
    /// headers, or (once they are in) its request body within this time is
    /// dropped.
    pub client_timeout: Duration,
    /// HTTP worker threads; 0 = one per core.
    pub http_workers: usize,
    /// Open connections one certificate identity may hold; 0 = no limit.
    pub max_connections_per_identity: usize,
    /// How routes that name no `strategy` choose (the key `route_strategy`).
    pub default_route_strategy: Strategy,
    /// Changes a watcher may fall behind before it must resync.
    pub watch_backlog: usize,
    /// Extra worker ids each service certificate may act for.
    pub service_ids: ServiceIds,
    /// Which workers the controller checks itself.
    pub active_checks: ActiveChecks,
    /// The access policy, rate limits and SLOs.
    pub protection: ProtectionSettings,
    /// Where spans are exported; `None`: nowhere.
    pub otlp_endpoint: Option<Url>,
}

impl Layered for ControllerConfig {
    const SETTINGS: &'static [Setting] = &[
        BIND,
        PORT,
        CERT_DIR,
        CERT,
        STALE_AFTER,
        SWEEP_INTERVAL,
        EVICT_AFTER,
        PROTECT_THRESHOLD,
        STORE,
        DATA_DIR,
        FSYNC,
        ETCD_ENDPOINTS,
        ETCD_CA,
        ETCD_CERT,
        ETCD_KEY,
        ETCD_PREFIX,
        CLIENT_TIMEOUT,
        HTTP_WORKERS,
        MAX_CONNECTIONS_PER_IDENTITY,
        ROUTE_STRATEGY,
        WATCH_BACKLOG,
        SERVICE_IDS,
        ACTIVE_CHECKS,
        POLICY,
        SLO_DIR,
        SLO_WINDOW,
        ROUTE_RATE,
        REGISTER_RATE,
        REPORT_RATE,
        RATE_BURST,
        OTLP_ENDPOINT,
    ];

    fn from_layers(layers: &Layers) -> Result<Self, ConfigError> {
        Ok(ControllerConfig {
            bind: layers.value(&BIND, text)?,
            port: layers.value(&PORT, number)?,
            cert_dir: layers.value(&CERT_DIR, path)?,
            cert: layers.value(&CERT, text)?,
            stale_after: layers.value(
                &STALE_AFTER,
                duration_at_least(
                    MIN_STALE_AFTER,
                    "workers are advised to heartbeat every quarter of it",
                ),
            )?,
            sweep_interval: layers.value(
                &SWEEP_INTERVAL,
                duration_at_least(
                    Duration::from_millis(10),
                    "a sweep more often would keep the registry busy sweeping",
                ),
            )?,
            evict_after: layers.value(&EVICT_AFTER, parse_duration)?,
            protect_threshold: layers.value(&PROTECT_THRESHOLD, share)?,
            store: layers.value(&STORE, store_kind)?,
            data_dir: layers.value(&DATA_DIR, path)?,
            fsync: layers.value(&FSYNC, |text| text.parse())?,
            etcd_endpoints: layers.value(&ETCD_ENDPOINTS, url_list)?,
            etcd_ca: layers.optional(&ETCD_CA, path)?,
            etcd_cert: layers.optional(&ETCD_CERT, path)?,
            etcd_key: layers.optional(&ETCD_KEY, path)?,
            etcd_prefix: layers.value(&ETCD_PREFIX, text)?,
            client_timeout: layers.value(&CLIENT_TIMEOUT, positive_duration)?,
            http_workers: layers.value(&HTTP_WORKERS, number)?,
            max_connections_per_identity: layers.value(&MAX_CONNECTIONS_PER_IDENTITY, number)?,
            default_route_strategy: layers.value(&ROUTE_STRATEGY, |text| text.parse())?,
            watch_backlog: layers.value(&WATCH_BACKLOG, at_least_one)?,
            service_ids: layers
                .optional(&SERVICE_IDS, ServiceIds::parse)?
                .unwrap_or_default(),
            active_checks: layers.value(&ACTIVE_CHECKS, |text| text.parse())?,
            protection: ProtectionSettings {
                policy_file: layers.optional(&POLICY, path)?,
                slo_dir: layers.optional(&SLO_DIR, path)?,
                slo_window: layers.value(&SLO_WINDOW, positive_duration)?,
                rates: EndpointRates {
                    route: layers.optional(&ROUTE_RATE, Rate::parse)?,
                    register: layers.optional(&REGISTER_RATE, Rate::parse)?,
                    report: layers.optional(&REPORT_RATE, Rate::parse)?,
                },
                burst: layers
                    .optional(&RATE_BURST, at_least_one)?
                    .and_then(|n: usize| NonZeroU32::new(u32::try_from(n).unwrap_or(u32::MAX))),
            },
            otlp_endpoint: layers.optional(&OTLP_ENDPOINT, otlp_endpoint)?.flatten(),
        })
    }
}

/// Where the registry lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// In this process's memory, written to its data directory: the
    /// default, kept across restarts.
    File,
    /// In this process's memory only: for tests and throwaway runs.
    Memory,
    /// In etcd, shared by every controller that points at it.
    Etcd,
}

fn store_kind(text: &str) -> Result<StoreKind, String> {
    match text.trim() {
        "memory" => Ok(StoreKind::Memory),
        "etcd" => Ok(StoreKind::Etcd),
        "file" => Ok(StoreKind::File),
        other => Err(format!("{other:?} is not a store: file, memory or etcd")),
    }
}

/// A comma-separated list of `https://` URLs.
fn url_list(text: &str) -> Result<Vec<String>, String> {
    let urls: Vec<String> = text
        .split(',')
        .map(|url| url.trim().trim_end_matches('/').to_owned())
        .filter(|url| !url.is_empty())
        .collect();
    if urls.is_empty() {
        return Err("names no URL".into());
    }
    for url in &urls {
        if !url.starts_with("https://") {
            return Err(format!(
                "{url:?} is not an https:// URL (etcd is reached over mTLS)"
            ));
        }
    }
    Ok(urls)
}

impl Default for ControllerConfig {
    /// Every setting at its declared default.
    fn default() -> Self {
        Self::resolve(&HashMap::new(), &Flags::default())
            .expect("the controller's declared defaults are valid")
    }
}

impl ControllerConfig {
    /// The registry's timing: `evict_after` of 0 means never.
    pub fn registry_settings(&self) -> RegistrySettings {
        RegistrySettings {
            stale_after: self.stale_after,
            evict_after: (!self.evict_after.is_zero()).then_some(self.evict_after),
            protect_threshold: self.protect_threshold,
            default_strategy: self.default_route_strategy,
        }
    }
}

impl ControllerConfig {
    /// How much the watch stream holds: the backlog as set, as many changes
    /// remembered for watchers that resume.
    pub fn watch_limits(&self) -> crate::controller_state::WatchLimits {
        crate::controller_state::WatchLimits {
            backlog: self.watch_backlog,
            history: self.watch_backlog,
        }
    }
}
