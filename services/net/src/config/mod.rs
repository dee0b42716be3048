//! Process configuration, layered as TOML file < environment < command-line
//! flags.
//!
//! Each process declares every setting once, as a [`Setting`] in its table
//! ([`Layered::SETTINGS`]): its file key, flag, environment variable, default and
//! help. [`Layers`] reads each setting from the file, the environment (through
//! the [`Env`] trait, so the layering is tested without touching the process
//! environment) and the flags, and [`Layered::from_layers`] parses and validates
//! it into a process's config (`ControllerConfig` in crank-controller, `WorkerConfig` in crank-worker). The command line, flags
//! and `--help`, is built from the same table ([`SettingFlags`], [`cli`]).

pub mod cli;
mod env;
mod error;
mod layers;
pub mod parse;
mod setting;

pub use cli::SettingFlags;
pub use env::{Env, ProcessEnv};
pub use error::{ConfigError, Origin};
pub use layers::{Flags, Layers};
pub use parse::parse_duration;
pub use setting::Setting;

/// A process's configuration, read key by key from its [`Setting`] table.
pub trait Layered: Sized {
    /// Every setting of the process, each once.
    const SETTINGS: &'static [Setting];

    /// Reads and validates each setting from `layers`.
    fn from_layers(layers: &Layers) -> Result<Self, ConfigError>;

    /// The file named by `flags` (if any) < `env` < `flags`, over the defaults.
    fn resolve(env: &dyn Env, flags: &Flags) -> Result<Self, ConfigError> {
        Self::from_layers(&Layers::load(Self::SETTINGS, env, flags)?)
    }

    /// The setting whose file key is `key`.
    ///
    /// # Panics
    ///
    /// If the process has no such setting: keys are written in code, not read.
    fn setting(key: &str) -> &'static Setting {
        Self::SETTINGS
            .iter()
            .find(|setting| setting.key == key)
            .unwrap_or_else(|| panic!("no setting {key:?}"))
    }
}
