//! Ordinary tests of the router over the [`Registry`] core: no actix system,
//! the clock passed in.

use std::time::Duration;

use serde_json::json;

use super::core::{Now, Registry};
use super::router::NoRoute;
use super::RegistrySettings;
use crank_proto::domain::{
    CallReport, Registration, Requirement, RouteQuery, Strategy, WorkerId, WorkerLoad,
};
use crank_proto::wire::{Capability, CapabilityLoad, Load, RegisterRequest};

use super::test_clock::TestClock as Clock;

/// A registry with `stale_after` 120 s: load reports count for 60 s.
fn registry() -> Registry {
    Registry::new(RegistrySettings {
        stale_after: Duration::from_secs(120),
        protect_threshold: 1.0,
        ..RegistrySettings::default()
    })
}

fn x() -> Capability {
    Capability::new("invoke", "x", "1.0.0")
}

fn add(registry: &mut Registry, id: &str, capability: Capability, now: Now) {
    let registration = Registration::try_from(RegisterRequest {
        worker_id: id.into(),
        worker_url: format!("https://{id}.local:8500"),
        capabilities: vec![capability],
        instance: None,
        health_check: None,
    })
    .unwrap();
    registry.register(registration, "admin/test", now);
}

fn beat(registry: &mut Registry, id: &str, load: Option<Load>, now: Now) {
    let load = load.map(|load| WorkerLoad::try_from(&load).unwrap());
    registry.heartbeat(id, None, load, now).unwrap();
}

/// A load whose capability `invoke:x` reports a p95 latency.
fn load_with_p95(in_flight: u32, capacity: u32, p95_ms: f64) -> Load {
    Load {
        capabilities: vec![CapabilityLoad {
            capability: "invoke:x".into(),
            in_flight,
            requests: 100,
            window_s: 30.0,
            p50_ms: Some(p95_ms / 2.0),
            p95_ms: Some(p95_ms),
            error_rate: None,
        }],
        ..Load::new(in_flight, capacity)
    }
}

fn query() -> RouteQuery {
    RouteQuery::any_version("invoke", "x")
}

fn route(registry: &mut Registry, query: &RouteQuery, now: Now) -> Result<String, NoRoute> {
    registry.route(query, now).map(|choice| choice.worker_id)
}

fn routes(registry: &mut Registry, query: &RouteQuery, now: Now, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| route(registry, query, now).unwrap())
        .collect()
}

fn refusal(registry: &mut Registry, query: &RouteQuery, now: Now) -> String {
    format!(
        "No worker available for {}",
        route(registry, query, now).unwrap_err()
    )
}

#[test]
fn unknown_load_routes_in_round_robin_order() {
    let clock = Clock::new();
    let mut registry = registry();
    for id in ["a", "b", "c"] {
        add(&mut registry, id, x(), clock.at(0.0));
    }
    assert_eq!(
        routes(&mut registry, &query(), clock.at(1.0), 6),
        ["a", "b", "c", "a", "b", "c"]
    );
}

#[test]
fn equal_free_capacity_keeps_round_robin_order() {
    let clock = Clock::new();
    let mut registry = registry();
    for id in ["a", "b", "c"] {
        add(&mut registry, id, x(), clock.at(0.0));
        beat(&mut registry, id, Some(Load::new(0, 100)), clock.at(0.0));
    }
    // Each route makes its worker busier than the others by the controller's
    // own estimate: the due one always ties or wins.
    assert_eq!(
        routes(&mut registry, &query(), clock.at(1.0), 6),
        ["a", "b", "c", "a", "b", "c"]
    );
}

