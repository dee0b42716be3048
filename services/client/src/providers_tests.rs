//! Ordinary tests of the local balancer, time paused where it matters.

use std::time::Duration;

use chrono::Utc;
use crank_proto::domain::ObservedLoad;
use crank_proto::wire::{
    SnapshotReason, WatchEvent, WatchKind, WatchSnapshot, WorkerStatus, WorkerSummary,
};
use tokio::time::Instant;

use super::Providers;

const GREET: &str = "invoke:hello.greet";

fn summary(id: &str) -> WorkerSummary {
    WorkerSummary {
        worker_id: id.into(),
        worker_url: format!("https://{id}.local:8500"),
        is_healthy: true,
        status: WorkerStatus::Healthy,
        last_heartbeat: Utc::now(),
        registered_at: None,
        capabilities: vec![GREET.into()],
        ejected_until: None,
    }
}

fn fleet(ids: &[&str]) -> Providers {
    let mut providers = Providers::default();
    providers.apply_snapshot(&WatchSnapshot {
        reason: SnapshotReason::Start,
        last_event_id: 7,
        workers: ids.iter().map(|id| summary(id)).collect(),
    });
    providers
}

fn event(id: u64, kind: WatchKind, worker: &str) -> WatchEvent {
    WatchEvent {
        id,
        kind,
        worker_id: worker.into(),
        worker_url: Some(format!("https://{worker}.local:8500")),
        capabilities: vec![GREET.into()],
        at: Utc::now(),
    }
}

fn choose(providers: &mut Providers, now: Instant) -> String {
    providers.choose(GREET, &[], false, now).unwrap().worker_id
}

/// One call to whoever is chosen, answered after `latency_of` it.
fn call(providers: &mut Providers, latency_of: impl Fn(&str) -> u64, now: Instant) -> String {
    let id = choose(providers, now);
    providers.started(&id);
    let latency = Duration::from_millis(latency_of(&id));
    providers.finished(&id, latency, true, None, now);
    id
}

#[test]
fn a_snapshot_and_its_changes_make_the_live_set() {
    let mut providers = fleet(&["a", "b"]);
    assert!(providers.loaded());
    assert_eq!(providers.last_event_id(), Some(7));
    providers.apply_event(&event(8, WatchKind::Registered, "c"));
    providers.apply_event(&event(9, WatchKind::Stale, "a"));
    providers.apply_event(&event(10, WatchKind::Deregistered, "b"));
    let now = Instant::now();
    let chosen: Vec<String> = (0..4).map(|_| choose(&mut providers, now)).collect();
    assert_eq!(chosen, ["c", "c", "c", "c"]);
    providers.apply_event(&event(11, WatchKind::Evicted, "c"));
    assert!(providers.choose(GREET, &[], false, now).is_none());
    providers.apply_event(&event(12, WatchKind::Healthy, "a"));
    assert_eq!(choose(&mut providers, now), "a");
    assert_eq!(providers.last_event_id(), Some(12));
    // Draining: out at once, and a heartbeat's healthy does not bring it back.
    providers.apply_event(&event(13, WatchKind::Draining, "a"));
    providers.apply_event(&event(14, WatchKind::Healthy, "a"));
    assert!(providers.choose(GREET, &[], false, now).is_none());
    providers.apply_event(&event(15, WatchKind::Registered, "a"));
    assert_eq!(choose(&mut providers, now), "a");
}

#[test]
fn unmeasured_providers_are_taken_in_rotation_order() {
    let mut providers = fleet(&["a", "b", "c"]);
    let now = Instant::now();
    let chosen: Vec<String> = (0..6).map(|_| choose(&mut providers, now)).collect();
    assert_eq!(chosen, ["a", "b", "c", "a", "b", "c"]);
}

#[tokio::test(start_paused = true)]
async fn a_slow_provider_is_seen_within_a_few_calls_and_then_avoided() {
    let mut providers = fleet(&["a", "b", "c", "d"]);
    let latency_of = |id: &str| if id == "d" { 100 } else { 10 };
    for _ in 0..4 {
        call(&mut providers, latency_of, Instant::now());
        tokio::time::advance(Duration::from_millis(10)).await;
    }
    let mut to_d = 0;
    for _ in 0..400 {
        to_d += usize::from(call(&mut providers, latency_of, Instant::now()) == "d");
        tokio::time::advance(Duration::from_millis(10)).await;
    }
    assert!(to_d < 8, "d took {to_d} of 400 calls");
}

