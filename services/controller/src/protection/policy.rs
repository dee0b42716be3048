//! [`Policy`]: who may route to and watch which capabilities (the original
//! crank's ADR-0027), read from a TOML file:
//!
//! ```toml
//! mode = "enforce"                      # "off" | "shadow" | "enforce"
//! [[allow]]
//! identity = "client/billing"           # exact, "worker/*" (a role), "*"
//! capabilities = ["invoke:hello.*"]     # verb:name; * is a segment or a side
//! [[limit]]
//! identity = "client/batch"             # overrides the controller's rates
//! route = "10/s"
//! ```
//!
//! A caller may use a capability if some `allow` rule names its identity
//! (exactly, by its role, or `*`) and one of the rule's patterns matches
//! the capability; otherwise it is denied (default deny). Admins and
//! controllers are the operators' and the cluster's own identities and are
//! never denied. Plain data and synchronous methods, tested here.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use crank_net::identity::{PeerIdentity, Role};
use serde::Deserialize;

use super::limits::{EndpointRates, Rate};

/// Most `allow` rules a file may hold.
const MAX_RULES: usize = 100_000;

/// What the policy does with its decisions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// No decisions: every authenticated caller may use every capability.
    #[default]
    Off,
    /// Decide, count and log, but allow: for trying a policy out.
    Shadow,
    /// Deny with `403 policy_denied`.
    Enforce,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Off => "off",
            Mode::Shadow => "shadow",
            Mode::Enforce => "enforce",
        }
    }
}

/// Which callers a rule is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum IdentityPattern {
    Exact(Role, String),
    Role(Role),
    Any,
}

impl IdentityPattern {
    pub fn parse(text: &str) -> Result<Self, String> {
        if text == "*" {
            return Ok(IdentityPattern::Any);
        }
        let (role, name) = text
            .split_once('/')
            .ok_or_else(|| format!("identity {text:?} is not role/name, role/* or *"))?;
        let role = Role::parse(role).ok_or_else(|| {
            format!("identity {text:?}: {role:?} is not one of worker, service, client, admin, controller")
        })?;
        match name {
            "*" => Ok(IdentityPattern::Role(role)),
            "" => Err(format!("identity {text:?} names nobody")),
            name if name.contains('*') => Err(format!(
                "identity {text:?}: * stands for a whole name (role/*), not part of one"
            )),
            name => Ok(IdentityPattern::Exact(role, name.to_owned())),
        }
    }

    pub fn matches(&self, caller: &PeerIdentity) -> bool {
        match self {
            IdentityPattern::Any => true,
            IdentityPattern::Role(role) => *role == caller.role,
            IdentityPattern::Exact(role, name) => *role == caller.role && *name == caller.name,
        }
    }
}

impl fmt::Display for IdentityPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdentityPattern::Any => f.write_str("*"),
            IdentityPattern::Role(role) => write!(f, "{role}/*"),
            IdentityPattern::Exact(role, name) => write!(f, "{role}/{name}"),
        }
    }
}

/// A `verb:name` pattern: each side is `*` (anything) or dot-separated
/// segments, each `*` (any one segment) or a word with `*` standing for any
/// characters within the segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapabilityPattern {
    text: String,
    verb: Side,
    name: Side,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Side {
    Any,
    Segments(Vec<String>),
}

fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, tail)) => {
            let Some(rest) = text.strip_prefix(head) else {
                return false;
            };
            (0..=rest.len())
                .filter(|at| rest.is_char_boundary(*at))
                .any(|at| rest.get(at..).is_some_and(|suffix| glob(tail, suffix)))
        }
    }
}

impl Side {
    fn parse(text: &str) -> Result<Self, String> {
        if text == "*" {
            return Ok(Side::Any);
        }
        let segments: Vec<String> = text.split('.').map(str::to_owned).collect();
        if segments.iter().any(String::is_empty) {
            return Err("has an empty segment".into());
        }
        Ok(Side::Segments(segments))
    }

    fn matches(&self, text: &str) -> bool {
        match self {
            Side::Any => true,
            Side::Segments(segments) => {
                let mut parts = text.split('.');
                let all = segments
                    .iter()
                    .all(|segment| parts.next().is_some_and(|part| glob(segment, part)));
                all && parts.next().is_none()
            }
        }
    }
}

impl CapabilityPattern {
    pub fn parse(text: &str) -> Result<Self, String> {
        let (verb, name) = text
            .split_once(':')
            .ok_or_else(|| format!("capability pattern {text:?} is not verb:name"))?;
        let side = |side: &str| {
            Side::parse(side).map_err(|problem| format!("capability pattern {text:?} {problem}"))
        };
        Ok(CapabilityPattern {
            text: text.to_owned(),
            verb: side(verb)?,
            name: side(name)?,
        })
    }

    /// Whether `key` (`verb:name`) matches.
    pub fn matches(&self, key: &str) -> bool {
        let Some((verb, name)) = key.split_once(':') else {
            return false;
        };
        self.verb.matches(verb) && self.name.matches(name)
    }
}

/// One `allow` rule, with the line it starts on.
#[derive(Debug, Clone)]
pub struct Rule {
    pub identity: IdentityPattern,
    pub capabilities: Vec<CapabilityPattern>,
    pub line: usize,
}

/// A `limit` entry: rates for the callers it names, with its line.
#[derive(Debug, Clone)]
pub struct LimitOverride {
    pub identity: IdentityPattern,
    pub rates: EndpointRates,
    pub line: usize,
}

/// What a decision found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Allowed by the rule on this line (`None`: the mode is off, or the
    /// caller is an admin or a controller).
    Allowed(Option<usize>),
    /// No rule allows it.
    Denied,
}

