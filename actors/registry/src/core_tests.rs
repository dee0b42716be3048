//! Ordinary tests of the [`Registry`] core and its index: no actix system, the
//! clock passed in.

use std::time::Duration;

use chrono::Utc;

use super::core::{Now, Registry};
use super::RegistrySettings;
use crank_proto::domain::{Registration, RouteQuery};
use crank_proto::wire::{Capability, RegisterRequest, WorkerStatus};

/// A clock that starts now and moves only when told.
use super::test_clock::TestClock as Clock;

fn registration(id: &str, name: &str) -> Registration {
    Registration::try_from(RegisterRequest {
        worker_id: id.into(),
        worker_url: format!("https://{id}.local:8500"),
        capabilities: vec![Capability::new("invoke", name, "1.0.0")],
        instance: None,
        health_check: None,
    })
    .unwrap()
}

/// A registry that judges every worker on its own (no mass-expiry protection),
/// for the tests of everything else.
fn registry() -> Registry {
    Registry::new(RegistrySettings {
        stale_after: Duration::from_secs(120),
        evict_after: Some(Duration::from_secs(600)),
        protect_threshold: 1.0,
        ..RegistrySettings::default()
    })
}

/// A registry that holds back when more than half the fleet falls silent.
fn protected_registry() -> Registry {
    Registry::new(RegistrySettings {
        protect_threshold: 0.5,
        ..RegistrySettings::default()
    })
}

#[test]
fn a_sweep_examines_only_the_deadlines_that_passed() {
    let clock = Clock::new();
    let mut registry = registry();
    for i in 0..1000 {
        registry.register(
            registration(&format!("old-{i}"), "x"),
            "admin/t",
            clock.at(0),
        );
    }
    for i in 0..10 {
        registry.register(
            registration(&format!("new-{i}"), "x"),
            "admin/t",
            clock.at(60),
        );
    }
    let early = registry.sweep_step(clock.at(100), usize::MAX);
    assert_eq!(early.examined, 0, "nothing is due yet");
    let step = registry.sweep_step(clock.at(121), usize::MAX);
    assert_eq!(step.examined, 1000, "the 10 newer workers are not due");
    assert_eq!(step.newly_stale.len(), 1000);
    assert_eq!(registry.counts(), (1010, 10, 1));
}

#[test]
fn a_worker_that_heartbeats_is_queued_again_not_marked() {
    let clock = Clock::new();
    let mut registry = registry();
    registry.register(registration("w1", "x"), "admin/t", clock.at(0));
    registry.heartbeat("w1", None, None, clock.at(100)).unwrap();
    let step = registry.sweep_step(clock.at(121), usize::MAX);
    assert_eq!((step.examined, step.newly_stale.len()), (1, 0));
    assert_eq!(registry.sweep_step(clock.at(219), usize::MAX).examined, 0);
    let step = registry.sweep_step(clock.at(220), usize::MAX);
    assert_eq!(step.newly_stale.len(), 1, "stale 120 s after its last beat");
    let step = registry.sweep_step(clock.at(820), usize::MAX);
    assert_eq!(step.evicted.len(), 1, "evicted 600 s after going stale");
    assert_eq!(registry.counts(), (0, 0, 0));
}

#[test]
fn a_revived_worker_that_is_never_evicted_goes_stale_again() {
    // Found by the simulation (seed 3): with no eviction, marking a worker
    // stale dropped its only deadline, and a heartbeat did not queue a new
    // one, so once revived it was never marked stale again.
    let clock = Clock::new();
    let mut registry = Registry::new(RegistrySettings {
        evict_after: None,
        ..RegistrySettings::default()
    });
    registry.register(registration("w1", "x"), "admin/t", clock.at(0));
    assert_eq!(
        registry
            .sweep_step(clock.at(121), usize::MAX)
            .newly_stale
            .len(),
        1
    );
    registry.heartbeat("w1", None, None, clock.at(130)).unwrap();
    assert_eq!(registry.queued_deadlines(), 1);
    let step = registry.sweep_step(clock.at(251), usize::MAX);
    assert_eq!(
        step.newly_stale.len(),
        1,
        "stale again 120 s after its last beat"
    );
}

