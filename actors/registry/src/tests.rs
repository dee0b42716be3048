//! Actor tests: what needs a mailbox and a paused clock. The core's own tests
//! are in `core_tests`.

use std::collections::BTreeMap;
use std::time::Duration;

use actix::prelude::*;
use semver::VersionReq;
use tokio::time::sleep;

use super::*;
use crank_proto::domain::{Registration, RouteQuery, WorkerId, WorkerLoad};
use crank_proto::wire::{Capability, CapabilityCount, Load, RegisterRequest, WorkerStatus};

const OWNER: &str = "admin/test";

fn registration(id: &str, capabilities: &[(&str, &str, &str)]) -> Register {
    let request = RegisterRequest {
        worker_id: id.into(),
        worker_url: format!("https://{id}.local:8500"),
        capabilities: capabilities
            .iter()
            .map(|(verb, name, version)| Capability::new(verb, name, version))
            .collect(),
        instance: None,
        health_check: None,
    };
    Register {
        registration: Registration::try_from(request).unwrap(),
        registered_by: OWNER.into(),
    }
}

fn greet(id: &str) -> Register {
    registration(id, &[("invoke", "hello.greet", "1.0.0")])
}

fn route_greet() -> Route {
    Route {
        query: RouteQuery::any_version("invoke", "hello.greet"),
        explain: false,
    }
}

async fn status_of(registry: &Addr<RegistryActor>, id: &str) -> Option<WorkerStatus> {
    let workers = registry.send(ListWorkers).await.unwrap();
    workers
        .into_iter()
        .find(|w| w.worker_id == id)
        .map(|w| w.status)
}

fn start(settings: RegistrySettings) -> Addr<RegistryActor> {
    RegistryActor::new(settings).start()
}

#[actix::test]
async fn a_worker_is_healthy_at_119_s_and_stale_at_121_s() {
    tokio::time::pause();
    let registry = start(RegistrySettings::default());
    crate::sweeper::StalenessSweeper::new(registry.clone(), Duration::from_secs(5)).start();
    registry.send(greet("w1")).await.unwrap();

    sleep(Duration::from_secs(119)).await;
    assert_eq!(
        status_of(&registry, "w1").await,
        Some(WorkerStatus::Healthy)
    );
    assert!(registry.send(route_greet()).await.unwrap().is_ok());

    sleep(Duration::from_secs(2)).await;
    assert_eq!(status_of(&registry, "w1").await, Some(WorkerStatus::Stale));
    assert_eq!(registry.send(route_greet()).await.unwrap().ok(), None);
}

#[actix::test]
async fn a_sweep_reports_a_worker_once_when_it_turns_stale() {
    tokio::time::pause();
    let registry = start(RegistrySettings::default());
    registry.send(greet("w1")).await.unwrap();
    sleep(Duration::from_secs(120)).await;
    let first = registry.send(Sweep).await.unwrap();
    assert_eq!(first.newly_stale, vec!["w1".to_string()]);
    let second = registry.send(Sweep).await.unwrap();
    assert_eq!(second, SweepReport::default());
}

#[actix::test]
async fn a_stale_worker_is_not_routed_to_and_a_heartbeat_revives_it() {
    tokio::time::pause();
    let registry = start(RegistrySettings::default());
    registry.send(greet("w1")).await.unwrap();
    registry.send(greet("w2")).await.unwrap();
    sleep(Duration::from_secs(100)).await;
    registry
        .send(Heartbeat {
            worker_id: WorkerId::try_from("w2").unwrap(),
            instance: None,
            load: None,
        })
        .await
        .unwrap()
        .unwrap();
    sleep(Duration::from_secs(30)).await;
    registry.send(Sweep).await.unwrap();

    for _ in 0..4 {
        let choice = registry.send(route_greet()).await.unwrap().unwrap();
        assert_eq!(choice.worker_id, "w2", "w1 is stale and must not be chosen");
    }

    let ack = registry
        .send(Heartbeat {
            worker_id: WorkerId::try_from("w1").unwrap(),
            instance: None,
            load: None,
        })
        .await
        .unwrap()
        .unwrap();
    assert!(ack.revived);
    assert_eq!(
        status_of(&registry, "w1").await,
        Some(WorkerStatus::Healthy)
    );
    let chosen: Vec<String> =
        futures_util::future::join_all((0..2).map(|_| registry.send(route_greet())))
            .await
            .into_iter()
            .map(|r| r.unwrap().unwrap().worker_id)
            .collect();
    assert!(chosen.contains(&"w1".to_string()), "{chosen:?}");
}

