//! The wire protocol (v1): the JSON bodies controller and workers exchange, and the
//! validation that turns an untrusted request into a value the registry can trust.
//!
//! The shapes are a superset of the original Python controller's API, so a worker
//! written against that API works unchanged. Validation is deliberately strict and
//! names the offending field, because an operator reading a 422 should know which
//! line of their worker's registration code to fix.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Longest accepted `worker_id`.
pub const MAX_WORKER_ID_LEN: usize = 128;
/// Most capabilities one worker may register.
pub const MAX_CAPABILITIES: usize = 256;
/// Longest accepted short string field (names, verbs, runtime, …).
pub const MAX_SHORT_STRING_LEN: usize = 256;
/// Longest accepted URL.
pub const MAX_URL_LEN: usize = 2048;

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

/// `POST /register` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegisterRequest {
    pub worker_id: String,
    pub worker_url: String,
    pub capabilities: Vec<Capability>,
}

/// `POST /register` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegisterResponse {
    pub status: String,
    pub worker_id: String,
    pub capabilities_registered: usize,
    /// How often the controller advises this worker to heartbeat (`stale_after / 4`).
    #[serde(default)]
    pub heartbeat_interval_s: Option<f64>,
    #[serde(default)]
    pub stale_after_s: Option<f64>,
}

/// What a worker reports of its own load with a heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Load {
    pub in_flight: u32,
    pub capacity: u32,
}

/// `POST /heartbeat` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeartbeatRequest {
    pub worker_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<Load>,
}

/// `POST /route` body. Unknown fields (the original's `slo_constraints`, …) are
/// accepted and ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteRequest {
    pub verb: String,
    pub capability: String,
    /// A semver requirement such as `^1` or `>=1.2, <2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// `POST /route` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteResponse {
    pub worker_id: String,
    pub worker_url: String,
    pub capability: String,
    /// The version of the capability the chosen worker serves.
    #[serde(default)]
    pub version: Option<String>,
}

/// A request field that failed validation: which one, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct FieldError {
    pub field: String,
    pub problem: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

/// Checks a `worker_id`: 1–128 characters of `[A-Za-z0-9._-]`.
pub fn validate_worker_id(field: &str, id: &str) -> Result<(), FieldError> {
    if id.is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    if id.len() > MAX_WORKER_ID_LEN {
        return Err(FieldError::new(
            field,
            format!("must be at most {MAX_WORKER_ID_LEN} characters"),
        ));
    }
    if let Some(bad) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(FieldError::new(
            field,
            format!("may contain only letters, digits, '.', '_' and '-', found {bad:?}"),
        ));
    }
    Ok(())
}

fn validate_short_string(field: &str, value: &str) -> Result<(), FieldError> {
    if value.len() > MAX_SHORT_STRING_LEN {
        return Err(FieldError::new(
            field,
            format!("must be at most {MAX_SHORT_STRING_LEN} characters"),
        ));
    }
    Ok(())
}

/// Checks a capability `verb` or `name`: non-empty, short, and free of whitespace
/// and `:` (which separates the two in routing keys).
fn validate_capability_word(field: &str, value: &str) -> Result<(), FieldError> {
    if value.is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    validate_short_string(field, value)?;
    if value.chars().any(|c| c.is_whitespace() || c == ':') {
        return Err(FieldError::new(field, "must not contain whitespace or ':'"));
    }
    Ok(())
}