#[test]
fn a_step_stops_at_its_budget_and_says_more_is_due() {
    let clock = Clock::new();
    let mut registry = registry();
    for i in 0..10 {
        registry.register(registration(&format!("w{i}"), "x"), "admin/t", clock.at(0));
    }
    let first = registry.sweep_step(clock.at(130), 4);
    assert_eq!((first.newly_stale.len(), first.more), (4, true));
    let second = registry.sweep_step(clock.at(130), 100);
    assert_eq!((second.newly_stale.len(), second.more), (6, false));
}

#[test]
fn registering_again_leaves_one_live_deadline() {
    let clock = Clock::new();
    let mut registry = registry();
    registry.register(registration("w1", "x"), "admin/t", clock.at(0));
    registry.register(registration("w1", "x"), "admin/t", clock.at(50));
    assert_eq!(registry.queued_deadlines(), 2);
    let step = registry.sweep_step(clock.at(121), usize::MAX);
    assert!(
        step.newly_stale.is_empty(),
        "the old record's deadline is dropped"
    );
    assert_eq!(registry.queued_deadlines(), 1);
    let step = registry.sweep_step(clock.at(171), usize::MAX);
    assert_eq!(step.newly_stale.len(), 1);
}

#[test]
fn replicas_share_one_capability_set_until_the_last_leaves() {
    let clock = Clock::new();
    let mut registry = registry();
    for i in 0..100 {
        registry.register(registration(&format!("w{i}"), "x"), "admin/t", clock.at(0));
    }
    registry.register(registration("other", "y"), "admin/t", clock.at(0));
    assert_eq!(registry.shared_capability_sets(), 2);
    registry.deregister("other", None);
    assert_eq!(registry.shared_capability_sets(), 1);
    for i in 0..100 {
        registry.deregister(&format!("w{i}"), None);
    }
    assert_eq!(registry.shared_capability_sets(), 0);
}

#[test]
fn the_wall_time_of_a_heartbeat_is_derived_from_the_monotonic_clock() {
    let clock = Clock::new();
    let mut registry = registry();
    registry.register(registration("w1", "x"), "admin/t", clock.at(0));
    registry.heartbeat("w1", None, None, clock.at(10)).unwrap();
    let view = registry.list(clock.at(15)).remove(0);
    assert_eq!(view.last_heartbeat, clock.at(10).wall);
    assert_eq!(view.registered_at, clock.at(0).wall);
    assert_eq!(view.since_heartbeat, Duration::from_secs(5));
    assert_eq!(view.status, WorkerStatus::Healthy);
}

#[test]
fn a_stale_worker_is_passed_over_by_the_router_without_a_sweep() {
    let clock = Clock::new();
    let mut registry = registry();
    registry.register(registration("a", "x"), "admin/t", clock.at(0));
    registry.register(registration("b", "x"), "admin/t", clock.at(60));
    let query = RouteQuery::any_version("invoke", "x");
    for _ in 0..3 {
        let choice = registry.route(&query, clock.at(150)).unwrap();
        assert_eq!(choice.worker_id, "b");
    }
    assert!(registry.route(&query, clock.at(181)).is_err());
}

fn fleet(registry: &mut Registry, clock: &Clock, size: usize) {
    for i in 0..size {
        registry.register(registration(&format!("w{i}"), "x"), "admin/t", clock.at(0));
    }
}

fn statuses(registry: &Registry, now: Now) -> Vec<WorkerStatus> {
    registry.list(now).into_iter().map(|w| w.status).collect()
}

