//! [`WorkerLoad`]: a heartbeat's [`Load`] checked field by field, so the
//! router only ever computes with counts and latencies in a sane range.
//!
//! The wire's numbers are whatever a peer wrote (`1e300`, `-1`,
//! `18446744073709551615`); a latency of `1e300` ms once overflowed
//! `Duration::from_secs_f64` inside the registry and killed it. Here each
//! number gets a domain (a count up to [`MAX_COUNT`], a latency up to a day, a
//! window of at least a millisecond, a share from 0 to 1), and the first one
//! outside it is refused with its path, e.g. `load.capabilities[0].p50_ms`.

use std::time::Duration;

use super::field::capability_word;
use super::registration::MAX_CAPABILITIES;
use super::FieldError;
use crate::wire::{CapabilityLoad, Load};

/// Largest count (in flight, capacity, `max_concurrency`) the controller
/// accepts: a million concurrent requests on one worker is already absurd,
/// and it keeps every sum of counts far inside `u32` and exact in `f64`.
pub const MAX_COUNT: u32 = 1_000_000;
/// Most requests one load window may report: a million a second for a day.
pub const MAX_REQUESTS: u64 = 86_400_000_000;
/// The longest latency a peer may report, in milliseconds: a day.
pub const MAX_LATENCY_MS: f64 = 86_400_000.0;
/// The shortest and longest load window, in seconds.
pub const MIN_WINDOW_S: f64 = 0.001;
pub const MAX_WINDOW_S: f64 = 86_400.0;

/// What a worker reported of its load, every figure in range.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkerLoad {
    pub in_flight: u32,
    pub capacity: u32,
    pub capabilities: Vec<MeasuredCapability>,
}

/// One capability's figures of a [`WorkerLoad`].
#[derive(Debug, Clone, PartialEq)]
pub struct MeasuredCapability {
    /// `<verb>:<name>`.
    pub capability: String,
    pub in_flight: u32,
    pub requests: u64,
    pub window: Duration,
    pub p50: Option<Duration>,
    pub p95: Option<Duration>,
    /// From 0 to 1.
    pub error_rate: Option<f64>,
}

impl MeasuredCapability {
    /// The reported p95 in milliseconds, as routes state their bound.
    pub fn p95_ms(&self) -> Option<f64> {
        self.p95.map(|p95| p95.as_secs_f64() * 1000.0)
    }
}

/// A worker's load as one of its answers reported it (a checked
/// [`AnswerLoad`](crate::wire::AnswerLoad), the `crank-load` header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObservedLoad {
    pub in_flight: u32,
    /// At least 1.
    pub capacity: u32,
    pub service_time: Duration,
}

impl TryFrom<&crate::wire::AnswerLoad> for ObservedLoad {
    type Error = FieldError;

    fn try_from(load: &crate::wire::AnswerLoad) -> Result<Self, FieldError> {
        let capacity = count("load.capacity", load.capacity)?;
        if capacity == 0 {
            return Err(FieldError::new("load.capacity", "0 is not a capacity"));
        }
        Ok(ObservedLoad {
            in_flight: count("load.in_flight", load.in_flight)?,
            capacity,
            service_time: latency_ms("load.service_ms", load.service_ms)?,
        })
    }
}

/// A count of at most [`MAX_COUNT`].
pub fn count(field: &str, value: u32) -> Result<u32, FieldError> {
    if value > MAX_COUNT {
        return Err(FieldError::new(
            field,
            format!("{value} is more than {MAX_COUNT}"),
        ));
    }
    Ok(value)
}

/// A latency in milliseconds from 0 to a day, as a [`Duration`].
pub fn latency_ms(field: &str, ms: f64) -> Result<Duration, FieldError> {
    if !(ms.is_finite() && (0.0..=MAX_LATENCY_MS).contains(&ms)) {
        return Err(FieldError::new(
            field,
            format!("{ms} is not a latency in milliseconds (0 to a day)"),
        ));
    }
    Duration::try_from_secs_f64(ms / 1000.0).map_err(|e| FieldError::new(field, e.to_string()))
}

/// A share from 0 to 1.
fn share(field: &str, value: f64) -> Result<f64, FieldError> {
    if !(value.is_finite() && (0.0..=1.0).contains(&value)) {
        return Err(FieldError::new(
            field,
            format!("{value} is not a share from 0 to 1"),
        ));
    }
    Ok(value)
}

/// A window from [`MIN_WINDOW_S`] to [`MAX_WINDOW_S`] seconds.
fn window(field: &str, seconds: f64) -> Result<Duration, FieldError> {
    if !(seconds.is_finite() && (MIN_WINDOW_S..=MAX_WINDOW_S).contains(&seconds)) {
        return Err(FieldError::new(
            field,
            format!("{seconds} is not a window in seconds (a millisecond to a day)"),
        ));
    }
    Duration::try_from_secs_f64(seconds).map_err(|e| FieldError::new(field, e.to_string()))
}

impl TryFrom<&CapabilityLoad> for MeasuredCapability {
    type Error = FieldError;

