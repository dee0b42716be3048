//! [`Rejection`] and [`NoRoute`]: why the [`router`](super::router) skipped
//! a provider, and why a route handed none out, as the `404
//! no_worker_available` detail says it.

use std::fmt;

use super::router::RESERVE_SHARE;
use crank_proto::domain::Requirement;

/// Why a provider was skipped.
#[derive(Debug, Clone, PartialEq)]
pub enum Rejection {
    Excluded,
    Draining,
    Stale,
    Ejected,
    NoMatchingVersion,
    NoGpu,
    Constraint(String, Requirement),
    OverBudget { cost: f64, budget: f64 },
    Slow { p95_ms: f64, bound_ms: f64 },
    AtCapacity,
    Reserved { bid: f64 },
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::Excluded => f.write_str("excluded by the caller"),
            Rejection::Draining => f.write_str("draining"),
            Rejection::Stale => f.write_str("stale"),
            Rejection::Ejected => f.write_str("ejected after reported failures"),
            Rejection::NoMatchingVersion => f.write_str("no matching version"),
            Rejection::NoGpu => f.write_str("no GPU"),
            Rejection::Constraint(key, requirement) => {
                write!(f, "constraint {key} {requirement} not met")
            }
            Rejection::OverBudget { cost, budget } => {
                write!(f, "cost {cost} tokens > budget {budget}")
            }
            Rejection::Slow { p95_ms, bound_ms } => {
                write!(f, "latency p95 {p95_ms} ms > {bound_ms} ms")
            }
            Rejection::AtCapacity => f.write_str("at capacity"),
            Rejection::Reserved { bid } => {
                write!(
                    f,
                    "last {:.0} % of capacity reserved for slo_bid ≥ {bid}",
                    RESERVE_SHARE * 100.0
                )
            }
        }
    }
}

/// Why no provider was handed out: the capability, and the providers skipped
/// per reason (none when nobody serves it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoRoute {
    pub capability: String,
    pub rejected: Vec<(usize, String)>,
    /// As in [`RouteChoice::ignored_constraints`](super::RouteChoice::ignored_constraints).
    pub ignored_constraints: Vec<String>,
}

impl fmt::Display for NoRoute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.capability)?;
        for (i, (count, reason)) in self.rejected.iter().enumerate() {
            let sep = if i == 0 { ": " } else { "; " };
            let noun = if *count == 1 { "provider" } else { "providers" };
            write!(f, "{sep}{count} {noun}: {reason}")?;
        }
        if !self.ignored_constraints.is_empty() {
            write!(
                f,
                " (ignored constraints no provider declares: {})",
                self.ignored_constraints.join(", ")
            )?;
        }
        Ok(())
    }
}