#[test]
fn most_of_the_fleet_falling_silent_at_once_is_held_back_then_judged() {
    let clock = Clock::new();
    let mut registry = protected_registry();
    fleet(&mut registry, &clock, 10);
    for second in [60, 110, 170, 230] {
        registry
            .heartbeat("w0", None, None, clock.at(second))
            .unwrap();
        registry
            .heartbeat("w1", None, None, clock.at(second))
            .unwrap();
    }
    // 8 of 10 silent for 121 s: more than the 50 % threshold.
    let step = registry.sweep_step(clock.at(121), usize::MAX);
    assert!(step.newly_stale.is_empty(), "{:?}", step.newly_stale);
    assert_eq!(step.protected, Some(0.8));
    let suspect = statuses(&registry, clock.at(121))
        .into_iter()
        .filter(|s| *s == WorkerStatus::Suspect)
        .count();
    assert_eq!(suspect, 8, "silent workers are suspect");
    let query = RouteQuery::any_version("invoke", "x");
    let routed: std::collections::HashSet<String> = (0..10)
        .map(|_| registry.route(&query, clock.at(121)).unwrap().worker_id)
        .collect();
    assert_eq!(routed.len(), 10, "suspects are still routed to");

    // The grace period (stale_after / 2) ends at 181: the silent ones are
    // judged, and not protected again right away.
    assert!(registry
        .sweep_step(clock.at(180), usize::MAX)
        .newly_stale
        .is_empty());
    let step = registry.sweep_step(clock.at(182), usize::MAX);
    assert_eq!(step.newly_stale.len(), 8);
    assert_eq!(step.protected, None);
    let step = registry.sweep_step(clock.at(782), usize::MAX);
    assert_eq!(step.evicted.len(), 8, "and evicted as usual");
    assert_eq!(registry.counts().0, 2);
}

#[test]
fn a_minority_going_silent_is_judged_at_once() {
    let clock = Clock::new();
    let mut registry = protected_registry();
    fleet(&mut registry, &clock, 10);
    for i in 0..7 {
        registry
            .heartbeat(&format!("w{i}"), None, None, clock.at(60))
            .unwrap();
    }
    let step = registry.sweep_step(clock.at(121), usize::MAX);
    assert_eq!((step.newly_stale.len(), step.protected), (3, None));
}

#[test]
fn a_fleet_of_two_is_never_protected() {
    let clock = Clock::new();
    let mut registry = protected_registry();
    fleet(&mut registry, &clock, 2);
    registry.heartbeat("w0", None, None, clock.at(60)).unwrap();
    let step = registry.sweep_step(clock.at(121), usize::MAX);
    assert_eq!((step.newly_stale.len(), step.protected), (1, None));
}

#[test]
fn after_a_pause_silent_workers_get_a_grace_period_to_prove_themselves() {
    let clock = Clock::new();
    let mut registry = registry();
    fleet(&mut registry, &clock, 5);
    // The controller stood still from 30 s to 150 s: nobody's beats arrived.
    registry.begin_grace(
        clock.at(150),
        super::GraceReason::Paused {
            unseen_for: Duration::from_secs(120),
        },
    );
    assert!(statuses(&registry, clock.at(150))
        .iter()
        .all(|s| *s == WorkerStatus::Suspect));
    for i in 0..3 {
        registry
            .heartbeat(&format!("w{i}"), None, None, clock.at(155))
            .unwrap();
    }
    assert!(registry
        .sweep_step(clock.at(200), usize::MAX)
        .newly_stale
        .is_empty());
    // Grace ends at 210: the two that never came back are stale.
    let step = registry.sweep_step(clock.at(211), usize::MAX);
    let mut stale: Vec<String> = step
        .newly_stale
        .iter()
        .map(|(id, _)| id.to_string())
        .collect();
    stale.sort();
    assert_eq!(stale, ["w3", "w4"]);
}

