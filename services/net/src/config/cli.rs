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
//! `crank_worker::Worker`.

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

    /// The flags given on the command line (defaults are not flags).
    pub fn given(&self) -> &Flags {
        &self.flags
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
