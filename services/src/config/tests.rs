//! The layering, the parsing and the validation of [`ControllerConfig`] and
//! [`WorkerConfig`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{controller, worker, ConfigError, Flags, Layered, Origin};
use super::{parse_duration, ControllerConfig, WorkerConfig};

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
    let flags = Flags::with_config(file).with(&controller::PORT, "9300");
    let config = ControllerConfig::resolve(&env, &flags).unwrap();
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
    let config = ControllerConfig::resolve(&env, &Flags::default()).unwrap();
    assert_eq!(config.port, 9200, "env beats default");
    assert_eq!(config.stale_after, Duration::from_secs(30));
}

#[test]
fn unknown_keys_and_bad_values_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("controller.toml");
    std::fs::write(&file, "stale_afterr = \"3m\"\n").unwrap();
    let error = ControllerConfig::resolve(&HashMap::new(), &Flags::with_config(&file)).unwrap_err();
    assert!(error.to_string().contains("stale_afterr"), "{error}");

    std::fs::write(&file, "port = [9000]\n").unwrap();
    let error = ControllerConfig::resolve(&HashMap::new(), &Flags::with_config(&file)).unwrap_err();
    assert!(
        matches!(
            &error,
            ConfigError::Invalid {
                key: "port",
                origin: Origin::File(_),
                ..
            }
        ),
        "{error}"
    );

    let env = HashMap::from([("CONTROLLER_HTTPS_PORT", "ninety")]);
    let error = ControllerConfig::resolve(&env, &Flags::default()).unwrap_err();
    assert!(
        error.to_string().contains("CONTROLLER_HTTPS_PORT") && error.to_string().contains("port"),
        "{error}"
    );
}

#[test]
fn the_shipped_config_files_parse_to_the_defaults() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let controller = ControllerConfig::resolve(
        &HashMap::new(),
        &Flags::with_config(root.join("config/controller.toml")),
    )
    .unwrap();
    assert_eq!(controller, ControllerConfig::default());
    let worker = WorkerConfig::resolve(
        &HashMap::new(),
        &Flags::with_config(root.join("config/worker.toml")),
    )
    .unwrap();
    assert_eq!(worker, WorkerConfig::default());
}

#[test]
fn the_declared_defaults_are_the_actors_defaults() {
    let controller = ControllerConfig::default();
    assert_eq!(controller.stale_after, crank_registry::DEFAULT_STALE_AFTER);
    assert_eq!(controller.evict_after, crank_registry::DEFAULT_EVICT_AFTER);
    assert_eq!(
        controller.sweep_interval,
        crank_registry::sweeper::DEFAULT_SWEEP_INTERVAL
    );
    let worker = WorkerConfig::default();
    assert_eq!(
        worker.heartbeat_interval,
        crank_agent::heartbeat::DEFAULT_HEARTBEAT_INTERVAL
    );
    assert_eq!(
        worker.registration_backoff_initial,
        crank_agent::backoff::DEFAULT_INITIAL_BACKOFF
    );
    assert_eq!(
        worker.registration_backoff_max,
        crank_agent::backoff::DEFAULT_MAX_BACKOFF
    );
    assert_eq!(
        worker.deregister_timeout,
        crank_agent::registration::DEFAULT_DEREGISTER_TIMEOUT
    );
}

#[test]
fn controller_http_workers_is_read_from_the_environment() {
    assert_eq!(ControllerConfig::default().http_workers, 0);
    let env = HashMap::from([("CONTROLLER_HTTP_WORKERS", "1")]);
    let config = ControllerConfig::resolve(&env, &Flags::default()).unwrap();
    assert_eq!(config.http_workers, 1);
}

#[test]
fn an_empty_controller_url_means_standalone() {
    let env = HashMap::from([("CONTROLLER_URL", "")]);
    let config = WorkerConfig::resolve(&env, &Flags::default()).unwrap();
    assert_eq!(config.controller_url, None);
    let env = HashMap::from([
        ("CONTROLLER_URL", "https://localhost:9000/"),
        ("WORKER_HTTPS_PORT", "8600"),
    ]);
    let config = WorkerConfig::resolve(&env, &Flags::default()).unwrap();
    assert_eq!(
        config.controller_url.as_deref(),
        Some("https://localhost:9000")
    );
    assert_eq!(config.announced_url(), "https://localhost:8600");
    assert_eq!(config.cert_name(), "hello-world-1");
}

#[test]
fn zero_durations_are_refused_naming_the_key() {
    let env = HashMap::from([("CONTROLLER_SWEEP_INTERVAL", "0")]);
    let error = ControllerConfig::resolve(&env, &Flags::default()).unwrap_err();
    assert!(
        error.to_string().starts_with("sweep_interval")
            && error.to_string().contains("must be at least 10ms"),
        "{error}"
    );
    let env = HashMap::from([("CONTROLLER_EVICT_AFTER", "0")]);
    let config = ControllerConfig::resolve(&env, &Flags::default()).unwrap();
    assert_eq!(config.registry_settings().evict_after, None, "0 = never");

    let flags = Flags::default().with(&worker::DEREGISTER_TIMEOUT, "0s");
    let error = WorkerConfig::resolve(&HashMap::new(), &flags).unwrap_err();
    assert!(
        matches!(
            &error,
            ConfigError::Invalid {
                key: "deregister_timeout",
                origin: Origin::Flag("deregister-timeout"),
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn an_invalid_worker_id_or_url_is_refused_naming_the_key() {
    let flags = Flags::default().with(&worker::WORKER_ID, "no spaces");
    let error = WorkerConfig::resolve(&HashMap::new(), &flags).unwrap_err();
    assert!(
        error.to_string().starts_with("worker_id") && error.to_string().contains("--worker-id"),
        "{error}"
    );

    let env = HashMap::from([("WORKER_URL", "http://localhost:8500")]);
    let error = WorkerConfig::resolve(&env, &Flags::default()).unwrap_err();
    assert!(
        error.to_string().starts_with("worker_url") && error.to_string().contains("WORKER_URL"),
        "{error}"
    );

    let env = HashMap::from([("WORKER_URL", "https://w1.example:8500/")]);
    let config = WorkerConfig::resolve(&env, &Flags::default()).unwrap();
    assert_eq!(config.announced_url(), "https://w1.example:8500");
}

#[test]
fn absurdly_short_timings_are_refused_at_start_saying_why() {
    let flags = Flags::default().with(&controller::STALE_AFTER, "4ms");
    let error = ControllerConfig::resolve(&HashMap::new(), &flags).unwrap_err();
    let text = error.to_string();
    assert!(
        text.starts_with("stale_after") && text.contains("at least 1s"),
        "{text}"
    );
    let env = HashMap::from([("WORKER_HEARTBEAT_INTERVAL", "1ms")]);
    let error = WorkerConfig::resolve(&env, &Flags::default()).unwrap_err();
    let text = error.to_string();
    assert!(
        text.starts_with("heartbeat_interval") && text.contains("at least 100ms"),
        "{text}"
    );
}
