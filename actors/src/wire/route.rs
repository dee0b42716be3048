//! `POST /route`: which worker serves this capability right now?

use serde::{Deserialize, Serialize};

/// `POST /route` body. Unknown fields (the original's `slo_constraints`, …) are
/// accepted and ignored.
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
}

impl RouteRequest {
    pub fn new(verb: &str, capability: &str) -> Self {
        RouteRequest {
            verb: verb.to_owned(),
            capability: capability.to_owned(),
            version: None,
            exclude: Vec::new(),
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
}
