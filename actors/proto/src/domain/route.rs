//! [`RouteQuery`]: a checked [`RouteRequest`].

use std::fmt;
use std::str::FromStr;

use semver::VersionReq;
use serde_json::Value;

use super::field::short_string;
use super::{CapabilityKey, FieldError};
use crate::wire::RouteRequest;

/// Worker ids one route may exclude at most: a caller retrying after a few
/// failures names a few.
pub const MAX_EXCLUDED: usize = 64;
/// Constraint keys one route may name at most.
pub const MAX_CONSTRAINTS: usize = 32;

/// How a route chooses among the providers that meet its constraints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// Power of two choices: the provider due in round-robin order against one
    /// other at random, the one with more free capacity wins.
    #[default]
    LeastLoaded,
    /// Round-robin order, load not looked at.
    RoundRobin,
    /// The lowest `cost_tokens_per_invocation`; ties to the less loaded.
    Cheapest,
}

impl Strategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::LeastLoaded => "least_loaded",
            Strategy::RoundRobin => "round_robin",
            Strategy::Cheapest => "cheapest",
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Strategy {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text.trim() {
            "least_loaded" => Ok(Strategy::LeastLoaded),
            "round_robin" => Ok(Strategy::RoundRobin),
            "cheapest" => Ok(Strategy::Cheapest),
            other => Err(format!(
                "{other:?} is not a strategy: least_loaded, round_robin or cheapest"
            )),
        }
    }
}

/// One requirement on a capability's announced `constraints`.
#[derive(Debug, Clone, PartialEq)]
pub enum Requirement {
    /// The announced number must be at least this.
    AtLeast(f64),
    /// The announced string must be equal.
    Text(String),
    /// The announced bool must be equal.
    Flag(bool),
}

impl Requirement {
    /// Whether an announced value meets it; a missing one does not.
    pub fn is_met_by(&self, announced: Option<&Value>) -> bool {
        match (self, announced) {
            (Requirement::AtLeast(min), Some(Value::Number(n))) => {
                n.as_f64().is_some_and(|n| n >= *min)
            }
            (Requirement::Text(want), Some(Value::String(s))) => s == want,
            (Requirement::Flag(want), Some(Value::Bool(b))) => b == want,
            _ => false,
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Requirement::AtLeast(n) => write!(f, "≥ {n}"),
            Requirement::Text(s) => write!(f, "= {s:?}"),
            Requirement::Flag(b) => write!(f, "= {b}"),
        }
    }
}

/// A route's checked `slo_constraints`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Constraints {
    pub latency_p95_ms: Option<f64>,
    pub requires_gpu: bool,
    /// Requirements on the capability's `constraints`, by key.
    pub other: Vec<(String, Requirement)>,
}

/// What a route asks for: a capability, optionally a version requirement, and
/// what the chosen provider must meet.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteQuery {
    pub key: CapabilityKey,
    pub version: Option<VersionReq>,
    /// `None`: the controller's default.
    pub strategy: Option<Strategy>,
    pub constraints: Constraints,
    pub budget_tokens: Option<f64>,
    pub slo_bid: Option<f64>,
    /// Worker ids not to hand out.
    pub exclude: Vec<String>,
    pub priority: Priority,
    /// 1 to 255 printable ASCII characters.
    pub idempotency_key: Option<String>,
}

/// How much a route matters to its caller when its capability breaches
/// its SLO: `low` is shed first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Priority {
    Low,
    #[default]
    Normal,
    High,
}

impl Priority {
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Normal => "normal",
            Priority::High => "high",
        }
    }

    pub fn parse(field: &str, text: &str) -> Result<Self, FieldError> {
        [Priority::Low, Priority::Normal, Priority::High]
            .into_iter()
            .find(|p| p.as_str() == text)
            .ok_or_else(|| {
                FieldError::new(
                    field,
                    format!(
                        "{:?} is not a priority: low, normal or high",
                        text.chars().take(32).collect::<String>()
                    ),
                )
            })
    }
}

/// A finite number that is not negative.
fn amount(field: &str, value: Option<f64>) -> Result<Option<f64>, FieldError> {
    match value {
        Some(v) if !v.is_finite() || v < 0.0 => Err(FieldError::new(
            field,
            format!("{v} is not a number of at least 0"),
        )),
        other => Ok(other),
    }
}

impl TryFrom<&RouteRequest> for RouteQuery {
    type Error = FieldError;