fn replica(id: &str, owner: &str, status: WorkerStatus) -> crank_proto::wire::ReplicatedWorker {
    crank_proto::wire::ReplicatedWorker {
        worker_id: id.into(),
        worker_url: format!("https://{id}.local:8500"),
        capabilities: vec![Capability::new("invoke", "x", "1.0.0")],
        instance: None,
        registered_by: "worker/".to_owned() + id,
        registered_at: Utc::now(),
        owner: owner.into(),
        status,
    }
}

fn clustered(me: &str) -> Registry {
    let mut registry = registry();
    registry.replicate_as(me);
    registry
}

#[test]
fn a_record_owned_elsewhere_is_routed_by_its_published_state_and_never_judged_here() {
    let clock = Clock::new();
    let mut registry = clustered("c1");
    registry
        .apply_replica(replica("w1", "c2", WorkerStatus::Healthy), clock.at(0))
        .unwrap();
    let query = RouteQuery::any_version("invoke", "x");
    // Long past stale_after: its owner judges it, and says it is healthy.
    assert!(registry.route(&query, clock.at(500)).is_ok());
    let step = registry.sweep_step(clock.at(500), usize::MAX);
    assert!(step.newly_stale.is_empty());
    registry
        .apply_replica(replica("w1", "c2", WorkerStatus::Stale), clock.at(501))
        .unwrap();
    assert!(registry.route(&query, clock.at(501)).is_err());
    assert_eq!(registry.counts(), (1, 0, 1));
    registry.apply_removal("w1");
    assert_eq!(registry.counts(), (0, 0, 0));
}

#[test]
fn a_heartbeat_here_takes_ownership_and_publishes_it() {
    let clock = Clock::new();
    let mut registry = clustered("c1");
    registry.record_events();
    registry
        .apply_replica(replica("w1", "c2", WorkerStatus::Healthy), clock.at(0))
        .unwrap();
    registry.take_events();
    registry.heartbeat("w1", None, None, clock.at(10)).unwrap();
    let events = registry.take_events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, super::ChangeKind::Owned);
    let published = events[0].replica.as_ref().expect("a replica to write");
    assert_eq!(published.owner, "c1");
    // Judged here now: stale 120 s after its last beat here.
    assert!(registry
        .sweep_step(clock.at(129), usize::MAX)
        .newly_stale
        .is_empty());
    assert_eq!(
        registry
            .sweep_step(clock.at(131), usize::MAX)
            .newly_stale
            .len(),
        1
    );
}

#[test]
fn the_stores_order_decides_the_owner() {
    let clock = Clock::new();
    let mut registry = clustered("c1");
    registry
        .apply_replica(replica("w1", "c2", WorkerStatus::Healthy), clock.at(0))
        .unwrap();
    registry.heartbeat("w1", None, None, clock.at(1)).unwrap();
    // c2's older word arrives after our takeover, then our own write comes
    // back: the store's last word is ours, and so is the record.
    registry
        .apply_replica(replica("w1", "c2", WorkerStatus::Stale), clock.at(2))
        .unwrap();
    let query = RouteQuery::any_version("invoke", "x");
    assert!(registry.route(&query, clock.at(2)).is_err());
    registry
        .apply_replica(replica("w1", "c1", WorkerStatus::Healthy), clock.at(3))
        .unwrap();
    assert!(registry.route(&query, clock.at(3)).is_ok());
    assert_eq!(registry.owned_replicas().len(), 1);
}

