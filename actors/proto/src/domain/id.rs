//! [`WorkerId`]: a worker's id, checked once.

use std::fmt;

use super::FieldError;

/// Longest accepted worker id.
pub const MAX_WORKER_ID_LEN: usize = 128;

/// A worker id: 1–128 characters of `[A-Za-z0-9._-]`. The only place that rule
/// lives; certificate names and request fields are parsed through it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkerId(String);

impl WorkerId {
    /// Parses `value`, naming `field` if it is not a valid id.
    pub fn parse(field: &str, value: &str) -> Result<Self, FieldError> {
        if value.is_empty() {
            return Err(FieldError::new(field, "must not be empty"));
        }
        if value.len() > MAX_WORKER_ID_LEN {
            return Err(FieldError::new(
                field,
                format!("must be at most {MAX_WORKER_ID_LEN} characters"),
            ));
        }
        if let Some(bad) = value
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        {
            return Err(FieldError::new(
                field,
                format!("may contain only letters, digits, '.', '_' and '-', found {bad:?}"),
            ));
        }
        Ok(WorkerId(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl TryFrom<&str> for WorkerId {
    type Error = FieldError;

    fn try_from(value: &str) -> Result<Self, FieldError> {
        WorkerId::parse("worker_id", value)
    }
}

impl AsRef<str> for WorkerId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for WorkerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Longest accepted instance token.
pub const MAX_INSTANCE_LEN: usize = 64;

/// A worker process's instance: 1–64 characters of `[A-Za-z0-9-]`, fixed for
/// the life of the process ([`InstanceId::random`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InstanceId(String);

impl InstanceId {
    /// Parses `value`, naming `field` if it is not a valid instance token.
    pub fn parse(field: &str, value: &str) -> Result<Self, FieldError> {
        let valid = !value.is_empty()
            && value.len() <= MAX_INSTANCE_LEN
            && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !valid {
            return Err(FieldError::new(
                field,
                format!("must be 1 to {MAX_INSTANCE_LEN} letters, digits or '-'"),
            ));
        }
        Ok(InstanceId(value.to_owned()))
    }

    /// A fresh random instance (128 bits, hex).
    pub fn random() -> Self {
        InstanceId(format!("{:032x}", rand::random::<u128>()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instances_are_short_tokens_and_random_ones_parse() {
        let random = InstanceId::random();
        assert_eq!(InstanceId::parse("instance", random.as_str()), Ok(random));
        for bad in ["", "a b", "a/b", &"x".repeat(65)] {
            assert!(InstanceId::parse("instance", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ids_follow_one_rule() {
        assert!(WorkerId::try_from("hello-world_1.a").is_ok());
        for bad in ["", "a b", "a/b", "é", &"x".repeat(129)] {
            assert_eq!(
                WorkerId::try_from(bad).unwrap_err().field,
                "worker_id",
                "{bad:?}"
            );
        }
        assert!(WorkerId::try_from("x".repeat(128).as_str()).is_ok());
    }
}
