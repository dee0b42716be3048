//! Settings: the layering, parsing and validation of `ControllerConfig` and
//! `WorkerConfig` (`layering`), and that every setting is read and
//! documented where an operator looks (`documented`), and the command line
//! built from the same tables (`cli`).

mod layering {
    // The layering, the parsing and the validation of [`ControllerConfig`] and
    // [`WorkerConfig`].

    use std::collections::HashMap;
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    use crank_controller::config::ControllerConfig;
    use crank_net::config::{parse_duration, ConfigError, Flags, Layered, Origin};
    use crank_worker::config::WorkerConfig;

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
        let flags = Flags::with_config(file).with(ControllerConfig::setting("port"), "9300");
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
        let error =
            ControllerConfig::resolve(&HashMap::new(), &Flags::with_config(&file)).unwrap_err();
        assert!(error.to_string().contains("stale_afterr"), "{error}");

        std::fs::write(&file, "port = [9000]\n").unwrap();
        let error =
            ControllerConfig::resolve(&HashMap::new(), &Flags::with_config(&file)).unwrap_err();
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
            error.to_string().contains("CONTROLLER_HTTPS_PORT")
                && error.to_string().contains("port"),
            "{error}"
        );
    }

    #[test]
    fn the_shipped_config_files_parse_to_the_defaults() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
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

        let flags = Flags::default().with(WorkerConfig::setting("deregister_timeout"), "0s");
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
        let flags = Flags::default().with(WorkerConfig::setting("worker_id"), "no spaces");
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
        let flags = Flags::default().with(ControllerConfig::setting("stale_after"), "4ms");
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
}

mod documented {
    // Every setting is read, and documented where an operator looks: the README's
    // settings tables and the shipped `config/*.toml` files name each key with its
    // environment variable, flag and default, and name nothing else.

    use std::collections::{HashMap, HashSet};
    use std::fmt::Debug;
    use std::path::Path;

    use crank_controller::config::ControllerConfig;
    use crank_net::config::{Flags, Layered, Setting};
    use crank_worker::config::WorkerConfig;

    /// Two values for `key`, different from each other and from its default.
    fn samples(key: &str) -> [&'static str; 2] {
        match key {
            "bind" => ["0.0.0.0", "10.1.2.3"],
            "port" => ["9101", "9102"],
            "http_workers" => ["3", "4"],
            "capacity" => ["8", "16"],
            "protect_threshold" => ["0.25", "0.75"],
            "store" => ["etcd", "memory"],
            "data_dir" => ["/var/lib/crank-a", "/var/lib/crank-b"],
            "fsync" => ["always", "never"],
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
            "policy" => ["/etc/crank/policy-a.toml", "/etc/crank/policy-b.toml"],
            "slo_dir" => ["/etc/crank/slos-a", "/etc/crank/slos-b"],
            "route_rate" | "register_rate" | "report_rate" => ["10/s", "30/m"],
            "rate_burst" => ["5", "50"],
            "otlp_endpoint" => ["http://otel-a:4318", "http://otel-b:4318/base"],
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
            | "service_time"
            | "drain_timeout"
            | "slo_window" => ["3s", "7s"],
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
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
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
    fn the_configuration_tables_list_every_setting_with_its_env_flag_and_default() {
        let tables = repository_file("docs/configuration.md");
        readme_documents(
            &tables,
            "## Controller (`crank controller`)",
            ControllerConfig::SETTINGS,
        );
        readme_documents(
            &tables,
            "## Worker (`crank worker`)",
            WorkerConfig::SETTINGS,
        );
        // Anywhere else in the README and the manual, a CONTROLLER_/WORKER_
        // variable is a setting's.
        let mut readme = repository_file("README.md");
        for entry in std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs")).unwrap()
        {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "md") {
                readme.push_str(&std::fs::read_to_string(path).unwrap());
            }
        }
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
}

mod cli {
    use std::collections::HashMap;
    use std::time::Duration;

    use clap::{Args, FromArgMatches};

    use clap::Command;
    use crank_controller::config::ControllerConfig;
    use crank_net::config::cli::*;
    use crank_net::config::{Flags, Layered};
    use crank_worker::config::WorkerConfig;

    fn parse<C: Layered>(args: &[&str]) -> SettingFlags<C> {
        let command = SettingFlags::<C>::augment_args(Command::new("process"));
        let matches = command
            .try_get_matches_from(std::iter::once("process").chain(args.iter().copied()))
            .unwrap();
        SettingFlags::from_arg_matches(&matches).unwrap()
    }

    fn help(command: Command) -> String {
        command.term_width(0).render_long_help().to_string()
    }

    /// The help entry of `--<flag>`.
    fn entry<'a>(help: &'a str, flag: &str) -> &'a str {
        help.split("\n\n")
            .find(|entry| entry.contains(&format!("--{flag} <")))
            .unwrap_or_else(|| panic!("no --{flag} in\n{help}"))
    }