#[test]
fn the_one_with_more_free_capacity_wins() {
    let clock = Clock::new();
    let mut registry = registry();
    add(&mut registry, "a", x(), clock.at(0.0));
    add(&mut registry, "b", x(), clock.at(0.0));
    beat(&mut registry, "a", Some(Load::new(7, 8)), clock.at(0.0));
    beat(&mut registry, "b", Some(Load::new(1, 8)), clock.at(0.0));
    // b has 7 free, a 1: b takes routes until they are even, then a has its turn.
    let chosen = routes(&mut registry, &query(), clock.at(1.0), 7);
    assert_eq!(chosen[..6], ["b", "b", "b", "b", "b", "b"]);
}

#[test]
fn a_worker_at_capacity_is_never_chosen_while_another_has_room() {
    let clock = Clock::new();
    let mut registry = registry();
    for id in ["a", "b", "c"] {
        add(&mut registry, id, x(), clock.at(0.0));
    }
    beat(&mut registry, "a", Some(Load::new(8, 8)), clock.at(0.0));
    beat(&mut registry, "b", Some(Load::new(0, 8)), clock.at(0.0));
    beat(&mut registry, "c", Some(Load::new(0, 8)), clock.at(0.0));
    let chosen = routes(&mut registry, &query(), clock.at(1.0), 16);
    assert!(!chosen.contains(&"a".to_string()), "{chosen:?}");
    assert_eq!(chosen.iter().filter(|w| *w == "b").count(), 8);
}

#[test]
fn all_at_capacity_is_refused_and_says_so() {
    let clock = Clock::new();
    let mut registry = registry();
    add(&mut registry, "a", x(), clock.at(0.0));
    add(&mut registry, "b", x(), clock.at(0.0));
    beat(&mut registry, "a", Some(Load::new(4, 4)), clock.at(0.0));
    beat(&mut registry, "b", Some(Load::new(9, 4)), clock.at(0.0));
    assert_eq!(
        refusal(&mut registry, &query(), clock.at(1.0)),
        "No worker available for invoke:x: 2 providers: at capacity"
    );
    // round_robin does not look at load.
    let query = RouteQuery {
        strategy: Some(Strategy::RoundRobin),
        ..query()
    };
    assert_eq!(route(&mut registry, &query, clock.at(1.0)).unwrap(), "a");
}

#[test]
fn the_controllers_estimate_counts_routes_between_reports() {
    let clock = Clock::new();
    let mut registry = registry();
    add(&mut registry, "a", x(), clock.at(0.0));
    add(&mut registry, "b", x(), clock.at(0.0));
    beat(&mut registry, "a", Some(Load::new(0, 4)), clock.at(0.0));
    beat(&mut registry, "b", Some(Load::new(2, 4)), clock.at(0.0));
    // a reported 2 more free: the routes it is handed since count against
    // it, so it takes two before b has its turn.
    let chosen = routes(&mut registry, &query(), clock.at(1.0), 4);
    assert_eq!(chosen.iter().filter(|w| *w == "a").count(), 3, "{chosen:?}");
    // Both full by the estimate now (a: 0 + 3 of 4, b: 2 + 1 of 4, nearly):
    // still routed, the estimate being a guess.
    assert!(route(&mut registry, &query(), clock.at(1.0)).is_ok());
    // A report with a load resets the estimate: a, idle again, wins.
    beat(&mut registry, "a", Some(Load::new(0, 4)), clock.at(1.0));
    assert_eq!(route(&mut registry, &query(), clock.at(1.0)).unwrap(), "a");
    // A heartbeat without a load does not reset it; time fades it (the
    // default service time is 1 s): long after, b's reported 2 of 4 is all
    // that counts against it, and a's reported 3 of 4 is busier.
    beat(&mut registry, "b", None, clock.at(1.0));
    beat(&mut registry, "a", Some(Load::new(3, 4)), clock.at(9.0));
    assert_eq!(route(&mut registry, &query(), clock.at(9.0)).unwrap(), "b");
}

