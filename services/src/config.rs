//! Process configuration: one serde struct per process, layered as
//! TOML file < environment < command-line flags. The environment is read through
//! the small `Env` trait so the layering is tested without touching the process
//! environment.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;

/// Where environment variables come from.
pub trait Env {
    fn var(&self, name: &str) -> Option<String>;
}

/// The real process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl Env for HashMap<&str, &str> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).map(|v| (*v).to_owned())
    }
}

/// A configuration value that cannot be used, named by where it came from.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {}: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    #[error("environment variable {name}={value:?}: {problem}")]
    Env {
        name: String,
        value: String,
        problem: String,
    },
    #[error("{key} must be longer than zero")]
    Zero { key: &'static str },
}

/// Refuses a zero duration where zero would spin a timer or make every worker stale.
fn non_zero(key: &'static str, value: Duration) -> Result<(), ConfigError> {
    if value.is_zero() {
        return Err(ConfigError::Zero { key });
    }
    Ok(())
}

/// Parses `500ms`, `2s`, `2m`, `1h 30m`, or a plain number of seconds (`120`, `0.5`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<f64>() {
        return Duration::try_from_secs_f64(seconds)
            .map_err(|_| format!("{text:?} is not a non-negative number of seconds"));
    }
    humantime::parse_duration(text)
        .map_err(|e| format!("{text:?} is not a duration like 500ms, 2s, 2m or 120 ({e})"))
}

/// serde adapter for durations written as `"2s"` or as a number of seconds.
pub mod duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Written {
        Seconds(f64),
        Text(String),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let text = match Written::deserialize(deserializer)? {
            Written::Seconds(s) => s.to_string(),
            Written::Text(t) => t,
        };
        super::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

fn read_file<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

/// Overrides `target` with the parsed value of environment variable `name`, if set.
fn from_env<T>(
    env: &dyn Env,
    name: &str,
    target: &mut T,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<(), ConfigError> {
    if let Some(value) = env.var(name) {
        *target = parse(&value).map_err(|problem| ConfigError::Env {
            name: name.to_owned(),
            value,
            problem,
        })?;
    }
    Ok(())
}

fn parsed<T: FromStr>(text: &str) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    text.trim().parse::<T>().map_err(|e| e.to_string())
}

fn set<T>(target: &mut T, flag: Option<T>) {
    if let Some(value) = flag {
        *target = value;
    }
}

/// `crank controller`'s settings. See `config/controller.toml`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ControllerConfig {
    /// Address to listen on.
    pub bind: String,
    /// HTTPS port (`CONTROLLER_HTTPS_PORT`).
    pub port: u16,
    /// Directory of `ca.crt` and the controller's certificate (`CERT_DIR`).
    pub cert_dir: PathBuf,
    /// Base name of the controller's certificate and key in `cert_dir`.
    pub cert: String,
    /// No heartbeat for this long makes a worker stale (`CONTROLLER_HEARTBEAT_TIMEOUT`).
    #[serde(with = "duration")]
    pub stale_after: Duration,
    /// How often the sweeper marks stale workers.
    #[serde(with = "duration")]
    pub sweep_interval: Duration,
    /// A worker stale this long is removed; 0 keeps stale workers forever.
    #[serde(with = "duration")]
    pub evict_after: Duration,
    /// A client that has not sent its request headers within this time is dropped.
    #[serde(with = "duration")]
    pub client_timeout: Duration,
    /// HTTP worker threads; 0 = one per core.
    pub http_workers: usize,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig {
            bind: "127.0.0.1".into(),
            port: 9000,
            cert_dir: "certs".into(),
            cert: "controller".into(),
            stale_after: crank_actors::registry::DEFAULT_STALE_AFTER,
            sweep_interval: crank_actors::sweeper::DEFAULT_SWEEP_INTERVAL,
            evict_after: crank_actors::registry::DEFAULT_EVICT_AFTER,
            client_timeout: Duration::from_secs(10),
            http_workers: 0,
        }
    }
}

