//! Actor tests of the worker side (`RegistrationActor` + `HeartbeatActor`) against
//! the in-memory controller, on a paused tokio clock.

use std::rc::Rc;
use std::time::Duration;

use actix::clock::Instant;
use actix::prelude::*;
use tokio::time::sleep;

use crate::backoff::Backoff;
use crate::registration::{
    RegistrationActor, RegistrationState, RegistrationStatus, Shutdown, WorkerTiming,
};
use crate::testing::InMemoryController;
use crank_proto::wire::{Capability, RegisterRequest};

fn request() -> RegisterRequest {
    request_for("hello-world-1")
}

fn request_for(worker_id: &str) -> RegisterRequest {
    RegisterRequest {
        worker_id: worker_id.into(),
        worker_url: "https://localhost:8500".into(),
        capabilities: vec![Capability::new("invoke", "hello.greet", "1.0.0")],
        instance: Some("instance-a".into()),
        health_check: None,
    }
}

fn launch(
    controller: &InMemoryController,
    timing: WorkerTiming,
) -> (Addr<RegistrationActor>, RegistrationStatus) {
    launch_as(controller, timing, request())
}

fn launch_as(
    controller: &InMemoryController,
    timing: WorkerTiming,
    request: RegisterRequest,
) -> (Addr<RegistrationActor>, RegistrationStatus) {
    let status = RegistrationStatus::new(RegistrationState::Registering);
    let addr = RegistrationActor::launch(
        Rc::new(controller.clone()),
        Rc::new(controller.clone()),
        request,
        timing,
        status.clone(),
        None,
    );
    (addr, status)
}

fn gaps(times: &[Instant]) -> Vec<Duration> {
    times.windows(2).map(|w| w[1] - w[0]).collect()
}

/// Seconds to a tenth: tokio's timer wheel rounds every wait up to the next
/// millisecond, which is not what these tests are about.
fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 10.0).round() / 10.0
}

#[actix::test]
async fn registers_on_start_with_its_id_url_and_capabilities() {
    tokio::time::pause();
    let controller = InMemoryController::new();
    let (_addr, status) = launch(&controller, WorkerTiming::default());
    sleep(Duration::from_millis(1)).await;
    assert_eq!(controller.registered("hello-world-1"), Some(request()));
    assert_eq!(status.get(), RegistrationState::Registered);
    assert_eq!(controller.registration_times().len(), 1);
}

#[actix::test]
async fn failed_registrations_back_off_doubling_to_a_cap_then_succeed() {
    tokio::time::pause();
    let controller = InMemoryController::new();
    controller.fail_next_registrations(7);
    let timing = WorkerTiming {
        backoff: Backoff::without_jitter(Duration::from_secs(1), Duration::from_secs(30)),
        ..WorkerTiming::default()
    };
    let (_addr, status) = launch(&controller, timing);
    sleep(Duration::from_secs(60)).await;
    assert_eq!(status.get(), RegistrationState::Registering);
    assert_eq!(controller.registered("hello-world-1"), None);

    sleep(Duration::from_secs(60)).await;
    assert_eq!(status.get(), RegistrationState::Registered);
    assert!(controller.registered("hello-world-1").is_some());
    let waits: Vec<f64> = gaps(&controller.registration_times())
        .into_iter()
        .map(secs)
        .collect();
    assert_eq!(waits, vec![1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]);
}

#[actix::test]
async fn a_throttled_registration_waits_at_least_what_the_controller_asked() {
    tokio::time::pause();
    let controller = InMemoryController::new();
    controller.throttle_next_registrations(2, Duration::from_secs(7));
    let timing = WorkerTiming {
        backoff: Backoff::without_jitter(Duration::from_secs(1), Duration::from_secs(30)),
        ..WorkerTiming::default()
    };
    let (_addr, status) = launch(&controller, timing);
    sleep(Duration::from_secs(20)).await;
    assert_eq!(status.get(), RegistrationState::Registered);
    let waits: Vec<f64> = gaps(&controller.registration_times())
        .into_iter()
        .map(secs)
        .collect();
    // Retry-After 7 s beats the backoff's 1 s and 2 s.
    assert_eq!(waits, vec![7.0, 7.0]);
}

