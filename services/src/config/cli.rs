//! A process's command line, built from its [`Setting`] table
//! ([`Layered::SETTINGS`]): `--config FILE` and one flag per setting, each
//! with the `[env: …]` and `[default: …]` its `--help` shows, declared once.
//!
//! Clap only reads the command line here. It is told each setting's
//! environment variable and default so that `--help` shows them, but only
//! values given as flags are kept: the file and the environment are read by
//! [`Layered::resolve`], the environment through the [`Env`] seam.
//!
//! [`SettingFlags`] is the `crank` binary's form (a `clap::Args` of one
//! process's settings); [`command`] and [`flags`] are the same for a program
//! that builds its own command, such as a worker made with
//! [`crate::worker::Worker`].

use std::marker::PhantomData;
use std::path::PathBuf;

use clap::parser::ValueSource;
use clap::{Arg, ArgMatches, Command};

use super::{ConfigError, Env, Flags, Layered, Setting};

/// `--config`'s id among the arguments.
const CONFIG: &str = "config";

/// The flag of `setting`, with its environment variable and `default` for `--help`.
fn flag(setting: &Setting, default: Option<&str>) -> Arg {
    let arg = Arg::new(setting.key)
        .long(setting.flag)
        .env(setting.env)
        .hide_env_values(true)
        .value_name(setting.value_name)
        .help(setting.help);
    match default {
        Some(default) => arg.default_value(default.to_owned()),
        None => arg,
    }
}

/// `command` with `--config` and a flag for each of `settings`, their
/// defaults as `program` has them ([`Flags::default_of`]).
pub fn command(command: Command, settings: &[Setting], program: &Flags) -> Command {
    let config = Arg::new(CONFIG)
        .long("config")
        .value_name("FILE")
        .value_parser(clap::value_parser!(PathBuf))
        .help(
            "TOML file of these settings, read before the environment and the flags (see config/)",
        );
    settings
        .iter()
        .fold(command.arg(config), |command, setting| {
            command.arg(flag(setting, program.default_of(setting)))
        })
}

/// `program` (its own defaults) with the flags of `matches` given on the
/// command line: a default or an environment value clap filled in is not a flag.
pub fn flags(matches: &ArgMatches, settings: &[Setting], program: Flags) -> Flags {
    let mut flags = program;
    flags.config = matches.get_one::<PathBuf>(CONFIG).cloned();
    for setting in settings {
        if matches.value_source(setting.key) == Some(ValueSource::CommandLine) {
            if let Some(value) = matches.get_one::<String>(setting.key) {
                flags.set(setting, value.clone());
            }
        }
    }
    flags
}

/// The flags of the process whose configuration is `C`, as a `clap::Args`
/// for the `crank` binary's subcommands.
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

impl<C: Layered> clap::Args for SettingFlags<C> {
    fn augment_args(cmd: Command) -> Command {
        command(cmd, C::SETTINGS, &Flags::default())
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}

impl<C: Layered> clap::FromArgMatches for SettingFlags<C> {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        Ok(SettingFlags {
            flags: flags(matches, C::SETTINGS, Flags::default()),
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

    use super::*;
    use crate::config::{ControllerConfig, WorkerConfig};

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