#[test]
fn the_estimate_never_refuses_a_route_only_the_workers_report_does() {
    let clock = Clock::new();
    let mut registry = registry();
    add(&mut registry, "a", x(), clock.at(0.0));
    beat(&mut registry, "a", Some(Load::new(0, 2)), clock.at(0.0));
    // Past its capacity by the estimate: the worker refuses for itself
    // (503 at_capacity) if it really is full.
    assert_eq!(
        routes(&mut registry, &query(), clock.at(1.0), 3),
        ["a", "a", "a"]
    );
    beat(&mut registry, "a", Some(Load::new(2, 2)), clock.at(2.0));
    assert_eq!(
        refusal(&mut registry, &query(), clock.at(2.0)),
        "No worker available for invoke:x: 1 provider: at capacity"
    );
}

#[test]
fn a_burst_spreads_over_workers_that_looked_idle() {
    let clock = Clock::new();
    let mut registry = registry();
    for id in ["a", "b", "c", "d"] {
        add(&mut registry, id, x(), clock.at(0.0));
        beat(&mut registry, id, Some(Load::new(0, 50)), clock.at(0.0));
    }
    let chosen = routes(&mut registry, &query(), clock.at(30.0), 40);
    for id in ["a", "b", "c", "d"] {
        let n = chosen.iter().filter(|w| *w == id).count();
        assert!((9..=11).contains(&n), "{id}: {n} of 40");
    }
}

#[test]
fn a_load_report_older_than_half_stale_after_is_unknown() {
    let clock = Clock::new();
    let mut registry = registry();
    add(&mut registry, "a", x(), clock.at(0.0));
    beat(&mut registry, "a", Some(Load::new(8, 8)), clock.at(0.0));
    beat(&mut registry, "a", None, clock.at(30.0));
    assert!(route(&mut registry, &query(), clock.at(30.0)).is_err());
    beat(&mut registry, "a", None, clock.at(61.0));
    assert_eq!(route(&mut registry, &query(), clock.at(61.0)).unwrap(), "a");
}

#[test]
fn max_concurrency_and_per_capability_in_flight_bound_a_provider() {
    let clock = Clock::new();
    let mut registry = registry();
    let capped = Capability {
        max_concurrency: Some(2),
        ..x()
    };
    add(&mut registry, "a", capped, clock.at(0.0));
    // The worker has room overall (3 of 100), the capability does not (2 of 2).
    beat(
        &mut registry,
        "a",
        Some(Load {
            capabilities: vec![CapabilityLoad {
                capability: "invoke:x".into(),
                in_flight: 2,
                window_s: 30.0,
                ..CapabilityLoad::default()
            }],
            ..Load::new(3, 100)
        }),
        clock.at(0.0),
    );
    assert!(refusal(&mut registry, &query(), clock.at(1.0)).ends_with("1 provider: at capacity"));
    // With no report, max_concurrency bounds the controller's own estimate:
    // a provider full by it yields to one with room.
    let mut registry = self::registry();
    for id in ["b", "c"] {
        add(
            &mut registry,
            id,
            Capability {
                max_concurrency: Some(1),
                ..x()
            },
            clock.at(0.0),
        );
    }
    let chosen = routes(&mut registry, &query(), clock.at(1.0), 2);
    assert_eq!(chosen, ["b", "c"]);
}

#[test]
fn latency_p95_skips_slow_providers_and_allows_unknown_ones() {
    let clock = Clock::new();
    let mut registry = registry();
    for id in ["slow1", "slow2", "fast", "unknown"] {
        add(&mut registry, id, x(), clock.at(0.0));
    }
    for id in ["slow1", "slow2"] {
        beat(
            &mut registry,
            id,
            Some(load_with_p95(0, 100, 180.0)),
            clock.at(0.0),
        );
    }
    beat(
        &mut registry,
        "fast",
        Some(load_with_p95(0, 100, 50.0)),
        clock.at(0.0),
    );
    let mut query = query();
    query.constraints.latency_p95_ms = Some(100.0);
    let chosen = routes(&mut registry, &query, clock.at(1.0), 8);
    assert!(
        chosen.iter().all(|w| w == "fast" || w == "unknown"),
        "{chosen:?}"
    );
    // At capacity and slow: both reasons, the commonest first.
    beat(
        &mut registry,
        "fast",
        Some(load_with_p95(100, 100, 50.0)),
        clock.at(2.0),
    );
    registry.deregister("unknown", None);
    assert_eq!(
        refusal(&mut registry, &query, clock.at(2.0)),
        "No worker available for invoke:x: 2 providers: latency p95 180 ms > 100 ms; 1 provider: at capacity"
    );
}