#[test]
fn workers_of_a_gone_controller_are_adopted_and_judged_from_its_last_word() {
    let clock = Clock::new();
    let mut registry = clustered("c1");
    registry
        .apply_replica(replica("w1", "c2", WorkerStatus::Healthy), clock.at(0))
        .unwrap();
    registry
        .apply_replica(replica("w2", "c3", WorkerStatus::Healthy), clock.at(0))
        .unwrap();
    let live: std::collections::HashSet<String> = ["c1".to_string(), "c3".to_string()].into();
    // c2 could last have heard w1 at 50 s.
    let adopted = registry.adopt_orphans(&live, clock.at(50).mono);
    assert_eq!(adopted, 1);
    assert!(registry
        .sweep_step(clock.at(169), usize::MAX)
        .newly_stale
        .is_empty());
    let step = registry.sweep_step(clock.at(171), usize::MAX);
    let stale: Vec<&str> = step.newly_stale.iter().map(|(id, _)| &**id).collect();
    assert_eq!(stale, ["w1"], "w2's owner c3 is alive and judges it");
    assert_eq!(
        registry.sweep_step(clock.at(771), usize::MAX).evicted.len(),
        1
    );
}

#[test]
fn loading_the_store_drops_what_it_no_longer_holds() {
    let clock = Clock::new();
    let mut registry = clustered("c1");
    registry
        .apply_replica(replica("gone", "c2", WorkerStatus::Healthy), clock.at(0))
        .unwrap();
    registry.load_replicas(
        vec![
            replica("w1", "c2", WorkerStatus::Healthy),
            replica("mine", "c1", WorkerStatus::Healthy),
        ],
        clock.at(1),
    );
    let ids: Vec<String> = registry
        .list(clock.at(1))
        .into_iter()
        .map(|w| w.worker_id)
        .collect();
    assert_eq!(ids, ["mine", "w1"]);
    assert_eq!(
        registry.owned_replicas().len(),
        1,
        "a record naming us is ours"
    );
}

#[test]
fn an_ejection_of_a_record_owned_elsewhere_ends_with_its_interval() {
    let clock = Clock::new();
    let mut registry = clustered("c1");
    registry
        .apply_replica(replica("w1", "c2", WorkerStatus::Healthy), clock.at(0))
        .unwrap();
    // Callers of this controller report w1 failing: ejected here for 5 s.
    for _ in 0..3 {
        let report = crank_proto::domain::CallReport {
            worker_id: crank_proto::domain::WorkerId::parse("worker_id", "w1").unwrap(),
            success: false,
            latency: None,
            load: None,
            capability: None,
        };
        registry.report(&report, clock.at(1)).unwrap();
    }
    let query = RouteQuery::any_version("invoke", "x");
    assert!(registry.route(&query, clock.at(2)).is_err());
    assert_eq!(registry.gauges(clock.at(2)).ejected, 1);
    // Its heartbeats go to c2, never here: the sweep after the interval,
    // with c2 still publishing it healthy, ends the ejection.
    registry.sweep_step(clock.at(4), usize::MAX);
    assert!(registry.route(&query, clock.at(4)).is_err(), "not before");
    registry.sweep_step(clock.at(7), usize::MAX);
    assert!(registry.route(&query, clock.at(7)).is_ok());
    assert_eq!(registry.gauges(clock.at(7)).ejected, 0);
}

#[test]
fn a_controllers_own_write_coming_back_after_a_reload_is_held_again() {
    // Found by the cluster simulation (seed 0): a registration whose write
    // was still pending when a compaction made the watch reload the store
    // was dropped by the reload, and its own write coming back was ignored,
    // so the controller that owned the worker no longer held it.
    let clock = Clock::new();
    let mut registry = registry();
    registry.replicate_as("c0");
    registry.record_events();
    registry.register(registration("w7", "x"), "admin/t", clock.at(0));
    let written = registry
        .take_events()
        .into_iter()
        .find_map(|event| event.replica)
        .unwrap();
    registry.load_replicas(Vec::new(), clock.at(1));
    assert_eq!(registry.counts().0, 0, "the reload dropped it");
    registry
        .apply_replica((*written).clone(), clock.at(2))
        .unwrap();
    assert_eq!(registry.counts().0, 1, "the store's word brings it back");
    assert_eq!(
        registry.workers.get("w7").unwrap().owner,
        super::record::Owner::Local
    );
}