#[actix::test]
async fn a_worker_stale_for_evict_after_is_removed() {
    tokio::time::pause();
    let registry = start(RegistrySettings {
        stale_after: Duration::from_secs(120),
        evict_after: Some(Duration::from_secs(600)),
        ..RegistrySettings::default()
    });
    crate::sweeper::StalenessSweeper::new(registry.clone(), Duration::from_secs(5)).start();
    registry.send(greet("w1")).await.unwrap();

    sleep(Duration::from_secs(121)).await;
    assert_eq!(status_of(&registry, "w1").await, Some(WorkerStatus::Stale));
    sleep(Duration::from_secs(590)).await;
    assert_eq!(status_of(&registry, "w1").await, Some(WorkerStatus::Stale));
    sleep(Duration::from_secs(15)).await;
    assert_eq!(status_of(&registry, "w1").await, None);
    assert!(registry.send(ListCapabilities).await.unwrap().is_empty());
    let heartbeat = registry
        .send(Heartbeat {
            worker_id: WorkerId::try_from("w1").unwrap(),
            instance: None,
            load: None,
        })
        .await
        .unwrap();
    assert_eq!(heartbeat, Err(RegistryError::UnknownWorker("w1".into())));
}

#[actix::test]
async fn evict_after_none_keeps_stale_workers() {
    tokio::time::pause();
    let registry = start(RegistrySettings {
        stale_after: Duration::from_secs(120),
        evict_after: None,
        ..RegistrySettings::default()
    });
    registry.send(greet("w1")).await.unwrap();
    sleep(Duration::from_secs(10_000)).await;
    registry.send(Sweep).await.unwrap();
    sleep(Duration::from_secs(10_000)).await;
    let report = registry.send(Sweep).await.unwrap();
    assert!(report.evicted.is_empty());
    assert_eq!(status_of(&registry, "w1").await, Some(WorkerStatus::Stale));
}

#[actix::test]
async fn round_robin_over_three_providers_returns_each_of_them() {
    let registry = start(RegistrySettings::default());
    for id in ["w1", "w2", "w3"] {
        registry.send(greet(id)).await.unwrap();
    }
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..9 {
        let choice = registry.send(route_greet()).await.unwrap().unwrap();
        *counts.entry(choice.worker_id).or_default() += 1;
    }
    let expected: BTreeMap<String, usize> = [("w1", 3), ("w2", 3), ("w3", 3)]
        .map(|(k, v)| (k.to_string(), v))
        .into();
    assert_eq!(counts, expected);
}

#[actix::test]
async fn a_version_requirement_filters_providers() {
    let registry = start(RegistrySettings::default());
    registry
        .send(registration("old", &[("invoke", "hello.greet", "1.4.0")]))
        .await
        .unwrap();
    registry
        .send(registration("new", &[("invoke", "hello.greet", "2.1.0")]))
        .await
        .unwrap();
    let route = |req: &str| Route {
        query: RouteQuery {
            version: Some(VersionReq::parse(req).unwrap()),
            ..RouteQuery::any_version("invoke", "hello.greet")
        },
        explain: false,
    };
    for _ in 0..3 {
        let choice = registry.send(route("^2")).await.unwrap().unwrap();
        assert_eq!(
            (choice.worker_id.as_str(), choice.version.as_str()),
            ("new", "2.1.0")
        );
        let choice = registry.send(route(">=1.2, <2")).await.unwrap().unwrap();
        assert_eq!(choice.worker_id, "old");
    }
    assert_eq!(registry.send(route("^3")).await.unwrap().ok(), None);
}

#[actix::test]
async fn re_registration_replaces_capabilities_and_the_index_follows() {
    let registry = start(RegistrySettings::default());
    registry
        .send(registration(
            "w1",
            &[
                ("invoke", "hello.greet", "1.0.0"),
                ("invoke", "hello.wave", "1.0.0"),
            ],
        ))
        .await
        .unwrap();
    let ack = registry
        .send(registration("w1", &[("invoke", "hello.shout", "1.0.0")]))
        .await
        .unwrap();
    assert!(ack.replaced);

    let capabilities = registry.send(ListCapabilities).await.unwrap();
    assert_eq!(
        capabilities.keys().collect::<Vec<_>>(),
        vec!["invoke:hello.shout"]
    );
    assert_eq!(registry.send(route_greet()).await.unwrap().ok(), None);
    let shout = Route {
        query: RouteQuery::any_version("invoke", "hello.shout"),
        explain: false,
    };
    assert_eq!(registry.send(shout).await.unwrap().unwrap().worker_id, "w1");
    assert_eq!(registry.send(ListWorkers).await.unwrap().len(), 1);
}

