//! [`RouteQuery`]: a checked [`RouteRequest`].

use semver::VersionReq;

use super::field::short_string;
use super::{CapabilityKey, FieldError};
use crate::wire::RouteRequest;

/// What a route asks for: a capability, and optionally a version requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteQuery {
    pub key: CapabilityKey,
    pub version: Option<VersionReq>,
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
        Ok(RouteQuery { key, version })
    }
}

impl RouteQuery {
    /// A query for `verb:name` in any version (for tests and internal callers;
    /// the words are not checked).
    pub fn any_version(verb: &str, name: &str) -> Self {
        RouteQuery {
            key: CapabilityKey::parse("verb", verb, "capability", name)
                .expect("a well-formed capability"),
            version: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            r#"{"verb":"invoke","capability":"hello.greet","slo_constraints":{"p99_ms":5}}"#,
        )
        .unwrap();
        assert_eq!(route.capability, "hello.greet");
    }
}