#[actix::test]
async fn jittered_retries_stay_under_their_ceilings_and_keep_going_past_five_minutes() {
    tokio::time::pause();
    crank_supervision::test_logs::capture();
    let controller = InMemoryController::new();
    controller.fail_next_registrations(60);
    let (_addr, status) = launch_as(
        &controller,
        WorkerTiming::default(),
        request_for("outage-worker"),
    );
    sleep(Duration::from_secs(30 * 61)).await;
    assert_eq!(
        status.get(),
        RegistrationState::Registered,
        "it never gives up"
    );
    let times = controller.registration_times();
    assert_eq!(times.len(), 61);
    let backoff = Backoff::default();
    for (retry, wait) in gaps(&times).into_iter().enumerate() {
        assert!(
            wait <= backoff.ceiling(retry as u32),
            "retry {retry} waited {wait:?}"
        );
    }
    // Sixty full-jitter retries capped at 30 s average about 15 minutes.
    let failing_for = times[times.len() - 1] - times[0];
    assert!(
        failing_for > crate::registration::OUTAGE_ALARM_AFTER,
        "failed for {failing_for:?}"
    );
    let errors = crank_supervision::test_logs::lines(
        log::Level::Error,
        "outage-worker has failed to register",
    );
    assert_eq!(errors.len(), 1, "one error per outage: {errors:#?}");
    let warnings = crank_supervision::test_logs::lines(
        log::Level::Warn,
        "registration of worker outage-worker",
    );
    assert_eq!(
        warnings.len(),
        59,
        "every other failure is a warning with its retry time"
    );
    assert!(
        warnings.iter().all(|w| w.contains("will retry in")),
        "{warnings:#?}"
    );
}

#[actix::test]
async fn advice_equal_to_the_configured_interval_shifts_the_jitter_below_it() {
    tokio::time::pause();
    let controller = InMemoryController::new();
    controller.advise_heartbeat_interval(Duration::from_secs(30));
    let (_addr, _status) = launch(&controller, WorkerTiming::default());
    sleep(Duration::from_secs(3000)).await;
    let beats = controller.heartbeat_times();
    assert!(beats.len() >= 100);
    let waits = gaps(&beats);
    for wait in &waits {
        assert!(
            (24.0..=30.0).contains(&secs(*wait)),
            "gap {wait:?} is outside 24..30 s (the advised 30 s, minus 20 %)"
        );
    }
    // Clipping at the advice would put half of all waits at exactly 30 s, and
    // workers started together would beat in lockstep.
    let at_ceiling = waits.iter().filter(|w| secs(**w) >= 29.9).count();
    assert!(
        at_ceiling * 10 < waits.len(),
        "{at_ceiling} of {} waits sit at the advised interval",
        waits.len()
    );
}

#[actix::test]
async fn advice_below_the_floor_is_raised_to_it() {
    tokio::time::pause();
    let controller = InMemoryController::new();
    controller.advise_heartbeat_interval(Duration::from_millis(4));
    let (_addr, _status) = launch(&controller, WorkerTiming::default());
    sleep(Duration::from_secs(10)).await;
    let beats = controller.heartbeat_times().len();
    assert!(
        (80..=125).contains(&beats),
        "{beats} beats in 10 s: the 100 ms floor allows 100 (±20 %), not 2,500"
    );
}

#[actix::test]
async fn nonsensical_advice_is_ignored() {
    tokio::time::pause();
    let controller = InMemoryController::new();
    controller.advise_heartbeat_interval(Duration::MAX);
    let (_addr, status) = launch(&controller, WorkerTiming::default());
    sleep(Duration::from_secs(100)).await;
    assert_eq!(status.get(), RegistrationState::Registered);
    assert!(
        controller.heartbeat_times().len() >= 3,
        "beats at the configured 30 s"
    );
}

#[actix::test]
async fn shutdown_waits_for_a_registration_in_flight_before_deregistering() {
    tokio::time::pause();
    let controller = InMemoryController::new();
    controller.delay_registrations(Duration::from_millis(500));
    let (addr, _status) = launch(&controller, WorkerTiming::default());
    sleep(Duration::from_millis(100)).await;
    addr.send(Shutdown).await.unwrap().unwrap();
    sleep(Duration::from_secs(1)).await;
    assert_eq!(
        controller.deregistrations(),
        vec!["hello-world-1".to_string()]
    );
    assert_eq!(
        controller.registered("hello-world-1"),
        None,
        "the late registration landed before the deregistration, not after"
    );
}

#[actix::test]
async fn heartbeats_arrive_every_30_s_within_jitter_and_stop_after_shutdown() {
    tokio::time::pause();
    let controller = InMemoryController::new();
    let (addr, _status) = launch(&controller, WorkerTiming::default());
    sleep(Duration::from_secs(600)).await;

    let beats = controller.heartbeat_times();
    assert!(
        (18..=23).contains(&beats.len()),
        "{} beats in 600 s",
        beats.len()
    );
    let first = beats[0] - controller.registration_times()[0];
    let mut waits = gaps(&beats);
    waits.insert(0, first);
    for wait in &waits {
        assert!(
            (27.0..=33.0).contains(&secs(*wait)),
            "heartbeat gap {wait:?} is outside 30 s ± 10 %"
        );
    }
    let distinct: std::collections::HashSet<_> = waits.iter().collect();
    assert!(distinct.len() > 1, "the gaps are jittered");

    addr.send(Shutdown).await.unwrap().unwrap();
    let after_shutdown = controller.heartbeat_times().len();
    sleep(Duration::from_secs(300)).await;
    assert_eq!(controller.heartbeat_times().len(), after_shutdown);
}

