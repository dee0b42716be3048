//! `POST /route`: which worker serves this capability right now?

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `POST /route` body. Every field past `capability` is optional, and unknown
/// fields are accepted and ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteRequest {
    pub verb: String,
    pub capability: String,
    /// A semver requirement such as `^1` or `>=1.2, <2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Worker ids the caller would rather not be handed: those that just
    /// failed it. A hint: a controller that does not know it routes as if it
    /// were empty, and it is never sent empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
    /// `least_loaded` (the controller's default unless configured otherwise),
    /// `round_robin` or `cheapest`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<String>,
    /// Requirements a provider must meet (see [`SloConstraints`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo_constraints: Option<SloConstraints>,
    /// Providers whose `cost_tokens_per_invocation` exceeds this are skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_tokens: Option<f64>,
    /// What the caller bids for a provider's reserve: the last 20 % of a
    /// provider's capacity goes only to routes bidding at least the
    /// capability's announced `slo_bid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo_bid: Option<f64>,
    /// The original system's field: who the caller says it is. Logged, never
    /// trusted: the caller is its certificate's identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requester_identity: Option<String>,
    /// `low`, `normal` (the default) or `high`: while the capability breaches
    /// its SLO, `low` routes are shed (`503 slo_violation`). Kept as any JSON
    /// value: v1 callers sent free-form fields the original ignored, and a
    /// `priority` that is not a string is still ignored; a string must be
    /// one of the three.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<serde_json::Value>,
    /// The call's `Idempotency-Key`: providers are then ranked for it by
    /// rendezvous hashing, so a retry reaches the worker that kept the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

/// `slo_constraints` of a [`RouteRequest`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SloConstraints {
    /// A provider whose reported p95 latency for the capability exceeds this is
    /// skipped; one that reported none is allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_p95_ms: Option<f64>,
    /// `true`: only providers whose capability announces `requires_gpu: true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requires_gpu: Option<bool>,
    /// Any other key is a requirement on the capability's announced
    /// `constraints`: a number is a minimum (`"min_memory_mb": 4096` wants at
    /// least 4096), a string or bool must be equal.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl RouteRequest {
    pub fn new(verb: &str, capability: &str) -> Self {
        RouteRequest {
            verb: verb.to_owned(),
            capability: capability.to_owned(),
            version: None,
            exclude: Vec::new(),
            strategy: None,
            slo_constraints: None,
            budget_tokens: None,
            slo_bid: None,
            requester_identity: None,
            priority: None,
            idempotency_key: None,
        }
    }
}

/// `POST /route` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteResponse {
    pub worker_id: String,
    pub worker_url: String,
    /// `<verb>:<name>`.
    pub capability: String,
    /// The version of the capability the chosen worker serves.
    #[serde(default)]
    pub version: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclude_is_sent_only_when_there_is_something_to_exclude() {
        let plain = RouteRequest::new("invoke", "hello.greet");
        assert_eq!(
            serde_json::to_string(&plain).unwrap(),
            r#"{"verb":"invoke","capability":"hello.greet"}"#
        );
        let retry = RouteRequest {
            exclude: vec!["w1".into()],
            ..plain
        };
        assert_eq!(
            serde_json::to_string(&retry).unwrap(),
            r#"{"verb":"invoke","capability":"hello.greet","exclude":["w1"]}"#
        );
        let read: RouteRequest =
            serde_json::from_str(r#"{"verb":"invoke","capability":"x"}"#).unwrap();
        assert!(read.exclude.is_empty());
    }

    #[test]
    fn slo_constraints_keep_the_keys_they_do_not_name() {
        let read: RouteRequest = serde_json::from_str(
            r#"{"verb":"invoke","capability":"x","strategy":"cheapest","budget_tokens":3,
                "slo_constraints":{"latency_p95_ms":100,"requires_gpu":true,"min_memory_mb":4096}}"#,
        )
        .unwrap();
        let slo = read.slo_constraints.clone().unwrap();
        assert_eq!(slo.latency_p95_ms, Some(100.0));
        assert_eq!(slo.requires_gpu, Some(true));
        assert_eq!(slo.other["min_memory_mb"], 4096);
        assert_eq!(read.strategy.as_deref(), Some("cheapest"));
        let again: RouteRequest =
            serde_json::from_str(&serde_json::to_string(&read).unwrap()).unwrap();
        assert_eq!(again, read);
    }
}
