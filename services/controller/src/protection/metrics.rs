//! The counters and gauges of [`Protection`](super::Protection), in a
//! registry of their own that `GET /metrics` appends:
//!
//! - `crank_policy_decisions_total{decision, mode}`;
//! - `crank_policy_mode{mode}`: 1 for the mode in force;
//! - `crank_protection_reload_failures_total`: reloads that kept the last
//!   good files;
//! - `crank_rate_limited_total{role, endpoint}`, and of those
//!   `crank_rate_limit_held_total{role, endpoint}`: refusals held by the
//!   [`Tarpit`](super::tarpit::Tarpit);
//! - `crank_slo_p95_seconds{capability}`,
//!   `crank_slo_availability_ratio{capability}`,
//!   `crank_slo_error_budget_remaining_ratio{capability}`,
//!   `crank_slo_breaching{capability}`;
//! - `crank_slo_shed_total{capability, priority}`.

use crank_net::identity::Role;
use crank_proto::domain::Priority;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

use super::limits::Endpoint;
use super::policy::{Decision, Mode};
use super::slo::SloState;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    decision: &'static str,
    mode: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModeLabel {
    mode: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitedLabels {
    role: &'static str,
    endpoint: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CapabilityLabel {
    capability: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ShedLabels {
    capability: String,
    priority: &'static str,
}

type FloatGauge = Gauge<f64, AtomicU64>;

pub struct ProtectionMetrics {
    pub registry: Registry,
    decisions: Family<DecisionLabels, Counter>,
    mode: Family<ModeLabel, Gauge>,
    reload_failures: Counter,
    limited: Family<LimitedLabels, Counter>,
    held: Family<LimitedLabels, Counter>,
    p95: Family<CapabilityLabel, FloatGauge>,
    availability: Family<CapabilityLabel, FloatGauge>,
    budget: Family<CapabilityLabel, FloatGauge>,
    breaching: Family<CapabilityLabel, Gauge>,
    shed: Family<ShedLabels, Counter>,
}

impl Default for ProtectionMetrics {
    fn default() -> Self {
        ProtectionMetrics::new()
    }
}

impl ProtectionMetrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let metrics = ProtectionMetrics {
            registry: Registry::default(),
            decisions: Family::default(),
            mode: Family::default(),
            reload_failures: Counter::default(),
            limited: Family::default(),
            held: Family::default(),
            p95: Family::default(),
            availability: Family::default(),
            budget: Family::default(),
            breaching: Family::default(),
            shed: Family::default(),
        };
        registry.register(
            "crank_policy_decisions",
            "Access policy decisions by outcome and mode",
            metrics.decisions.clone(),
        );
        registry.register(
            "crank_policy_mode",
            "1 for the access policy's mode in force",
            metrics.mode.clone(),
        );
        registry.register(
            "crank_protection_reload_failures",
            "Reloads of the policy or SLO files that failed and kept the last good ones",
            metrics.reload_failures.clone(),
        );
        registry.register(
            "crank_rate_limited",
            "Requests refused 429 by role and endpoint",
            metrics.limited.clone(),
        );
        registry.register(
            "crank_rate_limit_held",
            "Of the 429s, those held a second: past the free refusals of the caller's Retry-After window",
            metrics.held.clone(),
        );
        registry.register(
            "crank_slo_p95_seconds",
            "Each capability's p95 latency over the SLO window, from callers' reports",
            metrics.p95.clone(),
        );
        registry.register(
            "crank_slo_availability_ratio",
            "Each capability's share of successful calls over the SLO window",
            metrics.availability.clone(),
        );
        registry.register(
            "crank_slo_error_budget_remaining_ratio",
            "Each capability's error budget left over the SLO window (1: untouched)",
            metrics.budget.clone(),
        );
        registry.register(
            "crank_slo_breaching",
            "1 while a capability breaches its latency or availability target",
            metrics.breaching.clone(),
        );
        registry.register(
            "crank_slo_shed",
            "Routes refused 503 slo_violation by capability and priority",
            metrics.shed.clone(),
        );
        ProtectionMetrics {
            registry,
            ..metrics
        }
    }

    pub fn decision(&self, decision: &Decision, mode: Mode) {
        let decision = match decision {
            Decision::Allowed(_) => "allow",
            Decision::Denied => "deny",
        };
        self.decisions
            .get_or_create(&DecisionLabels {
                decision,
                mode: mode.as_str(),
            })
            .inc();
    }

    pub fn loaded(&self, mode: Mode) {
        for each in [Mode::Off, Mode::Shadow, Mode::Enforce] {
            let value = i64::from(each == mode);
            self.mode
                .get_or_create(&ModeLabel {
                    mode: each.as_str(),
                })
                .set(value);
        }
    }

    pub fn reload_failed(&self) {
        self.reload_failures.inc();
    }

    /// A `429` to a caller of `role` at `endpoint`; `held` by the tarpit.
    pub fn limited(&self, role: Role, endpoint: Endpoint, held: bool) {
        let labels = LimitedLabels {
            role: role.as_str(),
            endpoint: endpoint.as_str(),
        };
        self.limited.get_or_create(&labels).inc();
        if held {
            self.held.get_or_create(&labels).inc();
        }
    }

    pub fn shed(&self, capability: &str, priority: Priority) {
        self.shed
            .get_or_create(&ShedLabels {
                capability: capability.to_owned(),
                priority: priority.as_str(),
            })
            .inc();
    }

    pub fn slo_states(&self, states: &[SloState]) {
        for state in states {
            let label = CapabilityLabel {
                capability: state.spec.capability.clone(),
            };
            if let Some(p95) = state.p95_ms {
                self.p95.get_or_create(&label).set(p95 / 1000.0);
            }
            if let Some(availability) = state.availability {
                self.availability.get_or_create(&label).set(availability);
            }
            self.budget
                .get_or_create(&label)
                .set(state.budget_remaining);
            self.breaching
                .get_or_create(&label)
                .set(i64::from(state.breach.is_some()));
        }
    }
}