#[actix::test]
async fn the_controllers_advice_shortens_the_interval() {
    tokio::time::pause();
    let controller = InMemoryController::new();
    controller.advise_heartbeat_interval(Duration::from_secs(10));
    let (_addr, _status) = launch(&controller, WorkerTiming::default());
    sleep(Duration::from_secs(100)).await;
    for wait in gaps(&controller.heartbeat_times()) {
        assert!(
            (8.0..=10.0).contains(&secs(wait)),
            "gap {wait:?}: within 20 % below the advised 10 s"
        );
    }
    assert!(controller.heartbeat_times().len() >= 8);
}

#[actix::test]
async fn a_failing_heartbeat_does_not_stop_the_loop() {
    tokio::time::pause();
    let controller = InMemoryController::new();
    let (_addr, status) = launch(&controller, WorkerTiming::default());
    sleep(Duration::from_millis(1)).await;
    controller.fail_next_heartbeats(3);
    sleep(Duration::from_secs(3 * 33 + 1)).await;
    assert!(
        controller.heartbeat_times().is_empty(),
        "three beats failed"
    );
    sleep(Duration::from_secs(34)).await;
    assert_eq!(
        controller.heartbeat_times().len(),
        1,
        "the fourth beat went through"
    );
    assert_eq!(status.get(), RegistrationState::Registered);
    assert_eq!(controller.registration_times().len(), 1);
}

#[actix::test]
async fn unknown_worker_leads_to_exactly_one_registration_and_beats_resume() {
    tokio::time::pause();
    let controller = InMemoryController::new();
    let (_addr, status) = launch(&controller, WorkerTiming::default());
    sleep(Duration::from_secs(100)).await;
    let beats_before = controller.heartbeat_times().len();
    assert!(beats_before >= 3);

    controller.forget("hello-world-1");
    let forgotten_at = Instant::now();
    sleep(Duration::from_secs(34)).await;
    assert_eq!(
        controller.registration_times().len(),
        2,
        "exactly one new registration"
    );
    assert!(controller.registration_times()[1] > forgotten_at);
    assert_eq!(status.get(), RegistrationState::Registered);
    assert!(controller.registered("hello-world-1").is_some());

    sleep(Duration::from_secs(100)).await;
    assert!(
        controller.heartbeat_times().len() >= beats_before + 3,
        "heartbeats resumed"
    );
    assert_eq!(controller.registration_times().len(), 2);
}

#[actix::test]
async fn shutdown_deregisters() {
    tokio::time::pause();
    let controller = InMemoryController::new();
    let (addr, _status) = launch(&controller, WorkerTiming::default());
    sleep(Duration::from_secs(1)).await;
    assert!(controller.registered("hello-world-1").is_some());
    addr.send(Shutdown).await.unwrap().unwrap();
    assert_eq!(
        controller.deregistrations(),
        vec!["hello-world-1".to_string()]
    );
    assert_eq!(controller.registered("hello-world-1"), None);
}

#[actix::test]
async fn shutdown_while_retrying_stops_the_retries() {
    tokio::time::pause();
    let controller = InMemoryController::new();
    controller.fail_next_registrations(1000);
    let (addr, _status) = launch(&controller, WorkerTiming::default());
    sleep(Duration::from_secs(60)).await;
    addr.send(Shutdown).await.unwrap().unwrap();
    let attempts = controller.registration_times().len();
    sleep(Duration::from_secs(600)).await;
    assert_eq!(controller.registration_times().len(), attempts);
}

#[actix::test]
async fn a_superseded_instance_stops_beating_and_leaves_the_record_alone() {
    tokio::time::pause();
    let controller = InMemoryController::new();
    let timing = WorkerTiming {
        heartbeat_interval: Duration::from_secs(10),
        ..WorkerTiming::default()
    };
    let (addr, status) = launch(&controller, timing);
    sleep(Duration::from_secs(25)).await;
    let beats_before = controller.heartbeat_times().len();
    assert!(beats_before >= 1);
    // A new process registers the same id (a rolling restart).
    controller.replace_instance("hello-world-1", "instance-b");
    sleep(Duration::from_secs(60)).await;
    assert_eq!(status.get(), RegistrationState::Superseded);
    assert_eq!(
        controller.heartbeat_times().len(),
        beats_before,
        "no beat counted after the replacement"
    );
    assert_eq!(
        controller.registration_times().len(),
        1,
        "it does not register again over the newer process"
    );
    let _ = addr.send(Shutdown).await.unwrap();
    assert!(controller.deregistrations().is_empty());
    assert!(controller.registered("hello-world-1").is_some());
}
