//! [`Setting`]: one key of a process's configuration, declared once.

/// One configuration key: its name in the TOML file, its flag, its environment
/// variable and its default.
///
/// Each process lists its settings in one table, [`Layered::SETTINGS`]: the
/// `crank` binary builds the process's flags and their `--help` from it,
/// [`Layers`] reads the file, the environment and the flags by it, and tests
/// check the README and the shipped config files against it.
///
/// [`Layered::SETTINGS`]: super::Layered::SETTINGS
/// [`Layers`]: super::Layers
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    /// Key in the TOML file; errors name it.
    pub key: &'static str,
    /// Long command-line flag, without the leading `--`.
    pub flag: &'static str,
    /// Environment variable.
    pub env: &'static str,
    /// Placeholder for the value in `--help` (`N`, `D`, `URL`…).
    pub value_name: &'static str,
    /// Default, written as on the command line; `None`: unset unless given.
    pub default: Option<&'static str>,
    /// One line for `--help`.
    pub help: &'static str,
}
