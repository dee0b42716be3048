//! SLOs per capability (the original crank's ADR-0026): [`SloSpec`], read
//! from one YAML file per capability in `--slo-dir`, in the original's
//! schema:
//!
//! ```yaml
//! capability: {verb: invoke, name: hello.greet, version: "1.0.0"}
//! slo:
//!   latency: {p50_ms: 20, p95_ms: 50, p99_ms: 100}
//!   availability: {target: 0.999}
//!   error_budget: {monthly_pct: 0.1}
//! ```
//!
//! and [`SloBook`]: the outcome reports of the last window per capability,
//! its p95 and availability, and whether it breaches a target. While it
//! does, routes of `"priority": "low"` are shed (`503 slo_violation`).
//! Plain data and synchronous methods, tested here.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Deserialize;

/// Outcomes kept per capability: past it the oldest go first, so the window
/// is the shorter of `--slo-window` and the last this many calls.
pub const MAX_SAMPLES: usize = 100_000;
/// Outcomes a window needs before a breach is declared: one slow call of
/// three is noise, not an SLO breach.
pub const MIN_SAMPLES: usize = 20;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SloFile {
    capability: CapabilityFile,
    slo: Targets,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CapabilityFile {
    verb: String,
    name: String,
    #[serde(default)]
    version: Option<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Targets {
    #[serde(default)]
    latency: Option<LatencyTargets>,
    #[serde(default)]
    availability: Option<Availability>,
    #[serde(default)]
    error_budget: Option<ErrorBudget>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct LatencyTargets {
    p50_ms: Option<f64>,
    p95_ms: Option<f64>,
    p99_ms: Option<f64>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Availability {
    target: f64,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct ErrorBudget {
    monthly_pct: f64,
}

/// One capability's SLO.
#[derive(Debug, Clone, PartialEq)]
pub struct SloSpec {
    /// `verb:name`.
    pub capability: String,
    pub version: Option<String>,
    pub p95_ms: Option<f64>,
    pub availability: Option<f64>,
    /// The share of calls that may fail: `monthly_pct / 100` if given, else
    /// `1 - availability`.
    pub error_budget: f64,
    pub file: PathBuf,
}

fn latency(field: &str, value: Option<f64>) -> Result<Option<f64>, String> {
    match value {
        Some(ms) if !(ms.is_finite() && ms > 0.0 && ms <= 86_400_000.0) => Err(format!(
            "slo.latency.{field} is {ms}: a latency in milliseconds above 0, at most a day"
        )),
        other => Ok(other),
    }
}

impl SloSpec {
    /// Reads one SLO file; the error names the line and what is wrong.
    pub fn parse(text: &str, file: &Path) -> Result<Self, String> {
        let parsed: SloFile = yaml_serde::from_str(text).map_err(|e| match e.location() {
            Some(at) => format!("line {}: {e}", at.line()),
            None => e.to_string(),
        })?;
        let capability = format!("{}:{}", parsed.capability.verb, parsed.capability.name);
        crank_proto::domain::CapabilityKey::parse(
            "capability.verb",
            &parsed.capability.verb,
            "capability.name",
            &parsed.capability.name,
        )
        .map_err(|e| e.to_string())?;
        let targets = parsed.slo;
        let p95_ms = latency("p95_ms", targets.latency.and_then(|l| l.p95_ms))?;
        latency("p50_ms", targets.latency.and_then(|l| l.p50_ms))?;
        latency("p99_ms", targets.latency.and_then(|l| l.p99_ms))?;
        let availability = targets.availability.map(|a| a.target);
        if let Some(target) = availability.filter(|t| !(t.is_finite() && *t > 0.0 && *t <= 1.0)) {
            return Err(format!(
                "slo.availability.target is {target}: a share above 0, at most 1 (0.999 is three nines)"
            ));
        }
        let budget = match targets.error_budget {
            Some(ErrorBudget { monthly_pct }) if !(0.0..=100.0).contains(&monthly_pct) => {
                return Err(format!(
                    "slo.error_budget.monthly_pct is {monthly_pct}: a percentage from 0 to 100"
                ))
            }
            Some(ErrorBudget { monthly_pct }) => monthly_pct / 100.0,
            None => 1.0 - availability.unwrap_or(1.0),
        };
        if p95_ms.is_none() && availability.is_none() {
            return Err("sets neither slo.latency.p95_ms nor slo.availability.target: nothing to hold it to".into());
        }
        Ok(SloSpec {
            capability,
            version: parsed.capability.version,
            p95_ms,
            availability,
            error_budget: budget,
            file: file.to_owned(),
        })
    }

    /// Every `*.yml` and `*.yaml` file of `dir`, in name order; two files
    /// for one capability are refused.
    pub fn load_dir(dir: &Path) -> Result<Vec<SloSpec>, String> {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| format!("cannot read the SLO directory {}: {e}", dir.display()))?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.extension().is_some_and(|e| e == "yml" || e == "yaml"))
            .collect();
        files.sort();
        let mut specs: Vec<SloSpec> = Vec::new();
        for file in files {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            let spec =
                SloSpec::parse(&text, &file).map_err(|e| format!("{}: {e}", file.display()))?;
            if let Some(other) = specs.iter().find(|s| s.capability == spec.capability) {
                return Err(format!(
                    "{}: {} already has an SLO in {}",
                    file.display(),
                    spec.capability,
                    other.file.display()
                ));
            }
            specs.push(spec);
        }
        Ok(specs)
    }
}

/// Why a capability breaches its SLO.
#[derive(Debug, Clone, PartialEq)]
pub enum Breach {
    Latency { p95_ms: f64, target_ms: f64 },
    Availability { measured: f64, target: f64 },
}

impl std::fmt::Display for Breach {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Breach::Latency { p95_ms, target_ms } => {
                write!(
                    f,
                    "its p95 is {p95_ms:.1} ms, over the {target_ms} ms target"
                )
            }
            Breach::Availability { measured, target } => write!(
                f,
                "its availability is {:.3} %, under the {:.3} % target",
                measured * 100.0,
                target * 100.0
            ),
        }
    }
}

/// One capability's SLO as measured over the window.
#[derive(Debug, Clone, PartialEq)]
pub struct SloState {
    pub spec: SloSpec,
    pub samples: usize,
    pub p95_ms: Option<f64>,
    pub availability: Option<f64>,
    /// 1: no failure in the window; 0: the window's failures used the whole
    /// budget (or more).
    pub budget_remaining: f64,
    pub breach: Option<Breach>,
}

/// The outcomes of the last window, per capability with an SLO.
#[derive(Debug, Default)]
pub struct SloBook {
    window: Duration,
    specs: Vec<SloSpec>,
    /// When, the latency in ms if reported, and whether it succeeded.
    outcomes: HashMap<String, VecDeque<(Instant, Option<f32>, bool)>>,
}

impl SloBook {
    pub fn new(specs: Vec<SloSpec>, window: Duration) -> Self {
        SloBook {
            window,
            specs,
            outcomes: HashMap::new(),
        }
    }

    /// The specs replaced (a reload): outcomes of capabilities still held to
    /// an SLO are kept.
    pub fn replace_specs(&mut self, specs: Vec<SloSpec>) {
        self.outcomes
            .retain(|capability, _| specs.iter().any(|s| &s.capability == capability));
        self.specs = specs;
    }

    pub fn specs(&self) -> &[SloSpec] {
        &self.specs
    }

    /// One call's outcome, its latency if reported; ignored unless
    /// `capability` has an SLO.
    pub fn record(
        &mut self,
        capability: &str,
        latency: Option<Duration>,
        success: bool,
        now: Instant,
    ) {
        if !self.specs.iter().any(|s| s.capability == capability) {
            return;
        }
        let outcomes = self.outcomes.entry(capability.to_owned()).or_default();
        if outcomes.len() >= MAX_SAMPLES {
            outcomes.pop_front();
        }
        let ms = latency.map(|latency| (latency.as_secs_f64() * 1000.0) as f32);
        outcomes.push_back((now, ms, success));
    }

    /// Every SLO as measured over the window ending `now`.
    pub fn evaluate(&mut self, now: Instant) -> Vec<SloState> {
        let window = self.window;
        self.specs
            .iter()
            .map(|spec| {
                let outcomes = self.outcomes.entry(spec.capability.clone()).or_default();
                while outcomes
                    .front()
                    .is_some_and(|(at, _, _)| now.saturating_duration_since(*at) > window)
                {
                    outcomes.pop_front();
                }
                state(spec, outcomes)
            })
            .collect()
    }
}

fn state(spec: &SloSpec, outcomes: &VecDeque<(Instant, Option<f32>, bool)>) -> SloState {
    let samples = outcomes.len();
    let mut latencies: Vec<f32> = outcomes
        .iter()
        .filter(|(_, _, ok)| *ok)
        .filter_map(|(_, ms, _)| *ms)
        .collect();
    latencies.sort_by(f32::total_cmp);
    let p95_ms = (!latencies.is_empty()).then(|| {
        let rank = ((0.95 * latencies.len() as f64).ceil() as usize).clamp(1, latencies.len());
        latencies.get(rank - 1).map_or(0.0, |ms| f64::from(*ms))
    });
    let failures = outcomes.iter().filter(|(_, _, ok)| !*ok).count();
    let availability = (samples > 0).then(|| 1.0 - failures as f64 / samples as f64);
    let failed_share = availability.map_or(0.0, |a| 1.0 - a);
    let budget_remaining = if spec.error_budget > 0.0 {
        (1.0 - failed_share / spec.error_budget).clamp(0.0, 1.0)
    } else if failures == 0 {
        1.0
    } else {
        0.0
    };
    let breach = if samples < MIN_SAMPLES {
        None
    } else if let Some((p95, target)) = p95_ms.zip(spec.p95_ms).filter(|(p95, t)| p95 > t) {
        Some(Breach::Latency {
            p95_ms: p95,
            target_ms: target,
        })
    } else {
        availability
            .zip(spec.availability)
            .filter(|(measured, target)| measured < target)
            .map(|(measured, target)| Breach::Availability { measured, target })
    };
    SloState {
        spec: spec.clone(),
        samples,
        p95_ms,
        availability,
        budget_remaining,
        breach,
    }
}

#[cfg(test)]
#[path = "slo_tests.rs"]
mod tests;
