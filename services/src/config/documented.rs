//! Every setting is read, and documented where an operator looks: the README's
//! settings tables and the shipped `config/*.toml` files name each key with its
//! environment variable, flag and default, and name nothing else.

use std::collections::{HashMap, HashSet};
use std::fmt::Debug;
use std::path::Path;

use super::{ControllerConfig, Flags, Layered, Setting, WorkerConfig};

/// Two values for `key`, different from each other and from its default.
fn samples(key: &str) -> [&'static str; 2] {
    match key {
        "bind" => ["0.0.0.0", "10.1.2.3"],
        "port" => ["9101", "9102"],
        "http_workers" => ["3", "4"],
        "capacity" => ["8", "16"],
        "protect_threshold" => ["0.25", "0.75"],
        "store" => ["etcd", "memory"],
        "route_strategy" => ["round_robin", "cheapest"],
        "etcd_endpoints" => [
            "https://e1.example:2379",
            "https://e2.example:2379,https://e3.example:2379",
        ],
        "etcd_ca" | "etcd_cert" | "etcd_key" => ["/etc/a.pem", "/etc/b.pem"],
        "etcd_prefix" => ["/fleet-a", "/fleet-b"],
        "max_connections_per_identity" => ["16", "32"],
        "watch_backlog" => ["64", "128"],
        "service_ids" => ["hello-world=worker-*", "a=x-*,b=y-*"],
        "active_checks" => ["silent", "off"],
        "cert_dir" => ["/etc/crank-a", "/etc/crank-b"],
        "cert" => ["name-a", "name-b"],
        "controller_name" => ["ctl-a", "ctl-b"],
        "worker_id" => ["worker-a", "worker-b"],
        "worker_url" | "controller_url" => ["https://a.example:8600", "https://b.example:8700"],
        "stale_after"
        | "sweep_interval"
        | "evict_after"
        | "client_timeout"
        | "heartbeat_interval"
        | "registration_backoff_initial"
        | "registration_backoff_max"
        | "deregister_timeout"
        | "controller_timeout"
        | "service_time" => ["3s", "7s"],
        other => panic!("no samples for `{other}`: add two to this test"),
    }
}

/// For each setting alone: the file changes it, the environment overrides the
/// file, and the flag overrides the environment.
fn each_setting_is_read_in_order<C: Layered + Default + PartialEq + Debug>() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.toml");
    for setting in C::SETTINGS {
        let [a, b] = samples(setting.key);
        let literal = match a.parse::<i64>() {
            Ok(_) => a.to_owned(),
            Err(_) => format!("{a:?}"),
        };
        std::fs::write(&file, format!("{} = {literal}\n", setting.key)).unwrap();
        let resolve = |env: &[(&str, &str)], flags: &Flags| {
            C::resolve(&env.iter().copied().collect::<HashMap<_, _>>(), flags)
                .unwrap_or_else(|e| panic!("{}: {e}", setting.key))
        };
        let from_file = resolve(&[], &Flags::with_config(&file));
        assert_ne!(
            from_file,
            C::default(),
            "{} is not read from the file",
            setting.key
        );
        let from_env = resolve(&[(setting.env, b)], &Flags::with_config(&file));
        assert_ne!(
            from_env, from_file,
            "{} does not override the file",
            setting.env
        );
        assert_eq!(
            resolve(&[(setting.env, b)], &Flags::default()),
            from_env,
            "{} alone",
            setting.env
        );
        let from_flag = resolve(
            &[(setting.env, b)],
            &Flags::with_config(&file).with(setting, a),
        );
        assert_eq!(
            from_flag, from_file,
            "--{} does not override the environment",
            setting.flag
        );
    }
}

#[test]
fn every_setting_is_read_from_file_env_and_flag_in_that_order() {
    each_setting_is_read_in_order::<ControllerConfig>();
    each_setting_is_read_in_order::<WorkerConfig>();
}

#[test]
fn each_table_names_every_key_flag_and_env_once() {
    for settings in [ControllerConfig::SETTINGS, WorkerConfig::SETTINGS] {
        let names = |field: fn(&Setting) -> &'static str| -> Vec<_> {
            settings.iter().map(field).collect()
        };
        for names in [names(|s| s.key), names(|s| s.flag), names(|s| s.env)] {
            let unique: HashSet<_> = names.iter().collect();
            assert_eq!(unique.len(), names.len(), "a name twice in {names:?}");
        }
        for setting in settings {
            assert_eq!(
                setting.flag,
                setting.key.replace('_', "-"),
                "--{}",
                setting.flag
            );
        }
    }
}

