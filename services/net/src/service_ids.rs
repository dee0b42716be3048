//! [`ServiceIds`]: worker ids a `service/<name>` certificate may act for
//! beyond its own (`<name>` and `<name>.<suffix>`, see
//! [`is_replica_of`]), for workers whose ids
//! cannot be chosen: the original system's workers name themselves
//! `worker-<8 hex>`, random per start.
//!
//! `--service-ids hello-world=worker-*,billing=bill-7` lets
//! `service/hello-world` act for every id starting `worker-`, and
//! `service/billing` for `bill-7`. A pattern is an exact id or a prefix ending
//! in `*`. The mapping is refused at start if one service's pattern could
//! match an id of another service named in it: another's pattern, or its own
//! ids (`billing`, `billing.*`). So no two services ever share an id.

use std::fmt;

use crank_proto::domain::WorkerId;

use crate::identity::{is_replica_of, is_service_name, REPLICA_SEPARATOR};

/// The ids one pattern names.
#[derive(Debug, Clone, PartialEq, Eq)]
enum IdPattern {
    Exact(String),
    /// Every id that starts with this (which may be empty only for `*`).
    Prefix(String),
}

impl IdPattern {
    fn matches(&self, worker_id: &str) -> bool {
        match self {
            IdPattern::Exact(id) => id == worker_id,
            IdPattern::Prefix(prefix) => worker_id.starts_with(prefix.as_str()),
        }
    }

    /// Whether some id matches both.
    fn overlaps(&self, other: &IdPattern) -> bool {
        match (self, other) {
            (IdPattern::Exact(a), b) | (b, IdPattern::Exact(a)) => b.matches(a),
            (IdPattern::Prefix(a), IdPattern::Prefix(b)) => {
                a.starts_with(b.as_str()) || b.starts_with(a.as_str())
            }
        }
    }
}

impl fmt::Display for IdPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdPattern::Exact(id) => f.write_str(id),
            IdPattern::Prefix(prefix) => write!(f, "{prefix}*"),
        }
    }
}

/// The controller's mapping from services to the extra worker ids each may
/// act for. Empty by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceIds {
    rules: Vec<(String, IdPattern)>,
}

impl ServiceIds {
    /// Parses `service=pattern,…` (a service may appear more than once), and
    /// refuses a mapping where two services could claim one id.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut rules = Vec::new();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (service, pattern) = entry.split_once('=').ok_or_else(|| {
                format!("{entry:?} is not service=pattern (e.g. hello-world=worker-*)")
            })?;
            let (service, pattern) = (service.trim(), pattern.trim());
            if !is_service_name(service) {
                return Err(format!(
                    "{service:?} is not a service name (a worker id without '{REPLICA_SEPARATOR}')"
                ));
            }
            let parsed = match pattern.strip_suffix('*') {
                Some("") => {
                    return Err(format!(
                        "{service}=* would claim every worker id, every other service's included"
                    ))
                }
                Some(prefix) => {
                    check_id_chars(pattern, prefix)?;
                    IdPattern::Prefix(prefix.to_owned())
                }
                None => {
                    WorkerId::parse("pattern", pattern).map_err(|e| {
                        format!(
                            "{pattern:?} is neither a worker id nor a prefix ending in '*' ({e})"
                        )
                    })?;
                    IdPattern::Exact(pattern.to_owned())
                }
            };
            rules.push((service.to_owned(), parsed));
        }
        let ids = ServiceIds { rules };
        ids.check_disjoint()?;
        Ok(ids)
    }

    /// No pattern of one service matches an id of another named here.
    fn check_disjoint(&self) -> Result<(), String> {
        for (service, pattern) in &self.rules {
            for (other, theirs) in &self.rules {
                if other == service {
                    continue;
                }
                if pattern.overlaps(theirs) {
                    return Err(format!(
                        "{service}={pattern} and {other}={theirs} could both claim one worker id; make them disjoint"
                    ));
                }
                let own_ids = [
                    IdPattern::Exact(other.clone()),
                    IdPattern::Prefix(format!("{other}{REPLICA_SEPARATOR}")),
                ];
                if let Some(own) = own_ids.iter().find(|own| pattern.overlaps(own)) {
                    return Err(format!(
                        "{service}={pattern} could claim {own}, an id of service {other}"
                    ));
                }
            }
        }
        Ok(())
    }

    /// Whether `service` may act for `worker_id`: one of its replicas, or an
    /// id its patterns name.
    pub fn allows(&self, service: &str, worker_id: &str) -> bool {
        is_replica_of(worker_id, service)
            || self
                .rules
                .iter()
                .any(|(s, pattern)| s == service && pattern.matches(worker_id))
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

impl fmt::Display for ServiceIds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let entries: Vec<String> = self
            .rules
            .iter()
            .map(|(service, pattern)| format!("{service}={pattern}"))
            .collect();
        f.write_str(&entries.join(","))
    }
}

/// A prefix holds only characters a worker id may hold.
fn check_id_chars(pattern: &str, prefix: &str) -> Result<(), String> {
    WorkerId::parse("pattern", prefix)
        .map(|_| ())
        .map_err(|e| format!("{pattern:?}: the prefix is not the start of a worker id ({e})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_acts_for_its_patterns_and_its_own_replicas() {
        let ids = ServiceIds::parse("hello-world=worker-*, billing=bill-7").unwrap();
        assert!(ids.allows("hello-world", "worker-1a2b3c4d"));
        assert!(ids.allows("hello-world", "hello-world.2"));
        assert!(!ids.allows("hello-world", "bill-7"));
        assert!(ids.allows("billing", "bill-7"));
        assert!(!ids.allows("billing", "bill-70"));
        assert!(!ids.allows("billing", "worker-1a2b3c4d"));
        assert_eq!(ids.to_string(), "hello-world=worker-*,billing=bill-7");
    }

    #[test]
    fn patterns_that_could_claim_another_services_ids_are_refused() {
        for (mapping, why) in [
            ("a=worker-*,b=worker-b*", "both claim worker-b…"),
            ("a=worker-*,b=worker-7", "worker-7 is a's too"),
            ("a=*", "* claims everything"),
            ("a=b*,b=x", "a claims b, b's own id"),
            ("a=b.*,b=x", "a claims b's replicas"),
        ] {
            assert!(ServiceIds::parse(mapping).is_err(), "{mapping}: {why}");
        }
        assert!(ServiceIds::parse("a=worker-a*,b=worker-b*").is_ok());
        assert!(
            ServiceIds::parse("a=x*,a=y*").is_ok(),
            "one service, two patterns"
        );
    }

    #[test]
    fn malformed_entries_say_what_is_wrong() {
        assert!(ServiceIds::parse("hello")
            .unwrap_err()
            .contains("service=pattern"));
        assert!(ServiceIds::parse("he.llo=x*")
            .unwrap_err()
            .contains("service name"));
        assert!(ServiceIds::parse("a=x y").is_err());
        assert!(ServiceIds::parse("a=x*y").is_err());
        assert_eq!(ServiceIds::parse("").unwrap(), ServiceIds::default());
    }
}