    /// Field names are relative (`p50_ms`); [`WorkerLoad::parse`] prefixes them.
    fn try_from(wire: &CapabilityLoad) -> Result<Self, FieldError> {
        let (verb, name) = wire
            .capability
            .split_once(':')
            .ok_or_else(|| FieldError::new("capability", "must be <verb>:<name>"))?;
        capability_word("capability", verb)?;
        capability_word("capability", name)?;
        if wire.requests > MAX_REQUESTS {
            return Err(FieldError::new(
                "requests",
                format!("{} is more than {MAX_REQUESTS}", wire.requests),
            ));
        }
        Ok(MeasuredCapability {
            capability: wire.capability.clone(),
            in_flight: count("in_flight", wire.in_flight)?,
            requests: wire.requests,
            window: window("window_s", wire.window_s)?,
            p50: wire.p50_ms.map(|ms| latency_ms("p50_ms", ms)).transpose()?,
            p95: wire.p95_ms.map(|ms| latency_ms("p95_ms", ms)).transpose()?,
            error_rate: wire
                .error_rate
                .map(|rate| share("error_rate", rate))
                .transpose()?,
        })
    }
}

impl WorkerLoad {
    /// Parses `load`, naming fields under `at` (`load`).
    pub fn parse(at: &str, load: &Load) -> Result<Self, FieldError> {
        if load.capabilities.len() > MAX_CAPABILITIES {
            return Err(FieldError::new(
                format!("{at}.capabilities"),
                format!("must list at most {MAX_CAPABILITIES} capabilities"),
            ));
        }
        let capabilities = load
            .capabilities
            .iter()
            .enumerate()
            .map(|(i, c)| {
                MeasuredCapability::try_from(c).map_err(|e| {
                    FieldError::new(format!("{at}.capabilities[{i}].{}", e.field), e.problem)
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(WorkerLoad {
            in_flight: count(&format!("{at}.in_flight"), load.in_flight)?,
            capacity: count(&format!("{at}.capacity"), load.capacity)?,
            capabilities,
        })
    }

    /// The figures of capability `key`, if the worker reports per capability.
    pub fn capability(&self, key: &str) -> Option<&MeasuredCapability> {
        self.capabilities.iter().find(|c| c.capability == key)
    }

    /// Back to the wire's shape, for `GET /workers/{id}`.
    pub fn to_wire(&self) -> Load {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        Load {
            in_flight: self.in_flight,
            capacity: self.capacity,
            capabilities: self
                .capabilities
                .iter()
                .map(|c| CapabilityLoad {
                    capability: c.capability.clone(),
                    in_flight: c.in_flight,
                    requests: c.requests,
                    window_s: c.window.as_secs_f64(),
                    p50_ms: c.p50.map(ms),
                    p95_ms: c.p95.map(ms),
                    error_rate: c.error_rate,
                })
                .collect(),
        }
    }
}

impl TryFrom<&Load> for WorkerLoad {
    type Error = FieldError;

    fn try_from(load: &Load) -> Result<Self, FieldError> {
        WorkerLoad::parse("load", load)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured(p50_ms: f64) -> Load {
        Load {
            in_flight: 0,
            capacity: 4,
            capabilities: vec![CapabilityLoad {
                capability: "invoke:num.op".into(),
                in_flight: 0,
                requests: 1,
                window_s: 10.0,
                p50_ms: Some(p50_ms),
                p95_ms: None,
                error_rate: None,
            }],
        }
    }

    #[test]
    fn an_absurd_latency_is_refused_naming_its_path() {
        for bad in [1e300, f64::MAX, -1.0, -1e300, f64::NAN, f64::INFINITY] {
            let error = WorkerLoad::try_from(&measured(bad)).unwrap_err();
            assert_eq!(error.field, "load.capabilities[0].p50_ms", "{bad}");
        }
    }

    #[test]
    fn tiny_and_ordinary_latencies_pass() {
        for good in [0.0, 1e-300, 1.5, MAX_LATENCY_MS] {
            let load = WorkerLoad::try_from(&measured(good)).unwrap();
            assert!(load.capability("invoke:num.op").unwrap().p50.is_some());
        }
    }

    #[test]
    fn counts_windows_and_shares_have_bounds() {
        let mut load = measured(1.0);
        load.capacity = u32::MAX;
        assert_eq!(
            WorkerLoad::try_from(&load).unwrap_err().field,
            "load.capacity"
        );
        let mut load = measured(1.0);
        load.capabilities[0].window_s = 0.0;
        assert_eq!(
            WorkerLoad::try_from(&load).unwrap_err().field,
            "load.capabilities[0].window_s"
        );
        let mut load = measured(1.0);
        load.capabilities[0].requests = u64::MAX;
        assert_eq!(
            WorkerLoad::try_from(&load).unwrap_err().field,
            "load.capabilities[0].requests"
        );
        let mut load = measured(1.0);
        load.capabilities[0].error_rate = Some(1.5);
        assert_eq!(
            WorkerLoad::try_from(&load).unwrap_err().field,
            "load.capabilities[0].error_rate"
        );
        let mut load = measured(1.0);
        load.capabilities[0].capability = "no-colon".into();
        assert_eq!(
            WorkerLoad::try_from(&load).unwrap_err().field,
            "load.capabilities[0].capability"
        );
    }

    #[test]
    fn a_checked_load_reads_back_as_sent() {
        let load = measured(500.0);
        assert_eq!(WorkerLoad::try_from(&load).unwrap().to_wire(), load);
    }
}