#[tokio::test(start_paused = true)]
async fn an_idle_slow_provider_is_tried_again_once_its_estimate_decays() {
    let mut providers = fleet(&["a", "d"]);
    let latency_of = |id: &str| if id == "d" { 100 } else { 10 };
    providers.finished("d", Duration::from_millis(100), true, None, Instant::now());
    // a answers every call in 10 ms, its estimate renewed each time; d's,
    // untouched, decays below it within half a minute (100 ms × e^-t/10 s
    // < 10 ms from t = 23 s on), and one call measures d again.
    let mut probes = Vec::new();
    for step in 0..6000 {
        if call(&mut providers, latency_of, Instant::now()) == "d" {
            probes.push(step);
        }
        tokio::time::advance(Duration::from_millis(10)).await;
    }
    assert!(!probes.is_empty(), "d was never tried again");
    assert!(probes[0] >= 2000, "d was tried after {} ms", probes[0] * 10);
    assert!(
        probes.len() <= 6,
        "d was tried {} times in a minute",
        probes.len()
    );
}

#[tokio::test(start_paused = true)]
async fn the_answers_load_counts_calls_of_other_clients() {
    let mut providers = fleet(&["a", "b"]);
    let now = Instant::now();
    let full = ObservedLoad {
        in_flight: 40,
        capacity: 8,
        service_time: Duration::from_millis(10),
    };
    providers.finished("a", Duration::from_millis(10), true, Some(full), now);
    providers.finished("b", Duration::from_millis(12), true, None, now);
    // a answered fast, but its header says five rounds are queued there.
    assert!((0..8).all(|_| choose(&mut providers, now) == "b"));
    // Past a second the header no longer stands.
    tokio::time::advance(Duration::from_secs(2)).await;
    let later = Instant::now();
    assert!((0..8).any(|_| choose(&mut providers, later) == "a"));
}

#[tokio::test(start_paused = true)]
async fn failures_in_a_row_eject_until_the_ejection_ends() {
    let mut providers = fleet(&["a", "b"]);
    let now = Instant::now();
    for _ in 0..2 {
        assert_eq!(
            providers.finished("a", Duration::ZERO, false, None, now),
            None
        );
    }
    let length = providers.finished("a", Duration::ZERO, false, None, now);
    assert_eq!(length, Some(crank_balance::ejection::FIRST_EJECTION));
    assert!((0..6).all(|_| choose(&mut providers, now) == "b"));
    tokio::time::advance(crank_balance::ejection::FIRST_EJECTION).await;
    let later = Instant::now();
    assert!((0..6).any(|_| choose(&mut providers, later) == "a"));
    // Excluded by the caller: never chosen.
    let excluded = ["a".to_owned()];
    assert!((0..6).all(|_| {
        providers
            .choose(GREET, &excluded, false, later)
            .unwrap()
            .worker_id
            == "b"
    }));
}

#[tokio::test(start_paused = true)]
async fn a_provider_full_by_its_own_word_is_passed_over_while_another_has_room() {
    let mut providers = fleet(&["a", "b", "c"]);
    let now = Instant::now();
    let room = |in_flight| ObservedLoad {
        in_flight,
        capacity: 4,
        service_time: Duration::from_millis(10),
    };
    // a and b said they were full with their last answers; c is slower but
    // has room: whichever two are drawn, c is chosen.
    providers.finished("a", Duration::from_millis(10), true, Some(room(4)), now);
    providers.finished("b", Duration::from_millis(10), true, Some(room(4)), now);
    providers.finished("c", Duration::from_millis(100), true, Some(room(0)), now);
    assert!((0..12).all(|_| choose(&mut providers, now) == "c"));
    for round_robin in [false, true] {
        let chosen = providers.choose(GREET, &[], round_robin, now).unwrap();
        assert_eq!(chosen.worker_id, "c");
    }
}