#[test]
fn requires_gpu_and_constraints_filter_providers() {
    let clock = Clock::new();
    let mut registry = registry();
    let announced = |gpu: bool, memory: u64, region: &str| Capability {
        requires_gpu: Some(gpu),
        constraints: json!({"min_memory_mb": memory, "region": region})
            .as_object()
            .cloned(),
        ..x()
    };
    add(
        &mut registry,
        "gpu-big",
        announced(true, 16384, "eu"),
        clock.at(0.0),
    );
    add(
        &mut registry,
        "gpu-small",
        announced(true, 2048, "eu"),
        clock.at(0.0),
    );
    add(
        &mut registry,
        "cpu-big",
        announced(false, 16384, "us"),
        clock.at(0.0),
    );
    add(&mut registry, "plain", x(), clock.at(0.0));
    let mut query = query();
    query.constraints.requires_gpu = true;
    let chosen = routes(&mut registry, &query, clock.at(1.0), 4);
    assert!(chosen.iter().all(|w| w.starts_with("gpu-")), "{chosen:?}");
    query
        .constraints
        .other
        .push(("min_memory_mb".into(), Requirement::AtLeast(4096.0)));
    assert_eq!(
        routes(&mut registry, &query, clock.at(1.0), 3),
        ["gpu-big"; 3]
    );
    query.constraints.requires_gpu = false;
    query
        .constraints
        .other
        .push(("region".into(), Requirement::Text("us".into())));
    assert_eq!(
        routes(&mut registry, &query, clock.at(1.0), 2),
        ["cpu-big"; 2]
    );
    query.constraints.other[1].1 = Requirement::Text("ap".into());
    assert_eq!(
        refusal(&mut registry, &query, clock.at(1.0)),
        "No worker available for invoke:x: 2 providers: constraint min_memory_mb ≥ 4096 not met; \
         2 providers: constraint region = \"ap\" not met"
    );
}

fn costing(cost: f64) -> Capability {
    Capability {
        cost_tokens_per_invocation: Some(cost),
        ..x()
    }
}

#[test]
fn a_budget_excludes_dearer_providers() {
    let clock = Clock::new();
    let mut registry = registry();
    add(&mut registry, "dear", costing(5.0), clock.at(0.0));
    add(&mut registry, "cheap", costing(1.0), clock.at(0.0));
    add(&mut registry, "unpriced", x(), clock.at(0.0));
    let query = RouteQuery {
        budget_tokens: Some(3.0),
        ..query()
    };
    let chosen = routes(&mut registry, &query, clock.at(1.0), 6);
    assert!(!chosen.contains(&"dear".to_string()), "{chosen:?}");
    let query = RouteQuery {
        budget_tokens: Some(0.5),
        exclude: vec!["unpriced".into()],
        ..query
    };
    assert_eq!(
        refusal(&mut registry, &query, clock.at(1.0)),
        "No worker available for invoke:x: 1 provider: cost 1 tokens > budget 0.5; \
         1 provider: cost 5 tokens > budget 0.5; 1 provider: excluded by the caller"
    );
}