/// Decisions remembered per policy; past it the memory starts over (a
/// flood of distinct capabilities costs a scan each, never unbounded memory).
const REMEMBERED_DECISIONS: usize = 65_536;

/// A loaded policy.
#[derive(Debug, Default)]
pub struct Policy {
    pub mode: Mode,
    rules: Vec<Rule>,
    /// Rule indexes by the identity pattern they name, so a decision reads
    /// the rules of the caller's name, role and `*` only.
    by_identity: HashMap<IdentityPattern, Vec<usize>>,
    pub limits: Vec<LimitOverride>,
    /// Decisions already made, by identity and capability: a caller routes
    /// to few capabilities, so after the first route each decision is one
    /// lookup instead of a scan of the rules. A reload makes a new policy,
    /// and so forgets them.
    decided: std::sync::RwLock<Decided>,
}

/// Decisions by caller, then capability: a lookup borrows both, so a
/// remembered decision costs no allocation.
#[derive(Debug, Default)]
struct Decided {
    by_caller: HashMap<PeerIdentity, HashMap<String, Decision>>,
    count: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    mode: Mode,
    #[serde(default)]
    allow: Vec<toml::Spanned<RuleFile>>,
    #[serde(default)]
    limit: Vec<toml::Spanned<LimitFile>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    identity: String,
    capabilities: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitFile {
    identity: String,
    route: Option<String>,
    register: Option<String>,
    report: Option<String>,
}

/// The 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map_or(1, |before| before.matches('\n').count() + 1)
}

impl Policy {
    /// A policy that decides nothing (`mode = "off"`).
    pub fn off() -> Self {
        Policy::default()
    }

    /// Reads the policy file at `path`; the error names the file, the line
    /// and what is wrong.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Policy::parse(&text).map_err(|problem| format!("{}: {problem}", path.display()))
    }

    /// Reads a policy from the text of its file.
    pub fn parse(text: &str) -> Result<Self, String> {
        let file: PolicyFile = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|span| line_of(text, span.start));
            let message = e.message().to_owned();
            match line {
                Some(line) => format!("line {line}: {message}"),
                None => message,
            }
        })?;
        if file.allow.len() > MAX_RULES {
            return Err(format!("more than {MAX_RULES} allow rules"));
        }
        let mut policy = Policy {
            mode: file.mode,
            ..Policy::default()
        };
        for spanned in file.allow {
            let line = line_of(text, spanned.span().start);
            let rule = spanned.into_inner();
            let at = |problem: String| format!("line {line}: {problem}");
            let identity = IdentityPattern::parse(&rule.identity).map_err(at)?;
            if rule.capabilities.is_empty() {
                return Err(at("an allow rule names no capability".into()));
            }
            let capabilities = rule
                .capabilities
                .iter()
                .map(|pattern| CapabilityPattern::parse(pattern))
                .collect::<Result<Vec<_>, _>>()
                .map_err(at)?;
            policy
                .by_identity
                .entry(identity.clone())
                .or_default()
                .push(policy.rules.len());
            policy.rules.push(Rule {
                identity,
                capabilities,
                line,
            });
        }
        for spanned in file.limit {
            let line = line_of(text, spanned.span().start);
            let limit = spanned.into_inner();
            let at = |problem: String| format!("line {line}: {problem}");
            let rate = |text: &Option<String>| text.as_deref().map(Rate::parse).transpose();
            policy.limits.push(LimitOverride {
                identity: IdentityPattern::parse(&limit.identity).map_err(at)?,
                rates: EndpointRates {
                    route: rate(&limit.route).map_err(at)?,
                    register: rate(&limit.register).map_err(at)?,
                    report: rate(&limit.report).map_err(at)?,
                },
                line,
            });
        }
        Ok(policy)
    }

    /// Whether `caller` may use the capability `key` (`verb:name`), whatever
    /// the mode (the caller of this decides what the mode makes of it).
    pub fn decide(&self, caller: &PeerIdentity, key: &str) -> Decision {
        if self.mode == Mode::Off || matches!(caller.role, Role::Admin | Role::Controller) {
            return Decision::Allowed(None);
        }
        let remembered = self
            .decided
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .by_caller
            .get(caller)
            .and_then(|keys| keys.get(key))
            .cloned();
        if let Some(decision) = remembered {
            return decision;
        }
        let decision = self.scan(caller, key);
        let mut decided = self.decided.write().unwrap_or_else(|e| e.into_inner());
        if decided.count >= REMEMBERED_DECISIONS {
            *decided = Decided::default();
        }
        let keys = decided.by_caller.entry(caller.clone()).or_default();
        if keys.insert(key.to_owned(), decision.clone()).is_none() {
            decided.count += 1;
        }
        decision
    }

    /// The rules read for `caller` and `key`.
    fn scan(&self, caller: &PeerIdentity, key: &str) -> Decision {
        let exact = IdentityPattern::Exact(caller.role, caller.name.clone());
        let candidates = [
            exact,
            IdentityPattern::Role(caller.role),
            IdentityPattern::Any,
        ];
        let mut allowed_by: Option<usize> = None;
        for pattern in &candidates {
            for index in self.by_identity.get(pattern).into_iter().flatten() {
                let Some(rule) = self.rules.get(*index) else {
                    continue;
                };
                if rule.capabilities.iter().any(|p| p.matches(key)) {
                    allowed_by = Some(allowed_by.map_or(rule.line, |line| line.min(rule.line)));
                }
            }
        }
        match allowed_by {
            Some(line) => Decision::Allowed(Some(line)),
            None => Decision::Denied,
        }
    }

    /// Rules loaded.
    pub fn rules(&self) -> usize {
        self.rules.len()
    }
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