/// Checks that `url` is an absolute `https://` URL with a host.
pub fn validate_worker_url(field: &str, url: &str) -> Result<(), FieldError> {
    if url.len() > MAX_URL_LEN {
        return Err(FieldError::new(
            field,
            format!("must be at most {MAX_URL_LEN} characters"),
        ));
    }
    let parsed = url::Url::parse(url)
        .map_err(|e| FieldError::new(field, format!("is not an absolute URL ({e})")))?;
    if parsed.scheme() != "https" {
        return Err(FieldError::new(
            field,
            format!("must use https, not {:?}", parsed.scheme()),
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(FieldError::new(field, "must name a host"));
    }
    Ok(())
}

impl Capability {
    fn validate(&self, at: &str) -> Result<(), FieldError> {
        validate_capability_word(&format!("{at}.name"), &self.name)?;
        validate_capability_word(&format!("{at}.verb"), &self.verb)?;
        semver::Version::parse(&self.version).map_err(|e| {
            FieldError::new(
                format!("{at}.version"),
                format!("{:?} is not a semantic version M.m.p ({e})", self.version),
            )
        })?;
        for (field, value) in [
            ("runtime", &self.runtime),
            ("env_profile", &self.env_profile),
            ("spiffe_id", &self.spiffe_id),
        ] {
            if let Some(value) = value {
                validate_short_string(&format!("{at}.{field}"), value)?;
            }
        }
        for (field, list) in [
            ("required_capabilities", &self.required_capabilities),
            ("controller_affinity", &self.controller_affinity),
        ] {
            for (i, value) in list.iter().flatten().enumerate() {
                validate_short_string(&format!("{at}.{field}[{i}]"), value)?;
            }
        }
        Ok(())
    }
}

impl RegisterRequest {
    /// Checks every field, naming the first one that is wrong.
    pub fn validate(&self) -> Result<(), FieldError> {
        validate_worker_id("worker_id", &self.worker_id)?;
        validate_worker_url("worker_url", &self.worker_url)?;
        if self.capabilities.is_empty() {
            return Err(FieldError::new(
                "capabilities",
                "must list at least one capability",
            ));
        }
        if self.capabilities.len() > MAX_CAPABILITIES {
            return Err(FieldError::new(
                "capabilities",
                format!("must list at most {MAX_CAPABILITIES} capabilities"),
            ));
        }
        let mut seen = HashSet::new();
        for (i, capability) in self.capabilities.iter().enumerate() {
            let at = format!("capabilities[{i}]");
            capability.validate(&at)?;
            if !seen.insert((&capability.verb, &capability.name, &capability.version)) {
                return Err(FieldError::new(
                    at,
                    format!(
                        "duplicate capability {}@{}",
                        capability.key(),
                        capability.version
                    ),
                ));
            }
        }
        Ok(())
    }
}

impl HeartbeatRequest {
    pub fn validate(&self) -> Result<(), FieldError> {
        validate_worker_id("worker_id", &self.worker_id)
    }
}

impl RouteRequest {
    /// Checks the fields and parses the optional version requirement.
    pub fn validate(&self) -> Result<Option<semver::VersionReq>, FieldError> {
        validate_capability_word("verb", &self.verb)?;
        validate_capability_word("capability", &self.capability)?;
        self.version
            .as_deref()
            .map(|req| {
                validate_short_string("version", req)?;
                semver::VersionReq::parse(req).map_err(|e| {
                    FieldError::new(
                        "version",
                        format!("{req:?} is not a semver requirement ({e})"),
                    )
                })
            })
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registration() -> RegisterRequest {
        RegisterRequest {
            worker_id: "hello-world-1".into(),
            worker_url: "https://localhost:8500".into(),
            capabilities: vec![Capability::new("invoke", "hello.greet", "1.0.0")],
        }
    }

    fn field_of(request: RegisterRequest) -> String {
        request.validate().unwrap_err().field
    }

    #[test]
    fn a_well_formed_registration_is_valid() {
        assert_eq!(registration().validate(), Ok(()));
    }

    #[test]
    fn each_bad_field_is_named() {
        let mut r = registration();
        r.worker_id = String::new();
        assert_eq!(field_of(r), "worker_id");

        let mut r = registration();
        r.worker_id = "a b".into();
        assert_eq!(field_of(r), "worker_id");

        let mut r = registration();
        r.worker_id = "x".repeat(129);
        assert_eq!(field_of(r), "worker_id");

        for url in [
            "http://localhost:8500",
            "localhost:8500",
            "/relative",
            "https://",
        ] {
            let mut r = registration();
            r.worker_url = url.into();
            assert_eq!(field_of(r), "worker_url", "{url}");
        }

        let mut r = registration();
        r.capabilities.clear();
        assert_eq!(field_of(r), "capabilities");

        let mut r = registration();
        r.capabilities[0].version = "1.0".into();
        assert_eq!(field_of(r), "capabilities[0].version");

        let mut r = registration();
        r.capabilities[0].verb = "in voke".into();
        assert_eq!(field_of(r), "capabilities[0].verb");

        let mut r = registration();
        r.capabilities.push(r.capabilities[0].clone());
        assert_eq!(field_of(r), "capabilities[1]");
    }

    #[test]
    fn two_versions_of_one_capability_are_not_duplicates() {
        let mut r = registration();
        r.capabilities
            .push(Capability::new("invoke", "hello.greet", "2.0.0"));
        assert_eq!(r.validate(), Ok(()));
    }

    #[test]
    fn route_version_must_be_a_requirement() {
        let mut route = RouteRequest {
            verb: "invoke".into(),
            capability: "hello.greet".into(),
            version: Some("^1".into()),
        };
        assert!(route.validate().unwrap().is_some());
        route.version = Some("not a version".into());
        assert_eq!(route.validate().unwrap_err().field, "version");
    }

    #[test]
    fn unknown_route_fields_are_ignored() {
        let route: RouteRequest = serde_json::from_str(
            r#"{"verb":"invoke","capability":"hello.greet","slo_constraints":{"p99_ms":5}}"#,
        )
        .unwrap();
        assert_eq!(route.capability, "hello.greet");
    }
}
