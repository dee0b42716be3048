//! [`Layers`]: a process's TOML file, environment and flags, read one
//! [`Setting`] at a time, each layer overriding the one before.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{ConfigError, Env, Origin, Setting};

/// The values given on the command line, by setting; the `crank` binary fills
/// it from its flags (see [`SettingFlags`](super::SettingFlags)).
///
/// It also carries the program's own defaults ([`Flags::default_to`]): a
/// program built on a process's settings (a worker made with
/// `crank_worker::Worker`) may default a setting differently from the
/// table, below every layer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flags {
    /// The TOML file to read first (`--config`).
    pub config: Option<PathBuf>,
    values: BTreeMap<&'static str, String>,
    defaults: BTreeMap<&'static str, String>,
}

impl Flags {
    /// Flags naming only the TOML file at `path`.
    pub fn with_config(path: impl Into<PathBuf>) -> Self {
        Flags {
            config: Some(path.into()),
            ..Flags::default()
        }
    }

    /// Records `--<flag> value` for `setting`.
    pub fn set(&mut self, setting: &Setting, value: impl Into<String>) {
        self.values.insert(setting.key, value.into());
    }

    /// These flags and `--<flag> value` for `setting`.
    pub fn with(mut self, setting: &Setting, value: impl Into<String>) -> Self {
        self.set(setting, value);
        self
    }

    /// Makes `value` this program's default for `setting`, in place of the
    /// table's: used when no file, variable or flag sets it.
    pub fn default_to(&mut self, setting: &Setting, value: impl Into<String>) {
        self.defaults.insert(setting.key, value.into());
    }

    /// The default of `setting` for this program: its own, or the table's.
    pub fn default_of(&self, setting: &Setting) -> Option<&str> {
        self.defaults
            .get(setting.key)
            .map(String::as_str)
            .or(setting.default)
    }

    fn get(&self, setting: &Setting) -> Option<&str> {
        self.values.get(setting.key).map(String::as_str)
    }
}

/// A TOML file's keys and where it was read from.
struct File {
    path: PathBuf,
    table: toml::Table,
}

/// The layers a process's settings are read from: the TOML file (if
/// `--config`) < the environment < the flags, over each [`Setting`]'s default.
pub struct Layers<'a> {
    settings: &'static [Setting],
    file: Option<File>,
    env: &'a dyn Env,
    flags: &'a Flags,
}

impl<'a> Layers<'a> {
    /// Reads the file named by `flags`, refusing keys not in `settings`.
    pub fn load(
        settings: &'static [Setting],
        env: &'a dyn Env,
        flags: &'a Flags,
    ) -> Result<Self, ConfigError> {
        let file = match &flags.config {
            Some(path) => Some(File {
                path: path.clone(),
                table: read_table(path, settings)?,
            }),
            None => None,
        };
        Ok(Layers {
            settings,
            file,
            env,
            flags,
        })
    }

    /// `setting`'s value parsed by `parse`; `None` if it is unset and has no
    /// default. A value `parse` refuses is an error naming the key and the
    /// layer it came from.
    pub fn optional<T>(
        &self,
        setting: &Setting,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        debug_assert!(
            self.settings.contains(setting),
            "{} is read but not in the process's settings",
            setting.key
        );
        let Some((value, origin)) = self.raw(setting)? else {
            return Ok(None);
        };
        parse(&value)
            .map(Some)
            .map_err(|problem| ConfigError::Invalid {
                key: setting.key,
                origin,
                value,
                problem,
            })
    }

    /// `setting`'s value parsed by `parse`, falling back to its default.
    pub fn value<T>(
        &self,
        setting: &Setting,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        self.optional(setting, parse)?
            .ok_or(ConfigError::Missing { key: setting.key })
    }

    /// The text of `setting` from the topmost layer that has it.
    fn raw(&self, setting: &Setting) -> Result<Option<(String, Origin)>, ConfigError> {
        if let Some(value) = self.flags.get(setting) {
            return Ok(Some((value.to_owned(), Origin::Flag(setting.flag))));
        }
        if let Some(value) = self.env.var(setting.env) {
            return Ok(Some((value, Origin::Env(setting.env))));
        }
        if let Some(file) = &self.file {
            if let Some(value) = file.table.get(setting.key) {
                let origin = Origin::File(file.path.clone());
                let text = match value {
                    toml::Value::String(text) => text.clone(),
                    toml::Value::Integer(number) => number.to_string(),
                    toml::Value::Float(number) => number.to_string(),
                    other => {
                        return Err(ConfigError::Invalid {
                            key: setting.key,
                            origin,
                            value: other.to_string(),
                            problem: "must be a string or a number".into(),
                        })
                    }
                };
                return Ok(Some((text, origin)));
            }
        }
        Ok(self
            .flags
            .default_of(setting)
            .map(|d| (d.to_owned(), Origin::Default)))
    }
}

/// The keys of the TOML file at `path`, all of them in `settings`.
fn read_table(path: &Path, settings: &[Setting]) -> Result<toml::Table, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    let table: toml::Table = toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    if let Some(unknown) = table
        .keys()
        .find(|key| !settings.iter().any(|s| s.key == key.as_str()))
    {
        return Err(ConfigError::UnknownKey {
            path: path.to_owned(),
            key: unknown.clone(),
            known: settings
                .iter()
                .map(|s| s.key)
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    Ok(table)
}