#[test]
fn cheapest_takes_the_lowest_cost_then_the_least_loaded() {
    let clock = Clock::new();
    let mut registry = registry();
    add(&mut registry, "dear", costing(5.0), clock.at(0.0));
    add(&mut registry, "cheap-busy", costing(1.0), clock.at(0.0));
    add(&mut registry, "cheap-idle", costing(1.0), clock.at(0.0));
    add(&mut registry, "unpriced", x(), clock.at(0.0));
    beat(
        &mut registry,
        "cheap-busy",
        Some(Load::new(6, 8)),
        clock.at(0.0),
    );
    beat(
        &mut registry,
        "cheap-idle",
        Some(Load::new(0, 8)),
        clock.at(0.0),
    );
    let query = RouteQuery {
        strategy: Some(Strategy::Cheapest),
        ..query()
    };
    // cheap-idle until it is as busy as cheap-busy, then they share; both
    // full, the next cheapest.
    let chosen = routes(&mut registry, &query, clock.at(1.0), 10);
    assert_eq!(chosen[..6], ["cheap-idle"; 6]);
    assert!(chosen.iter().all(|w| w.starts_with("cheap-")), "{chosen:?}");
    assert_eq!(route(&mut registry, &query, clock.at(1.0)).unwrap(), "dear");
}

#[test]
fn excluded_workers_are_not_handed_out() {
    let clock = Clock::new();
    let mut registry = registry();
    add(&mut registry, "a", x(), clock.at(0.0));
    add(&mut registry, "b", x(), clock.at(0.0));
    let mut query = query();
    query.exclude = vec!["a".into()];
    assert_eq!(routes(&mut registry, &query, clock.at(1.0), 3), ["b"; 3]);
    query.exclude.push("b".into());
    assert_eq!(
        refusal(&mut registry, &query, clock.at(1.0)),
        "No worker available for invoke:x: 2 providers: excluded by the caller"
    );
}

fn report(registry: &mut Registry, id: &str, success: bool, now: Now) {
    let report = CallReport {
        worker_id: WorkerId::parse("worker_id", id).unwrap(),
        success,
        latency: None,
        load: None,
        capability: None,
    };
    registry.report(&report, now).unwrap();
}

#[test]
fn failures_in_a_row_eject_for_a_doubling_interval_until_a_heartbeat_or_success() {
    let clock = Clock::new();
    let mut registry = registry();
    add(&mut registry, "a", x(), clock.at(0.0));
    add(&mut registry, "b", x(), clock.at(0.0));
    report(&mut registry, "a", false, clock.at(1.0));
    report(&mut registry, "a", false, clock.at(1.0));
    report(&mut registry, "a", true, clock.at(1.0));
    report(&mut registry, "a", false, clock.at(1.0));
    report(&mut registry, "a", false, clock.at(1.0));
    assert!(registry
        .detail("a", clock.at(1.0))
        .unwrap()
        .worker
        .ejected_until
        .is_none());
    report(&mut registry, "a", false, clock.at(1.0));
    let detail = registry.detail("a", clock.at(1.0)).unwrap();
    assert_eq!(
        detail.worker.ejected_until,
        Some(clock.at(6.0).wall),
        "5 s from the third failure"
    );
    assert_eq!(routes(&mut registry, &query(), clock.at(2.0), 3), ["b"; 3]);
    // A heartbeat before the interval ends does not bring it back; one after does.
    beat(&mut registry, "a", None, clock.at(5.0));
    assert_eq!(routes(&mut registry, &query(), clock.at(7.0), 2), ["b"; 2]);
    beat(&mut registry, "a", None, clock.at(7.0));
    assert!(routes(&mut registry, &query(), clock.at(7.0), 2).contains(&"a".to_string()));
    // Failing again without a success in between: twice as long.
    for _ in 0..3 {
        report(&mut registry, "a", false, clock.at(8.0));
    }
    let until = registry
        .detail("a", clock.at(8.0))
        .unwrap()
        .worker
        .ejected_until;
    assert_eq!(until, Some(clock.at(18.0).wall));
    // A reported success brings it back at once.
    report(&mut registry, "a", true, clock.at(9.0));
    assert!(routes(&mut registry, &query(), clock.at(9.0), 2).contains(&"a".to_string()));
    // All ejected: said so.
    for id in ["a", "b"] {
        for _ in 0..3 {
            report(&mut registry, id, false, clock.at(10.0));
        }
    }
    assert_eq!(
        refusal(&mut registry, &query(), clock.at(10.0)),
        "No worker available for invoke:x: 2 providers: ejected after reported failures"
    );
}

