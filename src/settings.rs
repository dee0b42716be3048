//! The flags of `crank controller` and `crank worker`, built from each
//! process's [`Setting`] table ([`Layered::SETTINGS`]), so that every flag, with
//! the `[env: …]` and `[default: …]` its `--help` shows, is declared once.
//!
//! Clap only reads the command line here. It is told each setting's
//! environment variable and default so that `--help` shows them, but only
//! values given as flags are kept: the file and the environment are read by
//! [`Layered::resolve`], the environment through the [`Env`] seam.

use std::marker::PhantomData;
use std::path::PathBuf;

use clap::parser::ValueSource;
use clap::{Arg, ArgMatches, Command};
use crank_services::config::{ConfigError, Env, Flags, Layered, Setting};

/// `--config`'s id among the arguments.
const CONFIG: &str = "config";

/// The flags of the process whose configuration is `C`.
#[derive(Debug, Clone)]
pub struct SettingFlags<C> {
    flags: Flags,
    process: PhantomData<C>,
}

impl<C: Layered> SettingFlags<C> {
    /// The configuration: the `--config` file < `env` < these flags.
    pub fn resolve(&self, env: &dyn Env) -> Result<C, ConfigError> {
        C::resolve(env, &self.flags)
    }
}

/// The flag of `setting`, with its environment variable and default for `--help`.
fn flag(setting: &Setting) -> Arg {
    let arg = Arg::new(setting.key)
        .long(setting.flag)
        .env(setting.env)
        .hide_env_values(true)
        .value_name(setting.value_name)
        .help(setting.help);
    match setting.default {
        Some(default) => arg.default_value(default),
        None => arg,
    }
}

impl<C: Layered> clap::Args for SettingFlags<C> {
    fn augment_args(command: Command) -> Command {
        let config = Arg::new(CONFIG)
            .long("config")
            .value_name("FILE")
            .value_parser(clap::value_parser!(PathBuf))
            .help("TOML file of these settings, read before the environment and the flags (see config/)");
        C::SETTINGS
            .iter()
            .fold(command.arg(config), |command, setting| {
                command.arg(flag(setting))
            })
    }

    fn augment_args_for_update(command: Command) -> Command {
        Self::augment_args(command)
    }
}

impl<C: Layered> clap::FromArgMatches for SettingFlags<C> {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut flags = Flags::default();
        flags.config = matches.get_one::<PathBuf>(CONFIG).cloned();
        for setting in C::SETTINGS {
            // A default or an environment value clap filled in is not a flag.
            if matches.value_source(setting.key) == Some(ValueSource::CommandLine) {
                if let Some(value) = matches.get_one::<String>(setting.key) {
                    flags.set(setting, value.clone());
                }
            }
        }
        Ok(SettingFlags {
            flags,
            process: PhantomData,
        })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use clap::{Args, FromArgMatches};
    use crank_services::config::{ControllerConfig, WorkerConfig};

    use super::*;

    fn parse<C: Layered>(args: &[&str]) -> SettingFlags<C> {
        let command = SettingFlags::<C>::augment_args(Command::new("process"));
        let matches = command
            .try_get_matches_from(std::iter::once("process").chain(args.iter().copied()))
            .unwrap();
        SettingFlags::from_arg_matches(&matches).unwrap()
    }

    fn help<C: Layered>() -> String {
        SettingFlags::<C>::augment_args(Command::new("process"))
            .term_width(0)
            .render_long_help()
            .to_string()
    }

    #[test]
    fn help_shows_each_settings_flag_env_and_default() {
        for (settings, help) in [
            (ControllerConfig::SETTINGS, help::<ControllerConfig>()),
            (WorkerConfig::SETTINGS, help::<WorkerConfig>()),
        ] {
            for setting in settings {
                let line = help
                    .split("\n\n")
                    .find(|entry| entry.contains(&format!("--{} <", setting.flag)))
                    .unwrap_or_else(|| panic!("no --{} in\n{help}", setting.flag));
                assert!(line.contains(&format!("[env: {}", setting.env)), "{line}");
                if let Some(default) = setting.default {
                    assert!(line.contains(&format!("[default: {default}]")), "{line}");
                }
            }
        }
    }

    #[test]
    fn only_flags_given_on_the_command_line_are_kept() {
        let port = ControllerConfig::SETTINGS
            .iter()
            .find(|s| s.key == "port")
            .unwrap();
        let flags = parse::<ControllerConfig>(&["--port", "9300"]);
        let expected = Flags::default().with(port, "9300");
        assert_eq!(flags.flags, expected, "defaults are not flags");
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