/// `crank controller`'s flags; each overrides file and environment.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ControllerFlags {
    /// TOML config file (see config/controller.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1].
    #[arg(long)]
    pub bind: Option<String>,
    /// HTTPS port [env: CONTROLLER_HTTPS_PORT] [default: 9000].
    #[arg(long)]
    pub port: Option<u16>,
    /// Certificate directory [env: CERT_DIR] [default: certs].
    #[arg(long)]
    pub cert_dir: Option<PathBuf>,
    /// No heartbeat for this long makes a worker stale [env: CONTROLLER_HEARTBEAT_TIMEOUT] [default: 120s].
    #[arg(long, value_parser = parse_duration)]
    pub stale_after: Option<Duration>,
    /// Time between staleness sweeps [default: 5s].
    #[arg(long, value_parser = parse_duration)]
    pub sweep_interval: Option<Duration>,
    /// Remove workers stale this long; 0 = never [default: 600s].
    #[arg(long, value_parser = parse_duration)]
    pub evict_after: Option<Duration>,
    /// Drop clients that send no request headers within this time [default: 10s].
    #[arg(long, value_parser = parse_duration)]
    pub client_timeout: Option<Duration>,
    /// HTTP worker threads; 0 = one per core [env: CONTROLLER_HTTP_WORKERS] [default: 0].
    #[arg(long)]
    pub http_workers: Option<usize>,
}

impl ControllerConfig {
    /// File (if `--config`) < environment < flags.
    pub fn resolve(env: &dyn Env, flags: ControllerFlags) -> Result<Self, ConfigError> {
        let mut config = match &flags.config {
            Some(path) => read_file(path)?,
            None => ControllerConfig::default(),
        };
        from_env(env, "CONTROLLER_BIND", &mut config.bind, |v| {
            Ok(v.trim().to_owned())
        })?;
        from_env(env, "CONTROLLER_HTTPS_PORT", &mut config.port, parsed)?;
        from_env(env, "CERT_DIR", &mut config.cert_dir, |v| {
            Ok(PathBuf::from(v))
        })?;
        from_env(
            env,
            "CONTROLLER_HEARTBEAT_TIMEOUT",
            &mut config.stale_after,
            parse_duration,
        )?;
        from_env(
            env,
            "CONTROLLER_SWEEP_INTERVAL",
            &mut config.sweep_interval,
            parse_duration,
        )?;
        from_env(
            env,
            "CONTROLLER_EVICT_AFTER",
            &mut config.evict_after,
            parse_duration,
        )?;
        set(&mut config.bind, flags.bind);
        set(&mut config.port, flags.port);
        set(&mut config.cert_dir, flags.cert_dir);
        set(&mut config.stale_after, flags.stale_after);
        set(&mut config.sweep_interval, flags.sweep_interval);
        set(&mut config.evict_after, flags.evict_after);
        set(&mut config.client_timeout, flags.client_timeout);
        set(&mut config.http_workers, flags.http_workers);
        non_zero("stale_after", config.stale_after)?;
        non_zero("sweep_interval", config.sweep_interval)?;
        non_zero("client_timeout", config.client_timeout)?;
        Ok(config)
    }

    pub fn registry_settings(&self) -> crank_actors::registry::RegistrySettings {
        crank_actors::registry::RegistrySettings {
            stale_after: self.stale_after,
            evict_after: (!self.evict_after.is_zero()).then_some(self.evict_after),
        }
    }
}

/// `crank worker`'s settings. See `config/worker.toml`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkerConfig {
    /// Address to listen on.
    pub bind: String,
    /// HTTPS port (`WORKER_HTTPS_PORT`).
    pub port: u16,
    /// This worker's id (`WORKER_ID`).
    pub worker_id: String,
    /// URL the controller hands to clients (`WORKER_URL`); default `https://localhost:<port>`.
    pub worker_url: Option<String>,
    /// Controller to register with (`CONTROLLER_URL`); none = standalone.
    pub controller_url: Option<String>,
    /// Time between heartbeats, shortened to the controller's advice.
    #[serde(with = "duration")]
    pub heartbeat_interval: Duration,
    /// Directory of `ca.crt` and this worker's certificate (`CERT_DIR`).
    pub cert_dir: PathBuf,
    /// Base name of this worker's certificate and key; default: the worker id.
    pub cert: Option<String>,
    /// First registration retry ceiling.
    #[serde(with = "duration")]
    pub registration_backoff_initial: Duration,
    /// Largest registration retry ceiling.
    #[serde(with = "duration")]
    pub registration_backoff_max: Duration,
    /// Time allowed for deregistering on shutdown.
    #[serde(with = "duration")]
    pub deregister_timeout: Duration,
    /// Time allowed for each call to the controller.
    #[serde(with = "duration")]
    pub controller_timeout: Duration,
    /// HTTP worker threads; 0 = one per core.
    pub http_workers: usize,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            bind: "127.0.0.1".into(),
            port: 8500,
            worker_id: "hello-world-1".into(),
            worker_url: None,
            controller_url: None,
            heartbeat_interval: crank_actors::heartbeat::DEFAULT_HEARTBEAT_INTERVAL,
            cert_dir: "certs".into(),
            cert: None,
            registration_backoff_initial: crank_actors::backoff::DEFAULT_INITIAL_BACKOFF,
            registration_backoff_max: crank_actors::backoff::DEFAULT_MAX_BACKOFF,
            deregister_timeout: crank_actors::registration::DEFAULT_DEREGISTER_TIMEOUT,
            controller_timeout: Duration::from_secs(5),
            http_workers: 1,
        }
    }
}

