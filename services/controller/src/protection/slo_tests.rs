//! Ordinary tests of SLO files and the window's figures.

use std::path::Path;
use std::time::{Duration, Instant};

use super::{Breach, SloBook, SloSpec, MIN_SAMPLES};

const GREET: &str = "capability: {verb: invoke, name: hello.greet, version: \"1.0.0\"}
slo:
  latency: {p50_ms: 20, p95_ms: 50, p99_ms: 100}
  availability: {target: 0.99}
  error_budget: {monthly_pct: 1}
";

fn spec() -> SloSpec {
    SloSpec::parse(GREET, Path::new("hello.greet.yml")).unwrap()
}

#[test]
fn a_file_in_the_originals_schema_reads() {
    let spec = spec();
    assert_eq!(spec.capability, "invoke:hello.greet");
    assert_eq!(spec.version.as_deref(), Some("1.0.0"));
    assert_eq!(spec.p95_ms, Some(50.0));
    assert_eq!(spec.availability, Some(0.99));
    assert!((spec.error_budget - 0.01).abs() < 1e-12);
}

#[test]
fn a_bad_file_is_refused_with_what_is_wrong() {
    let cases = [
        (
            "capability: {verb: invoke, name: x}\nslo:\n  latency: {p95_ms: -1}\n",
            "slo.latency.p95_ms is -1",
        ),
        (
            "capability: {verb: invoke, name: x}\nslo:\n  availability: {target: 99.9}\n",
            "a share above 0, at most 1",
        ),
        (
            "capability: {verb: invoke, name: x}\nslo: {}\n",
            "nothing to hold it to",
        ),
        (
            "capability: {verb: invoke, name: x}\nslo:\n  latency: {p95_ms: 10}\n  colour: red\n",
            "line 4",
        ),
        (
            "capability: {verb: invoke}\nslo:\n  latency: {p95_ms: 10}\n",
            "missing field `name`",
        ),
    ];
    for (text, expected) in cases {
        let error = SloSpec::parse(text, Path::new("x.yml")).unwrap_err();
        assert!(error.contains(expected), "{text:?}: {error}");
    }
}

fn book_with(latency_ms: u64, successes: usize, failures: usize) -> (SloBook, Instant) {
    let mut book = SloBook::new(vec![spec()], Duration::from_secs(60));
    let now = Instant::now();
    for _ in 0..successes {
        book.record(
            "invoke:hello.greet",
            Some(Duration::from_millis(latency_ms)),
            true,
            now,
        );
    }
    for _ in 0..failures {
        book.record("invoke:hello.greet", None, false, now);
    }
    (book, now)
}

#[test]
fn a_p95_over_target_is_a_breach_once_the_window_has_enough_calls() {
    let (mut book, now) = book_with(80, MIN_SAMPLES - 1, 0);
    assert_eq!(book.evaluate(now)[0].breach, None, "too few calls to judge");
    book.record(
        "invoke:hello.greet",
        Some(Duration::from_millis(80)),
        true,
        now,
    );
    let state = &book.evaluate(now)[0];
    assert_eq!(
        state.breach,
        Some(Breach::Latency {
            p95_ms: 80.0,
            target_ms: 50.0
        })
    );
    assert_eq!(state.budget_remaining, 1.0);
}

#[test]
fn failures_spend_the_budget_and_breach_availability() {
    // 2 failures in 100: 98 % against 99 %, twice the 1 % budget.
    let (mut book, now) = book_with(10, 98, 2);
    let state = &book.evaluate(now)[0];
    assert_eq!(state.availability, Some(0.98));
    assert_eq!(state.budget_remaining, 0.0);
    assert!(matches!(state.breach, Some(Breach::Availability { .. })));
    // Half a percent of failures: half the budget left, within target.
    let (mut book, now) = book_with(10, 199, 1);
    let state = &book.evaluate(now)[0];
    assert!((state.budget_remaining - 0.5).abs() < 1e-9, "{state:?}");
    assert_eq!(state.breach, None);
}

#[test]
fn outcomes_leave_the_window_and_others_are_not_kept() {
    let (mut book, now) = book_with(80, 50, 0);
    book.record("invoke:unheld", Some(Duration::from_millis(1)), true, now);
    let later = now + Duration::from_secs(61);
    let state = &book.evaluate(later)[0];
    assert_eq!((state.samples, state.breach.clone()), (0, None));
    assert_eq!(book.evaluate(later).len(), 1);
}