#[test]
fn the_ejected_gauge_follows_ejections_however_they_end() {
    let clock = Clock::new();
    let mut registry = registry();
    let ejected = |registry: &mut Registry, at: f64| registry.gauges(clock.at(at)).ejected;
    for id in ["a", "b", "c"] {
        add(&mut registry, id, x(), clock.at(0.0));
    }
    for id in ["a", "b", "c"] {
        for _ in 0..3 {
            report(&mut registry, id, false, clock.at(1.0));
        }
    }
    assert_eq!(ejected(&mut registry, 1.0), 3);
    // A fourth failure while ejected begins nothing more.
    report(&mut registry, "a", false, clock.at(1.0));
    assert_eq!(ejected(&mut registry, 1.0), 3);
    // A success ends one, a heartbeat after the interval another, and a
    // deregistration takes the third with its record.
    report(&mut registry, "a", true, clock.at(2.0));
    beat(&mut registry, "b", None, clock.at(7.0));
    registry.deregister("c", None);
    assert_eq!(ejected(&mut registry, 7.0), 0);
    // Re-registering an ejected id starts afresh.
    for _ in 0..3 {
        report(&mut registry, "a", false, clock.at(8.0));
    }
    add(&mut registry, "a", x(), clock.at(8.0));
    assert_eq!(ejected(&mut registry, 8.0), 0);
}

#[test]
fn a_report_for_an_unknown_worker_is_refused() {
    let clock = Clock::new();
    let mut registry = registry();
    let report = CallReport {
        worker_id: WorkerId::parse("worker_id", "ghost").unwrap(),
        success: false,
        latency: None,
        load: None,
        capability: None,
    };
    assert!(registry.report(&report, clock.at(0.0)).is_err());
}

#[test]
fn the_last_fifth_of_capacity_is_kept_for_routes_that_bid() {
    let clock = Clock::new();
    let mut registry = registry();
    let bidding = Capability {
        slo_bid: Some(2.0),
        ..x()
    };
    add(&mut registry, "a", bidding, clock.at(0.0));
    beat(&mut registry, "a", Some(Load::new(8, 10)), clock.at(0.0));
    assert_eq!(
        refusal(&mut registry, &query(), clock.at(1.0)),
        "No worker available for invoke:x: 1 provider: last 20 % of capacity reserved for slo_bid ≥ 2"
    );
    let low = RouteQuery {
        slo_bid: Some(1.0),
        ..query()
    };
    assert!(route(&mut registry, &low, clock.at(1.0)).is_err());
    let high = RouteQuery {
        slo_bid: Some(2.0),
        ..query()
    };
    assert_eq!(routes(&mut registry, &high, clock.at(1.0), 2), ["a", "a"]);
    beat(&mut registry, "a", Some(Load::new(10, 10)), clock.at(1.0));
    assert!(route(&mut registry, &high, clock.at(1.0)).is_err(), "full");
    // Below 80 %, anyone.
    beat(&mut registry, "a", Some(Load::new(7, 10)), clock.at(2.0));
    assert!(route(&mut registry, &query(), clock.at(2.0)).is_ok());
}

#[test]
fn nobody_serving_it_says_nothing_more() {
    let clock = Clock::new();
    let mut registry = registry();
    assert_eq!(
        refusal(&mut registry, &query(), clock.at(0.0)),
        "No worker available for invoke:x"
    );
}