fn repository_file(path: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::fs::read_to_string(root.join(path)).unwrap()
}

/// The environment variables a text names after `Env: `.
fn env_mentions(text: &str) -> Vec<String> {
    text.split("Env: ")
        .skip(1)
        .map(|rest| {
            rest.chars()
                .take_while(|c| c.is_ascii_uppercase() || *c == '_')
                .collect()
        })
        .collect()
}

/// A shipped config file: every key in it (set or commented out) is a setting
/// whose paragraph names its `Env:` and `Flag:`, every setting is in it, and
/// every `Env:` it names is a setting's.
fn config_file_documents(path: &str, settings: &[Setting]) {
    let text = repository_file(path);
    let mut documented = HashSet::new();
    for paragraph in text.split("\n\n") {
        let mut comment = String::new();
        for line in paragraph.lines() {
            let bare = line.trim_start_matches('#').trim();
            match bare.split_once(" = ") {
                Some((key, _)) if key.chars().all(|c| c.is_ascii_lowercase() || c == '_') => {
                    let setting = settings
                        .iter()
                        .find(|s| s.key == key)
                        .unwrap_or_else(|| panic!("{path}: `{key}` is not a setting"));
                    for wanted in [
                        format!("Env: {}.", setting.env),
                        format!("Flag: --{}.", setting.flag),
                    ] {
                        assert!(
                            comment.contains(&wanted),
                            "{path}: `{key}` lacks {wanted:?}"
                        );
                    }
                    documented.insert(key.to_owned());
                }
                _ => comment.push_str(&format!("{bare} ")),
            }
        }
    }
    for setting in settings {
        assert!(
            documented.contains(setting.key),
            "{path} lacks `{}`",
            setting.key
        );
    }
    for env in env_mentions(&text) {
        assert!(
            settings.iter().any(|s| s.env == env),
            "{path} documents {env}, which is read nowhere"
        );
    }
}

#[test]
fn the_config_files_document_every_setting_with_its_env_and_flag() {
    config_file_documents("config/controller.toml", ControllerConfig::SETTINGS);
    config_file_documents("config/worker.toml", WorkerConfig::SETTINGS);
}

/// The rows `| flag | env | default | meaning |` of the README table under `heading`.
fn readme_rows(readme: &str, heading: &str) -> Vec<[String; 3]> {
    let section = readme
        .split_once(heading)
        .unwrap_or_else(|| panic!("README has no {heading:?}"))
        .1;
    section
        .lines()
        .skip(1)
        .take_while(|line| !line.starts_with('#'))
        .filter(|line| line.starts_with("| `--"))
        .map(|line| {
            let cell = |i: usize| line.split('|').nth(i).unwrap().trim().replace('`', "");
            [cell(1), cell(2), cell(3)]
        })
        .collect()
}

/// A README settings table: one row per setting, with its flag, env and default.
fn readme_documents(readme: &str, heading: &str, settings: &[Setting]) {
    let rows = readme_rows(readme, heading);
    for [flag, env, default] in &rows {
        if flag == "--config FILE" {
            continue;
        }
        let setting = settings
            .iter()
            .find(|s| format!("--{} {}", s.flag, s.value_name) == *flag)
            .unwrap_or_else(|| panic!("README {heading}: {flag} is not a setting's flag"));
        assert_eq!(*env, setting.env, "README {heading}: {flag}");
        if let Some(declared) = setting.default {
            assert_eq!(default, declared, "README {heading}: {flag}");
        }
    }
    for setting in settings {
        assert!(
            rows.iter().any(|[_, env, _]| env == setting.env),
            "README {heading} lacks {}",
            setting.env
        );
    }
}

#[test]
fn the_readme_tables_list_every_setting_with_its_env_flag_and_default() {
    let readme = repository_file("README.md");
    readme_documents(
        &readme,
        "### Controller (`crank controller`)",
        ControllerConfig::SETTINGS,
    );
    readme_documents(
        &readme,
        "### Worker (`crank worker`)",
        WorkerConfig::SETTINGS,
    );
    // Anywhere else in the README, a CONTROLLER_/WORKER_ variable is a setting's.
    let read: HashSet<&str> = [ControllerConfig::SETTINGS, WorkerConfig::SETTINGS]
        .concat()
        .iter()
        .map(|s| s.env)
        .collect();
    for word in readme.split(|c: char| !(c.is_ascii_uppercase() || c == '_')) {
        if word.starts_with("CONTROLLER_") || word.starts_with("WORKER_") {
            assert!(
                read.contains(word),
                "README names {word}, which is read nowhere"
            );
        }
    }
}