/// `crank worker`'s flags; each overrides file and environment.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct WorkerFlags {
    /// TOML config file (see config/worker.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1].
    #[arg(long)]
    pub bind: Option<String>,
    /// HTTPS port [env: WORKER_HTTPS_PORT] [default: 8500].
    #[arg(long)]
    pub port: Option<u16>,
    /// Worker id [env: WORKER_ID] [default: hello-world-1].
    #[arg(long)]
    pub worker_id: Option<String>,
    /// URL clients reach this worker at [env: WORKER_URL] [default: https://localhost:<port>].
    #[arg(long)]
    pub worker_url: Option<String>,
    /// Controller to register with; empty = standalone [env: CONTROLLER_URL].
    #[arg(long)]
    pub controller_url: Option<String>,
    /// Time between heartbeats [env: WORKER_HEARTBEAT_INTERVAL] [default: 30s].
    #[arg(long, value_parser = parse_duration)]
    pub heartbeat_interval: Option<Duration>,
    /// Certificate directory [env: CERT_DIR] [default: certs].
    #[arg(long)]
    pub cert_dir: Option<PathBuf>,
    /// Certificate base name in the cert dir (NAME.crt, NAME.key) [default: the worker id].
    #[arg(long)]
    pub cert: Option<String>,
    /// HTTP worker threads; 0 = one per core [default: 1].
    #[arg(long)]
    pub http_workers: Option<usize>,
}

/// An unset-or-empty URL is `None`; a trailing `/` is dropped.
fn optional_url(value: &str) -> Option<String> {
    let value = value.trim();
    (!value.is_empty()).then(|| value.trim_end_matches('/').to_owned())
}