    #[test]
    fn help_shows_each_settings_flag_env_and_default() {
        for (settings, help) in [
            (
                ControllerConfig::SETTINGS,
                help(SettingFlags::<ControllerConfig>::augment_args(
                    Command::new("process"),
                )),
            ),
            (
                WorkerConfig::SETTINGS,
                help(SettingFlags::<WorkerConfig>::augment_args(Command::new(
                    "process",
                ))),
            ),
        ] {
            for setting in settings {
                let line = entry(&help, setting.flag);
                assert!(line.contains(&format!("[env: {}", setting.env)), "{line}");
                if let Some(default) = setting.default {
                    assert!(line.contains(&format!("[default: {default}]")), "{line}");
                }
            }
        }
    }

    #[test]
    fn a_programs_own_default_is_shown_and_used_below_every_layer() {
        let worker_id = WorkerConfig::setting("worker_id");
        let mut program = Flags::default();
        program.default_to(worker_id, "echo");
        let cmd = command(Command::new("echo"), WorkerConfig::SETTINGS, &program);
        assert!(entry(&help(cmd.clone()), "worker-id").contains("[default: echo]"));

        let resolve = |args: &[&str], env: &HashMap<&str, &str>| {
            let matches = cmd
                .clone()
                .try_get_matches_from(std::iter::once("echo").chain(args.iter().copied()))
                .unwrap();
            WorkerConfig::resolve(
                env,
                &flags(&matches, WorkerConfig::SETTINGS, program.clone()),
            )
            .unwrap()
            .worker_id
        };
        let no_env = HashMap::new();
        assert_eq!(resolve(&[], &no_env), "echo");
        let env = HashMap::from([("WORKER_ID", "echo.2")]);
        assert_eq!(resolve(&[], &env), "echo.2");
        assert_eq!(resolve(&["--worker-id", "echo.3"], &env), "echo.3");
        // Without it, the table's default.
        assert_eq!(
            WorkerConfig::resolve(&no_env, &Flags::default())
                .unwrap()
                .worker_id,
            "hello-world-1"
        );
    }

    #[test]
    fn only_flags_given_on_the_command_line_are_kept() {
        let port = ControllerConfig::setting("port");
        let flags = parse::<ControllerConfig>(&["--port", "9300"]);
        let expected = Flags::default().with(port, "9300");
        assert_eq!(flags.given(), &expected, "defaults are not flags");
    }

    #[test]
    fn file_then_env_then_flags_from_the_command_line() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("worker.toml");
        std::fs::write(&file, "port = 8100\ncontroller_timeout = 1\n").unwrap();
        let file_arg = file.to_str().unwrap();
        let env = HashMap::from([
            ("WORKER_HTTPS_PORT", "8200"),
            ("WORKER_CONTROLLER_TIMEOUT", "2s"),
        ]);
        let port = |args: &[&str], env: &HashMap<&str, &str>| {
            parse::<WorkerConfig>(args).resolve(env).unwrap().port
        };
        let no_env = HashMap::new();
        assert_eq!(port(&[], &no_env), 8500, "default");
        assert_eq!(port(&["--config", file_arg], &no_env), 8100, "file");
        assert_eq!(port(&["--config", file_arg], &env), 8200, "env over file");
        let args = ["--config", file_arg, "--port", "8300"];
        assert_eq!(port(&args, &env), 8300, "flag over env");
        let config = parse::<WorkerConfig>(&args).resolve(&env).unwrap();
        assert_eq!(config.controller_timeout, Duration::from_secs(2));
    }
}
