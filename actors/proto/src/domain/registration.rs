//! [`Registration`]: a [`RegisterRequest`] that has been checked field by field,
//! with each capability's version parsed, so the registry never re-parses.

use std::collections::HashSet;
use std::fmt;

use semver::Version;

use serde_json::{Map, Value};

use super::field::{capability_word, short_string};
use super::load::count;
use super::{FieldError, InstanceId, WorkerId};
use crate::wire::{Capability, RegisterRequest};

/// Most capabilities one worker may register.
pub const MAX_CAPABILITIES: usize = 256;
/// Longest accepted URL.
pub const MAX_URL_LEN: usize = 2048;

/// An absolute `https://` URL with a host, where clients reach a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerUrl(String);

impl WorkerUrl {
    /// Parses `url`, naming `field` if it is not a usable worker URL.
    pub fn parse(field: &str, url: &str) -> Result<Self, FieldError> {
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
        // Every client is shown this URL: a secret in it would be handed out.
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(FieldError::new(
                field,
                "must not carry credentials (user:password@)",
            ));
        }
        Ok(WorkerUrl(url.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// The routing key of a capability, `<verb>:<name>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CapabilityKey(String);

impl CapabilityKey {
    /// The key of `verb` and `name`, both already checked.
    pub(crate) fn of(verb: &str, name: &str) -> Self {
        CapabilityKey(crate::wire::capability_key(verb, name))
    }

    /// Parses a verb and a name, naming the field that is wrong.
    pub fn parse(
        verb_field: &str,
        verb: &str,
        name_field: &str,
        name: &str,
    ) -> Result<Self, FieldError> {
        capability_word(name_field, name)?;
        capability_word(verb_field, verb)?;
        Ok(CapabilityKey::of(verb, name))
    }

    /// Parses `verb:name` as one field.
    pub fn parse_key(field: &str, key: &str) -> Result<Self, FieldError> {
        let (verb, name) = key
            .split_once(':')
            .ok_or_else(|| FieldError::new(field, "is not verb:name"))?;
        CapabilityKey::parse(field, verb, field, name)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for CapabilityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One capability of a [`Registration`]: its key, its parsed version, and the
/// announcement as sent, which `GET /workers/{id}` echoes back.
#[derive(Debug, Clone, PartialEq)]
pub struct ServedCapability {
    pub key: CapabilityKey,
    pub version: Version,
    pub announced: Capability,
}

impl ServedCapability {
    fn parse(at: &str, capability: Capability) -> Result<Self, FieldError> {
        let key = CapabilityKey::parse(
            &format!("{at}.verb"),
            &capability.verb,
            &format!("{at}.name"),
            &capability.name,
        )?;
        let version = Version::parse(&capability.version).map_err(|e| {
            FieldError::new(
                format!("{at}.version"),
                format!(
                    "{:?} is not a semantic version M.m.p ({e})",
                    capability.version
                ),
            )
        })?;
        for (field, value) in [
            ("runtime", &capability.runtime),
            ("env_profile", &capability.env_profile),
            ("spiffe_id", &capability.spiffe_id),
        ] {
            if let Some(value) = value {
                short_string(&format!("{at}.{field}"), value)?;
            }
        }
        if let Some(max) = capability.max_concurrency {
            if max == 0 {
                return Err(FieldError::new(
                    format!("{at}.max_concurrency"),
                    "must be at least 1 (a capability that takes no request is not served)",
                ));
            }
            count(&format!("{at}.max_concurrency"), max)?;
        }
        for (field, value) in [
            (
                "cost_tokens_per_invocation",
                capability.cost_tokens_per_invocation,
            ),
            ("slo_bid", capability.slo_bid),
        ] {
            if let Some(value) = value {
                tokens(&format!("{at}.{field}"), value)?;
            }
        }
        for (field, map) in [
            ("constraints", &capability.constraints),
            ("slo", &capability.slo),
        ] {
            if let Some(map) = map {
                announced_map(&format!("{at}.{field}"), map)?;
            }
        }
        for (field, list) in [
            ("required_capabilities", &capability.required_capabilities),
            ("controller_affinity", &capability.controller_affinity),
        ] {
            for (i, value) in list.iter().flatten().enumerate() {
                short_string(&format!("{at}.{field}[{i}]"), value)?;
            }
        }
        Ok(ServedCapability {
            key,
            version,
            announced: capability,
        })
    }
}

/// Most tokens a cost or a bid may name: far past any real price, and exact
/// in `f64`.
pub const MAX_TOKENS: f64 = 1e15;
/// Most keys of a capability's `constraints` or `slo`.
pub const MAX_ANNOUNCED_KEYS: usize = 32;

/// A number of tokens: finite, from 0 to [`MAX_TOKENS`].
pub fn tokens(field: &str, value: f64) -> Result<f64, FieldError> {
    if !(value.is_finite() && (0.0..=MAX_TOKENS).contains(&value)) {
        return Err(FieldError::new(
            field,
            format!("{value} is not a number of tokens (0 to {MAX_TOKENS:e})"),
        ));
    }
    Ok(value)
}

/// How deep a capability's `slo` may nest objects (`{"latency_ms":{"p95":100}}`).
const MAX_ANNOUNCED_DEPTH: usize = 3;

/// A capability's free-form `constraints` or `slo`.
fn announced_map(at: &str, map: &Map<String, Value>) -> Result<(), FieldError> {
    announced_object(at, map, MAX_ANNOUNCED_DEPTH)
}

/// At most [`MAX_ANNOUNCED_KEYS`] short keys, each a number from 0 to
/// [`MAX_TOKENS`] (a size, a latency, a share), a short string, a bool, or an
/// object of the same, `depth` levels down at most. Routes compare against
/// these values, so each is one a comparison can use.
fn announced_object(at: &str, map: &Map<String, Value>, depth: usize) -> Result<(), FieldError> {
    if map.len() > MAX_ANNOUNCED_KEYS {
        return Err(FieldError::new(
            at,
            format!("names more than {MAX_ANNOUNCED_KEYS} keys"),
        ));
    }
    for (key, value) in map {
        let field = format!("{at}.{key}");
        short_string(&field, key)?;
        match value {
            Value::Number(n) => {
                let n = n.as_f64().unwrap_or(f64::NAN);
                if !(n.is_finite() && (0.0..=MAX_TOKENS).contains(&n)) {
                    return Err(FieldError::new(
                        field,
                        format!("{n} is not a number from 0 to {MAX_TOKENS:e}"),
                    ));
                }
            }
            Value::String(s) => short_string(&field, s)?,
            Value::Bool(_) => {}
            Value::Object(inner) if depth > 1 => announced_object(&field, inner, depth - 1)?,
            _ => {
                return Err(FieldError::new(
                    field,
                    "must be a number, a string, a bool or a shallow object of those",
                ))
            }
        }
    }
    Ok(())
}

/// A registration the registry can trust.
#[derive(Debug, Clone, PartialEq)]
pub struct Registration {
    pub worker_id: WorkerId,
    pub worker_url: WorkerUrl,
    pub capabilities: Vec<ServedCapability>,
    /// The registering process's instance; `None` for workers of the original
    /// system, which send none.
    pub instance: Option<InstanceId>,
    /// The controller checks it (`GET /health`) rather than waiting for
    /// heartbeats (`"health_check": "active"`).
    pub active_check: bool,
}

impl TryFrom<RegisterRequest> for Registration {
    type Error = FieldError;

    /// Checks every field, naming the first one that is wrong.
    fn try_from(request: RegisterRequest) -> Result<Self, FieldError> {
        let worker_id = WorkerId::parse("worker_id", &request.worker_id)?;
        let worker_url = WorkerUrl::parse("worker_url", &request.worker_url)?;
        let instance = request
            .instance
            .as_deref()
            .map(|instance| InstanceId::parse("instance", instance))
            .transpose()?;
        let active_check = match request.health_check.as_deref() {
            None | Some("heartbeat") => false,
            Some("active") => true,
            Some(other) => {
                return Err(FieldError::new(
                    "health_check",
                    format!("{other:?} is not heartbeat or active"),
                ))
            }
        };
        if request.capabilities.is_empty() {
            return Err(FieldError::new(
                "capabilities",
                "must list at least one capability",
            ));
        }
        if request.capabilities.len() > MAX_CAPABILITIES {
            return Err(FieldError::new(
                "capabilities",
                format!("must list at most {MAX_CAPABILITIES} capabilities"),
            ));
        }
        let mut seen = HashSet::new();
        let mut capabilities = Vec::with_capacity(request.capabilities.len());
        for (i, capability) in request.capabilities.into_iter().enumerate() {
            let at = format!("capabilities[{i}]");
            let served = ServedCapability::parse(&at, capability)?;
            if !seen.insert((served.key.clone(), served.version.clone())) {
                return Err(FieldError::new(
                    at,
                    format!("duplicate capability {}@{}", served.key, served.version),
                ));
            }
            capabilities.push(served);
        }
        Ok(Registration {
            worker_id,
            worker_url,
            capabilities,
            instance,
            active_check,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> RegisterRequest {
        RegisterRequest {
            worker_id: "hello-world-1".into(),
            worker_url: "https://localhost:8500".into(),
            capabilities: vec![Capability::new("invoke", "hello.greet", "1.0.0")],
            instance: None,
            health_check: None,
        }
    }

    fn field_of(request: RegisterRequest) -> String {
        Registration::try_from(request).unwrap_err().field
    }

    #[test]
    fn a_well_formed_registration_parses_with_its_versions() {
        let registration = Registration::try_from(request()).unwrap();
        assert_eq!(registration.worker_id.as_str(), "hello-world-1");
        assert_eq!(
            registration.capabilities[0].key.as_str(),
            "invoke:hello.greet"
        );
        assert_eq!(registration.capabilities[0].version, Version::new(1, 0, 0));
    }

    #[test]
    fn absurd_capability_numbers_are_refused_naming_the_field() {
        let with = |edit: &dyn Fn(&mut Capability)| {
            let mut r = request();
            edit(&mut r.capabilities[0]);
            Registration::try_from(r).map(|_| ()).map_err(|e| e.field)
        };
        for bad in [1e300, -1e300, f64::MAX, -1.0, f64::NAN] {
            assert_eq!(
                with(&|c| c.cost_tokens_per_invocation = Some(bad)),
                Err("capabilities[0].cost_tokens_per_invocation".into()),
                "{bad}"
            );
            assert_eq!(
                with(&|c| c.slo_bid = Some(bad)),
                Err("capabilities[0].slo_bid".into())
            );
        }
        for bad in [0, u32::MAX, MAX_COUNT_PLUS_ONE] {
            assert_eq!(
                with(&|c| c.max_concurrency = Some(bad)),
                Err("capabilities[0].max_concurrency".into()),
                "{bad}"
            );
        }
        let map = |json: serde_json::Value| json.as_object().cloned();
        assert_eq!(
            with(&|c| c.constraints = map(serde_json::json!({"memory_mb": 1e300}))),
            Err("capabilities[0].constraints.memory_mb".into())
        );
        assert_eq!(
            with(&|c| c.slo = map(serde_json::json!({"latency": {"p95_ms": -1}}))),
            Err("capabilities[0].slo.latency.p95_ms".into())
        );
        // Ordinary values pass, 1e-300 and 0 among them.
        assert_eq!(
            with(&|c| {
                c.max_concurrency = Some(4);
                c.cost_tokens_per_invocation = Some(1e-300);
                c.slo_bid = Some(0.0);
                c.constraints = map(serde_json::json!({"memory_mb": 4096, "zone": "eu"}));
                c.slo = map(serde_json::json!({"latency": {"p95_ms": 100}, "availability": 0.999}));
            }),
            Ok(())
        );
    }

    const MAX_COUNT_PLUS_ONE: u32 = super::super::load::MAX_COUNT + 1;

    #[test]
    fn each_bad_field_is_named() {
        let mut r = request();
        r.worker_id = String::new();
        assert_eq!(field_of(r), "worker_id");

        let mut r = request();
        r.worker_id = "a b".into();
        assert_eq!(field_of(r), "worker_id");

        let mut r = request();
        r.worker_id = "x".repeat(129);
        assert_eq!(field_of(r), "worker_id");

        for url in [
            "http://localhost:8500",
            "localhost:8500",
            "/relative",
            "https://",
            "https://user:secret@localhost:8500",
            "https://token@localhost:8500",
        ] {
            let mut r = request();
            r.worker_url = url.into();
            assert_eq!(field_of(r), "worker_url", "{url}");
        }

        let mut r = request();
        r.capabilities.clear();
        assert_eq!(field_of(r), "capabilities");

        let mut r = request();
        r.capabilities[0].version = "1.0".into();
        assert_eq!(field_of(r), "capabilities[0].version");

        let mut r = request();
        r.capabilities[0].verb = "in voke".into();
        assert_eq!(field_of(r), "capabilities[0].verb");

        let mut r = request();
        r.capabilities.push(r.capabilities[0].clone());
        assert_eq!(field_of(r), "capabilities[1]");

        let mut r = request();
        r.capabilities[0].name = "x\u{1b}]0;pwned\u{7}".into();
        assert_eq!(field_of(r), "capabilities[0].name");

        let mut r = request();
        r.capabilities[0].runtime = Some("rust\u{202e}".into());
        assert_eq!(field_of(r), "capabilities[0].runtime");
    }

    #[test]
    fn two_versions_of_one_capability_are_not_duplicates() {
        let mut r = request();
        r.capabilities
            .push(Capability::new("invoke", "hello.greet", "2.0.0"));
        assert!(Registration::try_from(r).is_ok());
    }
}