#[actix::test]
async fn round_robin_skips_no_one_when_providers_leave_or_return() {
    let registry = start(RegistrySettings::default());
    for id in ["a", "b", "c"] {
        registry.send(greet(id)).await.unwrap();
    }
    let next = || async {
        registry
            .send(route_greet())
            .await
            .unwrap()
            .unwrap()
            .worker_id
    };
    assert_eq!(next().await, "a");
    // b is due; a leaves: b must still come next, then c.
    registry
        .send(Deregister {
            worker_id: "a".into(),
            instance: None,
        })
        .await
        .unwrap();
    assert_eq!(next().await, "b");
    assert_eq!(next().await, "c");
    // a returns at the end of the rotation; b is due and comes next.
    registry.send(greet("a")).await.unwrap();
    assert_eq!(next().await, "b");
    // c is due; b re-registers (moves to the end): c, a, b follow.
    registry.send(greet("b")).await.unwrap();
    assert_eq!(next().await, "c");
    assert_eq!(next().await, "a");
    assert_eq!(next().await, "b");
}

#[actix::test]
async fn two_versions_of_one_capability_index_the_worker_once() {
    let registry = start(RegistrySettings::default());
    registry
        .send(registration(
            "w1",
            &[("invoke", "x", "1.0.0"), ("invoke", "x", "2.0.0")],
        ))
        .await
        .unwrap();
    registry
        .send(registration("w2", &[("invoke", "x", "1.5.0")]))
        .await
        .unwrap();
    let counts = registry.send(ListCapabilities).await.unwrap();
    assert_eq!(
        counts["invoke:x"],
        CapabilityCount {
            workers: 2,
            healthy_workers: 2
        }
    );
    let workers = registry.send(ListWorkers).await.unwrap();
    assert_eq!(workers[0].capability_keys, vec!["invoke:x".to_string()]);
    let route = |req: &str| Route {
        query: RouteQuery {
            version: Some(VersionReq::parse(req).unwrap()),
            ..RouteQuery::any_version("invoke", "x")
        },
        explain: false,
    };
    let mut chosen = Vec::new();
    for _ in 0..4 {
        chosen.push(registry.send(route("^1")).await.unwrap().unwrap().worker_id);
    }
    assert_eq!(
        chosen,
        ["w1", "w2", "w1", "w2"],
        "each worker once per turn"
    );
    let two = registry.send(route("^2")).await.unwrap().unwrap();
    assert_eq!(
        (two.worker_id.as_str(), two.version.as_str()),
        ("w1", "2.0.0")
    );
}

#[actix::test]
async fn evicting_many_at_once_keeps_the_index_and_the_rotation_right() {
    tokio::time::pause();
    let registry = start(RegistrySettings {
        stale_after: Duration::from_secs(10),
        evict_after: Some(Duration::from_secs(10)),
        // The 300 go silent together on purpose: no protection.
        protect_threshold: 1.0,
        ..RegistrySettings::default()
    });
    for i in 0..300 {
        registry.send(greet(&format!("old-{i}"))).await.unwrap();
    }
    sleep(Duration::from_secs(11)).await;
    registry.send(Sweep).await.unwrap();
    for id in ["a", "b"] {
        registry.send(greet(id)).await.unwrap();
    }
    sleep(Duration::from_secs(9)).await;
    for id in ["a", "b"] {
        let beat = Heartbeat {
            worker_id: WorkerId::try_from(id).unwrap(),
            instance: None,
            load: None,
        };
        registry.send(beat).await.unwrap().unwrap();
    }
    sleep(Duration::from_secs(1)).await;
    // The first step answers; the sweep goes on in steps of its own, ahead of
    // the messages sent after it.
    let report = registry.send(Sweep).await.unwrap();
    assert!(!report.evicted.is_empty());
    let stats = registry.send(GetStats).await.unwrap();
    assert_eq!(stats.workers, 2, "all 300 evicted, a and b kept");
    let counts = registry.send(ListCapabilities).await.unwrap();
    assert_eq!(counts["invoke:hello.greet"].workers, 2);
    let mut chosen = Vec::new();
    for _ in 0..4 {
        chosen.push(
            registry
                .send(route_greet())
                .await
                .unwrap()
                .unwrap()
                .worker_id,
        );
    }
    assert_eq!(chosen, ["a", "b", "a", "b"]);
}