    fn try_from(request: &RouteRequest) -> Result<Self, FieldError> {
        let key = CapabilityKey::parse("verb", &request.verb, "capability", &request.capability)?;
        let version = request
            .version
            .as_deref()
            .map(|req| {
                short_string("version", req)?;
                VersionReq::parse(req).map_err(|e| {
                    FieldError::new(
                        "version",
                        format!("{req:?} is not a semver requirement ({e})"),
                    )
                })
            })
            .transpose()?;
        let strategy = request
            .strategy
            .as_deref()
            .map(|s| s.parse().map_err(|e| FieldError::new("strategy", e)))
            .transpose()?;
        let mut constraints = Constraints::default();
        if let Some(slo) = &request.slo_constraints {
            constraints.latency_p95_ms =
                amount("slo_constraints.latency_p95_ms", slo.latency_p95_ms)?;
            constraints.requires_gpu = slo.requires_gpu == Some(true);
            if slo.other.len() > MAX_CONSTRAINTS {
                return Err(FieldError::new(
                    "slo_constraints",
                    format!("names more than {MAX_CONSTRAINTS} constraints"),
                ));
            }
            for (name, value) in &slo.other {
                let field = format!("slo_constraints.{name}");
                short_string(&field, name)?;
                let requirement = match value {
                    Value::Number(n) => {
                        Requirement::AtLeast(amount(&field, n.as_f64())?.unwrap_or_default())
                    }
                    Value::String(s) => {
                        short_string(&field, s)?;
                        Requirement::Text(s.clone())
                    }
                    Value::Bool(b) => Requirement::Flag(*b),
                    _ => {
                        return Err(FieldError::new(
                            field,
                            "a constraint is a number (a minimum), a string or a bool",
                        ))
                    }
                };
                constraints.other.push((name.clone(), requirement));
            }
        }
        if request.exclude.len() > MAX_EXCLUDED {
            return Err(FieldError::new(
                "exclude",
                format!("names more than {MAX_EXCLUDED} workers"),
            ));
        }
        for id in &request.exclude {
            short_string("exclude", id)?;
        }
        if let Some(said) = &request.requester_identity {
            short_string("requester_identity", said)?;
        }
        Ok(RouteQuery {
            key,
            version,
            strategy,
            constraints,
            budget_tokens: amount("budget_tokens", request.budget_tokens)?,
            slo_bid: amount("slo_bid", request.slo_bid)?,
            exclude: request.exclude.clone(),
            idempotency_key: match &request.idempotency_key {
                Some(key) => {
                    super::field::idempotency_key("idempotency_key", key)?;
                    Some(key.clone())
                }
                None => None,
            },
            priority: match &request.priority {
                Some(Value::String(text)) => Priority::parse("priority", text)?,
                // Not crank's field (a v1 caller's free-form one): ignored.
                _ => Priority::Normal,
            },
        })
    }
}

impl RouteQuery {
    /// A query for `verb:name` in any version, with no constraints: for tests
    /// and callers that know their words (they are not checked).
    pub fn any_version(verb: &str, name: &str) -> Self {
        RouteQuery {
            key: CapabilityKey::of(verb, name),
            version: None,
            strategy: None,
            constraints: Constraints::default(),
            budget_tokens: None,
            slo_bid: None,
            exclude: Vec::new(),
            priority: Priority::Normal,
            idempotency_key: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priority_is_low_normal_or_high() {
        let mut route = RouteRequest::new("invoke", "hello.greet");
        assert_eq!(
            RouteQuery::try_from(&route).unwrap().priority,
            Priority::Normal
        );
        route.priority = Some("low".into());
        assert_eq!(
            RouteQuery::try_from(&route).unwrap().priority,
            Priority::Low
        );
        route.priority = Some("urgent".into());
        assert_eq!(RouteQuery::try_from(&route).unwrap_err().field, "priority");
    }

    #[test]
    fn route_version_must_be_a_requirement() {
        let mut route = RouteRequest::new("invoke", "hello.greet");
        route.version = Some("^1".into());
        assert!(RouteQuery::try_from(&route).unwrap().version.is_some());
        route.version = Some("not a version".into());
        assert_eq!(RouteQuery::try_from(&route).unwrap_err().field, "version");
    }

    #[test]
    fn unknown_route_fields_are_ignored() {
        let route: RouteRequest = serde_json::from_str(
            r#"{"verb":"invoke","capability":"hello.greet","priority":{"p99_ms":5}}"#,
        )
        .unwrap();
        assert_eq!(route.capability, "hello.greet");
    }

    fn parse(json: &str) -> Result<RouteQuery, FieldError> {
        RouteQuery::try_from(&serde_json::from_str::<RouteRequest>(json).unwrap())
    }

    #[test]
    fn constraints_parse_into_requirements() {
        let query = parse(
            r#"{"verb":"invoke","capability":"x","strategy":"cheapest",
                "slo_constraints":{"latency_p95_ms":100,"requires_gpu":true,
                "min_memory_mb":4096,"region":"eu","spot":false}}"#,
        )
        .unwrap();
        assert_eq!(query.strategy, Some(Strategy::Cheapest));
        assert_eq!(query.constraints.latency_p95_ms, Some(100.0));
        assert!(query.constraints.requires_gpu);
        let other: Vec<_> = query
            .constraints
            .other
            .iter()
            .map(|(k, _)| k.as_str())
            .collect();
        assert_eq!(other, ["min_memory_mb", "region", "spot"]);
    }

    #[test]
    fn bad_route_fields_name_themselves() {
        let field = |json: &str| parse(json).unwrap_err().field;
        assert_eq!(
            field(r#"{"verb":"invoke","capability":"x","strategy":"fastest"}"#),
            "strategy"
        );
        assert_eq!(
            field(r#"{"verb":"invoke","capability":"x","budget_tokens":-1}"#),
            "budget_tokens"
        );
        assert_eq!(
            field(r#"{"verb":"invoke","capability":"x","slo_constraints":{"zone":[1]}}"#),
            "slo_constraints.zone"
        );
    }
}
