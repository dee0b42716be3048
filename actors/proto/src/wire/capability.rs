//! [`Capability`]: one capability a worker announces, with every optional field
//! of the original schema, and its routing key.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One capability a worker serves, as announced at registration.
///
/// Only `name`, `verb` and `version` are required; every optional field of the
/// original schema is kept and echoed back in `GET /workers/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Capability {
    pub name: String,
    pub verb: String,
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_schema: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requires_gpu: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_profile: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constraints: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spiffe_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_capabilities: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller_affinity: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_tokens_per_invocation: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo_bid: Option<f64>,
}

impl Capability {
    /// A capability with only the required fields set.
    pub fn new(verb: &str, name: &str, version: &str) -> Self {
        Capability {
            name: name.to_owned(),
            verb: verb.to_owned(),
            version: version.to_owned(),
            input_schema: None,
            output_schema: None,
            requires_gpu: None,
            max_concurrency: None,
            runtime: None,
            env_profile: None,
            constraints: None,
            slo: None,
            spiffe_id: None,
            required_capabilities: None,
            controller_affinity: None,
            cost_tokens_per_invocation: None,
            slo_bid: None,
        }
    }

    /// Whether any optional field is set.
    pub fn has_extras(&self) -> bool {
        let Capability {
            name: _,
            verb: _,
            version: _,
            input_schema,
            output_schema,
            requires_gpu,
            max_concurrency,
            runtime,
            env_profile,
            constraints,
            slo,
            spiffe_id,
            required_capabilities,
            controller_affinity,
            cost_tokens_per_invocation,
            slo_bid,
        } = self;
        input_schema.is_some()
            || output_schema.is_some()
            || requires_gpu.is_some()
            || max_concurrency.is_some()
            || runtime.is_some()
            || env_profile.is_some()
            || constraints.is_some()
            || slo.is_some()
            || spiffe_id.is_some()
            || required_capabilities.is_some()
            || controller_affinity.is_some()
            || cost_tokens_per_invocation.is_some()
            || slo_bid.is_some()
    }

    /// The routing key, `<verb>:<name>`.
    pub fn key(&self) -> String {
        capability_key(&self.verb, &self.name)
    }
}

/// The routing key of a capability: `<verb>:<name>`.
pub fn capability_key(verb: &str, name: &str) -> String {
    format!("{verb}:{name}")
}