#[actix::test]
async fn the_record_names_who_registered_it() {
    let registry = start(RegistrySettings::default());
    let mut first = greet("w1");
    first.registered_by = "worker/w1".into();
    registry.send(first).await.unwrap();
    let detail = registry
        .send(GetWorker {
            worker_id: "w1".into(),
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(detail.registered_by, "worker/w1");
}

#[actix::test]
async fn deregister_removes_the_worker_from_the_index() {
    let registry = start(RegistrySettings::default());
    registry.send(greet("w1")).await.unwrap();
    let deregister = || Deregister {
        worker_id: "w1".into(),
        instance: None,
    };
    assert_eq!(
        registry.send(deregister()).await.unwrap(),
        DeregisterOutcome::Removed
    );
    assert_eq!(
        registry.send(deregister()).await.unwrap(),
        DeregisterOutcome::Unknown
    );
    assert_eq!(registry.send(route_greet()).await.unwrap().ok(), None);
    assert!(registry.send(ListCapabilities).await.unwrap().is_empty());
}

#[actix::test]
async fn capability_counts_split_healthy_from_stale() {
    tokio::time::pause();
    let registry = start(RegistrySettings::default());
    registry.send(greet("w1")).await.unwrap();
    sleep(Duration::from_secs(60)).await;
    registry.send(greet("w2")).await.unwrap();
    sleep(Duration::from_secs(70)).await;
    let counts = registry.send(ListCapabilities).await.unwrap();
    assert_eq!(
        counts["invoke:hello.greet"],
        CapabilityCount {
            workers: 2,
            healthy_workers: 1
        }
    );
}

#[actix::test]
async fn stats_count_workers_and_sweeps() {
    tokio::time::pause();
    let registry = start(RegistrySettings::default());
    registry.send(greet("w1")).await.unwrap();
    sleep(Duration::from_secs(60)).await;
    registry.send(greet("w2")).await.unwrap();
    sleep(Duration::from_secs(70)).await;
    registry.send(Sweep).await.unwrap();
    let stats = registry.send(GetStats).await.unwrap();
    assert_eq!(
        (stats.workers, stats.healthy_workers, stats.capabilities),
        (2, 1, 1)
    );
    assert_eq!(stats.sweeps, 1);
    assert!(stats.longest_sweep_step >= stats.last_sweep);
}

#[actix::test]
async fn a_heartbeat_records_the_reported_load() {
    let registry = start(RegistrySettings::default());
    registry.send(greet("w1")).await.unwrap();
    let load = Load::new(3, 8);
    registry
        .send(Heartbeat {
            worker_id: WorkerId::try_from("w1").unwrap(),
            instance: None,
            load: Some(WorkerLoad::try_from(&load).unwrap()),
        })
        .await
        .unwrap()
        .unwrap();
    let detail = registry
        .send(GetWorker {
            worker_id: "w1".into(),
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(detail.load, Some(load));
}

fn with_instance(mut register: Register, instance: &str) -> Register {
    register.registration.instance =
        Some(crank_proto::domain::InstanceId::parse("instance", instance).unwrap());
    register
}

#[actix::test]
async fn an_old_instance_can_neither_refresh_nor_remove_the_new_record() {
    tokio::time::pause();
    let registry = start(RegistrySettings::default());
    registry
        .send(with_instance(greet("w1"), "old"))
        .await
        .unwrap();
    registry
        .send(with_instance(greet("w1"), "new"))
        .await
        .unwrap();
    let beat = |instance: Option<&str>| Heartbeat {
        worker_id: WorkerId::try_from("w1").unwrap(),
        instance: instance.map(|i| crank_proto::domain::InstanceId::parse("instance", i).unwrap()),
        load: None,
    };
    assert!(matches!(
        registry.send(beat(Some("old"))).await.unwrap(),
        Err(RegistryError::Superseded { .. })
    ));
    let old_leaves = Deregister {
        worker_id: "w1".into(),
        instance: Some("old".into()),
    };
    assert_eq!(
        registry.send(old_leaves).await.unwrap(),
        DeregisterOutcome::Superseded
    );
    assert!(registry.send(route_greet()).await.unwrap().is_ok());
    // The new instance, and a v1 worker naming none, still speak for it.
    assert!(registry.send(beat(Some("new"))).await.unwrap().is_ok());
    assert!(registry.send(beat(None)).await.unwrap().is_ok());
    // Only the old instance's beats came in: the record goes stale.
    sleep(Duration::from_secs(121)).await;
    assert!(registry.send(beat(Some("old"))).await.unwrap().is_err());
    assert_eq!(status_of(&registry, "w1").await, Some(WorkerStatus::Stale));
}

#[actix::test]
async fn a_registry_that_heard_no_sweep_for_long_suspects_itself_not_the_fleet() {
    tokio::time::pause();
    let registry = RegistryActor::new(RegistrySettings::default())
        .expecting_sweeps_every(Duration::from_secs(5))
        .start();
    registry.send(greet("w1")).await.unwrap();
    registry.send(Sweep).await.unwrap();
    // No sweep for 200 s: this controller was not running (SIGSTOP, VM pause).
    sleep(Duration::from_secs(200)).await;
    assert!(
        registry.send(route_greet()).await.unwrap().is_ok(),
        "still routed to after the pause"
    );
    assert_eq!(
        status_of(&registry, "w1").await,
        Some(WorkerStatus::Suspect)
    );
    // The controller runs again, sweeps with it; w1 never heartbeats: once the
    // grace period (60 s) is over, it is stale.
    crate::sweeper::StalenessSweeper::new(registry.clone(), Duration::from_secs(5)).start();
    sleep(Duration::from_secs(66)).await;
    assert_eq!(status_of(&registry, "w1").await, Some(WorkerStatus::Stale));
    assert_eq!(registry.send(route_greet()).await.unwrap().ok(), None);
}

#[actix::test]
async fn a_pause_before_the_first_sweep_is_a_pause_too() {
    tokio::time::pause();
    let registry = RegistryActor::new(RegistrySettings::default())
        .expecting_sweeps_every(Duration::from_secs(5))
        .start();
    registry.send(greet("w1")).await.unwrap();
    // Stopped before it ever swept, for longer than stale_after.
    sleep(Duration::from_secs(200)).await;
    registry.send(Sweep).await.unwrap();
    assert_eq!(
        status_of(&registry, "w1").await,
        Some(WorkerStatus::Suspect),
        "the silence was the controller's own"
    );
}

/// A sink that keeps what it is told.
struct Recorder(std::rc::Rc<std::cell::RefCell<Vec<String>>>);

impl ChangeSink for Recorder {
    fn publish(&mut self, events: &[RegistryEvent]) {
        self.0.borrow_mut().extend(events.iter().map(|e| {
            format!(
                "{} {} {}",
                e.kind.as_str(),
                e.worker_id,
                e.capabilities.keys.join(",")
            )
        }));
    }
}

#[actix::test]
async fn sinks_hear_every_change_in_order() {
    tokio::time::pause();
    let heard = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let registry = RegistryActor::new(RegistrySettings {
        protect_threshold: 1.0,
        ..RegistrySettings::default()
    })
    .with_sink(Box::new(Recorder(heard.clone())))
    .start();
    registry.send(greet("w1")).await.unwrap();
    sleep(Duration::from_secs(121)).await;
    registry.send(Sweep).await.unwrap();
    let beat = Heartbeat {
        worker_id: WorkerId::try_from("w1").unwrap(),
        instance: None,
        load: None,
    };
    registry.send(beat).await.unwrap().unwrap();
    let leave = Deregister {
        worker_id: "w1".into(),
        instance: None,
    };
    registry.send(leave).await.unwrap();
    assert_eq!(
        *heard.borrow(),
        [
            "registered w1 invoke:hello.greet",
            "stale w1 invoke:hello.greet",
            "healthy w1 invoke:hello.greet",
            "deregistered w1 invoke:hello.greet",
        ]
    );
}

#[actix::test]
async fn a_fleet_going_stale_together_is_a_few_log_lines_not_one_per_worker() {
    tokio::time::pause();
    crank_supervision::test_logs::capture();
    let registry = start(RegistrySettings {
        protect_threshold: 1.0,
        ..RegistrySettings::default()
    });
    for i in 0..50 {
        registry.send(greet(&format!("flood-{i}"))).await.unwrap();
    }
    sleep(Duration::from_secs(121)).await;
    let report = registry.send(Sweep).await.unwrap();
    assert_eq!(report.newly_stale.len(), 50);
    let named = crank_supervision::test_logs::lines(log::Level::Warn, "worker flood-");
    assert_eq!(named.len(), 10, "{named:#?}");
    let summary =
        crank_supervision::test_logs::lines(log::Level::Warn, "40 more workers went stale");
    assert_eq!(summary.len(), 1);
}
