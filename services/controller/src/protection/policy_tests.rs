//! Ordinary tests of the policy: patterns, decisions, and the errors a bad
//! file gets.

use crank_net::identity::{PeerIdentity, Role};

use super::{CapabilityPattern, Decision, IdentityPattern, Mode, Policy};

fn client(name: &str) -> PeerIdentity {
    PeerIdentity::new(Role::Client, name)
}

const POLICY: &str = r#"
mode = "enforce"

[[allow]]
identity = "client/billing"
capabilities = ["invoke:hello.*"]

[[allow]]
identity = "worker/*"
capabilities = ["stream:*"]

[[allow]]
identity = "*"
capabilities = ["invoke:public.status"]

[[limit]]
identity = "client/batch"
route = "10/s"
"#;

#[test]
fn capability_patterns_match_a_segment_or_a_side() {
    let hello = CapabilityPattern::parse("invoke:hello.*").unwrap();
    assert!(hello.matches("invoke:hello.greet"));
    assert!(!hello.matches("invoke:hello.greet.loud"));
    assert!(!hello.matches("stream:hello.greet"));
    assert!(!hello.matches("invoke:hello"));
    let streams = CapabilityPattern::parse("stream:*").unwrap();
    assert!(streams.matches("stream:text_events") && streams.matches("stream:a.b.c"));
    let within = CapabilityPattern::parse("*:gre*t").unwrap();
    assert!(
        within.matches("invoke:greet") && within.matches("x:great") && !within.matches("x:greets")
    );
    for bad in ["hello", "invoke:", "invoke:a..b", ":x"] {
        assert!(CapabilityPattern::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn identity_patterns_name_one_caller_a_role_or_everyone() {
    let billing = IdentityPattern::parse("client/billing").unwrap();
    assert!(billing.matches(&client("billing")) && !billing.matches(&client("other")));
    let workers = IdentityPattern::parse("worker/*").unwrap();
    assert!(workers.matches(&PeerIdentity::new(Role::Worker, "w1")));
    assert!(!workers.matches(&client("w1")));
    assert!(IdentityPattern::parse("*").unwrap().matches(&client("x")));
    for bad in ["billing", "robot/x", "client/", "client/bill*"] {
        assert!(IdentityPattern::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn decisions_allow_by_the_first_matching_rule_and_deny_the_rest() {
    let policy = Policy::parse(POLICY).unwrap();
    assert_eq!(policy.mode, Mode::Enforce);
    assert_eq!(policy.rules(), 3);
    assert_eq!(
        policy.decide(&client("billing"), "invoke:hello.greet"),
        Decision::Allowed(Some(4))
    );
    assert_eq!(
        policy.decide(&client("other"), "invoke:hello.greet"),
        Decision::Denied
    );
    assert_eq!(
        policy.decide(&PeerIdentity::new(Role::Worker, "w"), "stream:text_events"),
        Decision::Allowed(Some(8))
    );
    assert_eq!(
        policy.decide(&client("anyone"), "invoke:public.status"),
        Decision::Allowed(Some(12))
    );
    // Operators and the cluster's own identities are never denied.
    for role in [Role::Admin, Role::Controller] {
        let who = PeerIdentity::new(role, "x");
        assert_eq!(
            policy.decide(&who, "invoke:secret"),
            Decision::Allowed(None)
        );
    }
    assert_eq!(policy.limits.len(), 1);
    assert_eq!(policy.limits[0].line, 16);
}

#[test]
fn an_off_policy_allows_everything() {
    let policy = Policy::off();
    assert_eq!(
        policy.decide(&client("x"), "invoke:anything"),
        Decision::Allowed(None)
    );
}

#[test]
fn a_bad_file_is_refused_with_its_line_and_what_is_wrong() {
    let cases = [
        ("mode = \"strict\"\n", "line 1"),
        (
            "[[allow]]\nidentity = \"client/x\"\ncapabilities = [\"hello\"]\n",
            "line 1: capability pattern \"hello\" is not verb:name",
        ),
        (
            "\n\n[[allow]]\nidentity = \"robot/x\"\ncapabilities = [\"a:b\"]\n",
            "line 3: identity \"robot/x\"",
        ),
        (
            "[[allow]]\nidentity = \"client/x\"\ncapabilities = []\n",
            "names no capability",
        ),
        (
            "[[allow]]\nidentity = \"client/x\"\ncapabilities = [\"a:b\"]\ncolour = 1\n",
            "unknown field `colour`",
        ),
        (
            "[[limit]]\nidentity = \"client/x\"\nroute = \"0/s\"\n",
            "line 1: \"0/s\": a rate of 0",
        ),
    ];
    for (text, expected) in cases {
        let error = Policy::parse(text).unwrap_err();
        assert!(error.contains(expected), "{text:?}: {error}");
    }
}