impl WorkerConfig {
    /// File (if `--config`) < environment < flags.
    pub fn resolve(env: &dyn Env, flags: WorkerFlags) -> Result<Self, ConfigError> {
        let mut config = match &flags.config {
            Some(path) => read_file(path)?,
            None => WorkerConfig::default(),
        };
        from_env(env, "WORKER_BIND", &mut config.bind, |v| {
            Ok(v.trim().to_owned())
        })?;
        from_env(env, "WORKER_HTTPS_PORT", &mut config.port, parsed)?;
        from_env(env, "WORKER_ID", &mut config.worker_id, |v| {
            Ok(v.trim().to_owned())
        })?;
        from_env(env, "WORKER_URL", &mut config.worker_url, |v| {
            Ok(optional_url(v))
        })?;
        from_env(env, "CONTROLLER_URL", &mut config.controller_url, |v| {
            Ok(optional_url(v))
        })?;
        from_env(
            env,
            "WORKER_HEARTBEAT_INTERVAL",
            &mut config.heartbeat_interval,
            parse_duration,
        )?;
        from_env(env, "CERT_DIR", &mut config.cert_dir, |v| {
            Ok(PathBuf::from(v))
        })?;
        set(&mut config.bind, flags.bind);
        set(&mut config.port, flags.port);
        set(&mut config.worker_id, flags.worker_id);
        if let Some(url) = flags.worker_url {
            config.worker_url = optional_url(&url);
        }
        if let Some(url) = flags.controller_url {
            config.controller_url = optional_url(&url);
        }
        set(&mut config.heartbeat_interval, flags.heartbeat_interval);
        set(&mut config.cert_dir, flags.cert_dir);
        set(&mut config.http_workers, flags.http_workers);
        if flags.cert.is_some() {
            config.cert = flags.cert;
        }
        non_zero("heartbeat_interval", config.heartbeat_interval)?;
        non_zero(
            "registration_backoff_initial",
            config.registration_backoff_initial,
        )?;
        non_zero("registration_backoff_max", config.registration_backoff_max)?;
        non_zero("deregister_timeout", config.deregister_timeout)?;
        non_zero("controller_timeout", config.controller_timeout)?;
        // An empty `controller_url = ""` in the file means standalone too.
        config.controller_url = config.controller_url.as_deref().and_then(optional_url);
        Ok(config)
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("120"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("0.25"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn file_then_env_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("controller.toml");
        std::fs::write(
            &file,
            "port = 9100\nstale_after = \"3m\"\nsweep_interval = 2\nbind = \"0.0.0.0\"\n",
        )
        .unwrap();
        let env = HashMap::from([
            ("CONTROLLER_HTTPS_PORT", "9200"),
            ("CERT_DIR", "/etc/crank"),
        ]);
        let flags = ControllerFlags {
            config: Some(file),
            port: Some(9300),
            ..ControllerFlags::default()
        };
        let config = ControllerConfig::resolve(&env, flags).unwrap();
        assert_eq!(config.port, 9300, "flag beats env and file");
        assert_eq!(
            config.cert_dir,
            PathBuf::from("/etc/crank"),
            "env beats default"
        );
        assert_eq!(
            config.stale_after,
            Duration::from_secs(180),
            "file beats default"
        );
        assert_eq!(config.sweep_interval, Duration::from_secs(2));
        assert_eq!(config.bind, "0.0.0.0");

        let env = HashMap::from([
            ("CONTROLLER_HTTPS_PORT", "9200"),
            ("CONTROLLER_HEARTBEAT_TIMEOUT", "30"),
        ]);
        let config = ControllerConfig::resolve(&env, ControllerFlags::default()).unwrap();
        assert_eq!(config.port, 9200, "env beats default");
        assert_eq!(config.stale_after, Duration::from_secs(30));
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("controller.toml");
        std::fs::write(&file, "stale_afterr = \"3m\"\n").unwrap();
        let flags = ControllerFlags {
            config: Some(file),
            ..ControllerFlags::default()
        };
        let error = ControllerConfig::resolve(&HashMap::new(), flags).unwrap_err();
        assert!(error.to_string().contains("stale_afterr"), "{error}");

        let env = HashMap::from([("CONTROLLER_HTTPS_PORT", "ninety")]);
        let error = ControllerConfig::resolve(&env, ControllerFlags::default()).unwrap_err();
        assert!(
            error.to_string().contains("CONTROLLER_HTTPS_PORT"),
            "{error}"
        );
    }

    #[test]
    fn the_shipped_config_files_parse_to_the_defaults() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let controller = ControllerConfig::resolve(
            &HashMap::new(),
            ControllerFlags {
                config: Some(root.join("config/controller.toml")),
                ..ControllerFlags::default()
            },
        )
        .unwrap();
        assert_eq!(controller, ControllerConfig::default());
        let worker = WorkerConfig::resolve(
            &HashMap::new(),
            WorkerFlags {
                config: Some(root.join("config/worker.toml")),
                ..WorkerFlags::default()
            },
        )
        .unwrap();
        assert_eq!(worker, WorkerConfig::default());
    }

    #[test]
    fn an_empty_controller_url_means_standalone() {
        let env = HashMap::from([("CONTROLLER_URL", "")]);
        let config = WorkerConfig::resolve(&env, WorkerFlags::default()).unwrap();
        assert_eq!(config.controller_url, None);
        let env = HashMap::from([
            ("CONTROLLER_URL", "https://localhost:9000/"),
            ("WORKER_HTTPS_PORT", "8600"),
        ]);
        let config = WorkerConfig::resolve(&env, WorkerFlags::default()).unwrap();
        assert_eq!(
            config.controller_url.as_deref(),
            Some("https://localhost:9000")
        );
        assert_eq!(config.announced_url(), "https://localhost:8600");
        assert_eq!(config.cert_name(), "hello-world-1");
    }
}
