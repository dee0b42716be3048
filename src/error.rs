//! How other crates' errors join the [`anyhow::Error`] chain that `main` prints
//! as one line (`crank <cmd>: <what failed>: <cause>`).

use std::fmt::Display;

/// `error` as a single link of an [`anyhow::Error`] chain, its message whole.
///
/// crank's library errors (thiserror) already end their message with their
/// cause and also return it as `source()`, so anyhow's `{:#}` would print the
/// cause twice; awc's errors are not `Send`, so anyhow cannot hold them at all.
pub fn flat(error: impl Display) -> anyhow::Error {
    anyhow::Error::msg(error.to_string())
}
