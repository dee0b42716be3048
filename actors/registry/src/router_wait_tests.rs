//! Ordinary tests of `least_loaded`'s expected wait over the [`Registry`]
//! core: four workers announcing the same capacity, one of them slow by what
//! its callers report, not by what it announces.

use std::time::Duration;

use super::core::{Now, Registry};
use super::RegistrySettings;
use crank_proto::domain::{CallReport, ObservedLoad, Registration, RouteQuery, WorkerId};
use crank_proto::wire::{Capability, Load, RegisterRequest};

use super::test_clock::TestClock as Clock;

fn registry() -> Registry {
    Registry::new(RegistrySettings {
        stale_after: Duration::from_secs(120),
        protect_threshold: 1.0,
        ..RegistrySettings::default()
    })
}

/// Workers `a`…`d`, each announcing capacity 8.
fn fleet(now: Now) -> Registry {
    let mut registry = registry();
    for id in ["a", "b", "c", "d"] {
        let registration = Registration::try_from(RegisterRequest {
            worker_id: id.into(),
            worker_url: format!("https://{id}.local:8500"),
            capabilities: vec![Capability::new("invoke", "x", "1.0.0")],
            instance: None,
            health_check: None,
        })
        .unwrap();
        registry.register(registration, "admin/test", now);
        let load = crank_proto::domain::WorkerLoad::try_from(&Load::new(0, 8)).unwrap();
        registry.heartbeat(id, None, Some(load), now).unwrap();
    }
    registry
}

fn report(registry: &mut Registry, id: &str, latency_ms: u64, now: Now) {
    let report = CallReport {
        worker_id: WorkerId::parse("worker_id", id).unwrap(),
        success: true,
        latency: Some(Duration::from_millis(latency_ms)),
        load: None,
        capability: None,
    };
    registry.report(&report, now).unwrap();
}

fn latency_of(id: &str) -> u64 {
    if id == "d" {
        100
    } else {
        10
    }
}

/// `calls` routes, each reported back at once with its worker's latency;
/// the share that went to `d`.
fn share_of_d(registry: &mut Registry, clock: &Clock, from: f64, calls: usize) -> f64 {
    let mut to_d = 0;
    for i in 0..calls {
        let now = clock.at(from + i as f64 * 0.01);
        let id = registry
            .route(&RouteQuery::any_version("invoke", "x"), now)
            .unwrap()
            .worker_id;
        to_d += usize::from(id == "d");
        report(registry, &id, latency_of(&id), now);
    }
    to_d as f64 / calls as f64
}

#[test]
fn a_slow_provider_is_seen_within_a_few_calls_and_then_mostly_avoided() {
    let clock = Clock::new();
    let mut registry = fleet(clock.at(0.0));
    // The first round measures everyone; from then on d loses every draw it
    // is in while the others have room.
    share_of_d(&mut registry, &clock, 1.0, 8);
    let share = share_of_d(&mut registry, &clock, 2.0, 400);
    assert!(share < 0.02, "d took {:.1} % of calls", share * 100.0);
}

#[test]
fn equal_latencies_keep_round_robin_order() {
    let clock = Clock::new();
    let mut registry = fleet(clock.at(0.0));
    for id in ["a", "b", "c", "d"] {
        report(&mut registry, id, 10, clock.at(0.5));
    }
    let chosen: Vec<String> = (0..8)
        .map(|_| {
            registry
                .route(&RouteQuery::any_version("invoke", "x"), clock.at(1.0))
                .unwrap()
                .worker_id
        })
        .collect();
    assert_eq!(chosen, ["a", "b", "c", "d", "a", "b", "c", "d"]);
}

#[test]
fn the_slow_one_takes_calls_once_the_fast_ones_would_queue_longer() {
    let clock = Clock::new();
    let mut registry = fleet(clock.at(0.0));
    for id in ["a", "b", "c", "d"] {
        report(&mut registry, id, latency_of(id), clock.at(0.5));
    }
    // Routes handed out and not reported back: the fast three fill up by
    // the estimate, and past ten rounds of their capacity (80 each) a call
    // is expected to wait longer there than at idle d.
    let now = clock.at(1.0);
    let mut to_d = 0;
    for _ in 0..300 {
        let id = registry
            .route(&RouteQuery::any_version("invoke", "x"), now)
            .unwrap()
            .worker_id;
        to_d += usize::from(id == "d");
    }
    assert!(to_d > 0, "d never took a call");
    assert!(to_d < 100, "d took {to_d} of 300");
}

#[test]
fn a_report_with_the_answers_load_stands_for_the_workers_figures() {
    let clock = Clock::new();
    let mut registry = fleet(clock.at(0.0));
    for id in ["a", "b", "c", "d"] {
        report(&mut registry, id, 10, clock.at(0.5));
    }
    // a's last answer said it is full: it is refused as at capacity, as a
    // heartbeat saying so would make it.
    let full = CallReport {
        worker_id: WorkerId::parse("worker_id", "a").unwrap(),
        success: true,
        latency: Some(Duration::from_millis(10)),
        load: Some(ObservedLoad {
            in_flight: 8,
            capacity: 8,
            service_time: Duration::from_millis(10),
        }),
        capability: None,
    };
    registry.report(&full, clock.at(0.6)).unwrap();
    let only_a = |registry: &mut Registry, now| {
        let mut query = RouteQuery::any_version("invoke", "x");
        for id in ["b", "c", "d"] {
            query.exclude.push(id.to_owned());
        }
        registry.route(&query, now).map(|choice| choice.worker_id)
    };
    let refused = only_a(&mut registry, clock.at(0.7)).unwrap_err();
    assert!(refused.to_string().contains("at capacity"), "{refused}");
    // Its next heartbeat's load replaces the answer's.
    let load = crank_proto::domain::WorkerLoad::try_from(&Load::new(0, 8)).unwrap();
    registry
        .heartbeat("a", None, Some(load), clock.at(1.0))
        .unwrap();
    assert_eq!(only_a(&mut registry, clock.at(1.1)).unwrap(), "a");
}

#[test]
fn a_draining_worker_is_never_routed_to_and_a_new_registration_clears_it() {
    let clock = Clock::new();
    let mut registry = fleet(clock.at(0.0));
    registry.drain("a", None, clock.at(1.0)).unwrap();
    assert!(registry.drain("nobody", None, clock.at(1.0)).is_err());
    for _ in 0..12 {
        let id = registry
            .route(&RouteQuery::any_version("invoke", "x"), clock.at(1.0))
            .unwrap()
            .worker_id;
        assert_ne!(id, "a");
    }
    // Its heartbeats go on: still draining.
    let load = crank_proto::domain::WorkerLoad::try_from(&Load::new(0, 8)).unwrap();
    registry
        .heartbeat("a", None, Some(load), clock.at(2.0))
        .unwrap();
    let listed = registry.list(clock.at(2.0));
    let a = listed.iter().find(|w| w.worker_id == "a").unwrap();
    assert_eq!(a.status, crank_proto::wire::WorkerStatus::Draining);
    let only_a = |registry: &mut Registry| {
        let mut query = RouteQuery::any_version("invoke", "x");
        query.exclude = vec!["b".into(), "c".into(), "d".into()];
        registry.route(&query, clock.at(2.0)).map(|c| c.worker_id)
    };
    let refused = only_a(&mut registry).unwrap_err();
    assert!(
        refused.to_string().contains("1 provider: draining"),
        "{refused}"
    );
    // A restarted process registers again: routed to once more.
    let registration = Registration::try_from(RegisterRequest {
        worker_id: "a".into(),
        worker_url: "https://a.local:8500".into(),
        capabilities: vec![Capability::new("invoke", "x", "1.0.0")],
        instance: None,
        health_check: None,
    })
    .unwrap();
    registry.register(registration, "admin/test", clock.at(3.0));
    assert_eq!(only_a(&mut registry).unwrap(), "a");
}

#[test]
fn an_explained_route_says_why_the_others_were_passed_over_and_a_plain_one_does_not() {
    let clock = Clock::new();
    let mut registry = fleet(clock.at(0.0));
    registry.drain("a", None, clock.at(1.0)).unwrap();
    let mut query = RouteQuery::any_version("invoke", "x");
    query.exclude = vec!["b".into()];
    let explained = registry
        .route_explained(&query, clock.at(1.0), true)
        .unwrap();
    assert!(["c", "d"].contains(&explained.worker_id.as_str()));
    assert_eq!(explained.candidates, 4);
    assert_eq!(
        explained.strategy,
        crank_proto::domain::Strategy::LeastLoaded
    );
    assert_eq!(
        explained.rejected,
        vec![
            (1, "draining".to_owned()),
            (1, "excluded by the caller".to_owned())
        ]
    );
    let plain = registry.route(&query, clock.at(1.0)).unwrap();
    assert!(plain.rejected.is_empty());
}
