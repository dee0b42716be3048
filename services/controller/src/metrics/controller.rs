//! [`ControllerMetrics`]: what the controller counts as it works, and its
//! `GET /metrics` ([`scrape`]), which adds the registry's gauges read at that
//! moment ([`fleet`](super::fleet)).
//!
//! Where each count comes from:
//!
//! - registrations (new or replacing a record), deregistrations, heartbeats,
//!   routes and callers' reports by outcome, and ejections: the handlers, from
//!   the registry's answer;
//! - changes by kind (registered, deregistered, stale, healthy, evicted) and
//!   evictions: the registry's change stream (a [`ChangeSink`], see
//!   [`ControllerMetrics::change_counter`]);
//! - re-registrations after `404 unknown_worker`: a registration of an id the
//!   controller answered `unknown_worker` to a heartbeat of, since it last
//!   registered (see [`UnknownWorkers`]);
//! - sweep durations: the registry, after each complete sweep;
//! - the mailbox depth: [`RegistryMailbox`].

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, HttpResponse};
use crank_registry::watch::WatchHub;
use crank_registry::{ChangeKind, ChangeSink, GetGauges, RegistryEvent};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::fleet::FleetCollector;
use super::RegistryMailbox;
use crate::cluster::StoreHealth;
use crank_net::caller::Caller;
use crank_net::error::ApiError;
use crank_net::metrics::requests::RequestMetrics;
use crank_net::metrics::transport::transport;
use crank_net::metrics::{exposition, latency_histogram};

/// Ids remembered as answered `unknown_worker`; past it the set starts over,
/// so a flood of unknown ids costs bounded memory (and may undercount).
pub const UNKNOWN_WORKERS_REMEMBERED: usize = 65_536;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Change {
    change: &'static str,
}

/// How a heartbeat was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeartbeatOutcome {
    Ok,
    UnknownWorker,
    Superseded,
}

/// How a route was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteOutcome {
    Ok,
    NoWorkerAvailable,
}

/// Counters resolved once, so the hot paths touch no label map.
#[derive(Debug, Clone)]
struct Outcomes<const N: usize>([Counter; N]);

impl<const N: usize> Outcomes<N> {
    fn new(family: &Family<Outcome, Counter>, names: [&'static str; N]) -> Self {
        Outcomes(names.map(|outcome| family.get_or_create_owned(&Outcome { outcome })))
    }
}

/// Ids the controller answered `unknown_worker`, until they register again.
#[derive(Debug, Default)]
pub struct UnknownWorkers {
    ids: Mutex<HashSet<String>>,
    /// Whether `ids` may be non-empty: registrations skip the lock when not.
    any: AtomicBool,
}

impl UnknownWorkers {
    fn ids(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.ids.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Remembers that a heartbeat of `id` was answered `unknown_worker`.
    pub fn answered_unknown(&self, id: &str) {
        let mut ids = self.ids();
        if ids.len() >= UNKNOWN_WORKERS_REMEMBERED {
            ids.clear();
        }
        ids.insert(id.to_owned());
        self.any.store(true, Ordering::Relaxed);
    }

    /// Whether `id` registers after being answered `unknown_worker`; forgets it.
    pub fn registers(&self, id: &str) -> bool {
        if !self.any.load(Ordering::Relaxed) {
            return false;
        }
        let mut ids = self.ids();
        let was = ids.remove(id);
        if ids.is_empty() {
            self.any.store(false, Ordering::Relaxed);
        }
        was
    }
}

/// See the [module](self) docs.
#[derive(Debug)]
pub struct ControllerMetrics {
    registry: Registry,
    pub requests: RequestMetrics,
    registrations: Outcomes<2>,
    reregistrations_after_unknown: Counter,
    deregistrations: Counter,
    heartbeats: Outcomes<3>,
    routes: Outcomes<2>,
    reports: Outcomes<2>,
    ejections: Counter,
    checks: Outcomes<2>,
    changes: Outcomes<6>,
    evictions: Counter,
    sweep_duration: Histogram,
    mailbox: Gauge,
    unknown: UnknownWorkers,
}

impl Default for ControllerMetrics {
    fn default() -> Self {
        ControllerMetrics::new()
    }
}

impl ControllerMetrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let requests = RequestMetrics::default();
        requests.register(&mut registry);
        let family = |registry: &mut Registry, name: &str, help: &str| {
            let family = Family::<Outcome, Counter>::default();
            registry.register(name, help, family.clone());
            family
        };
        let registrations = family(
            &mut registry,
            "crank_registrations",
            "Registrations, by outcome: new (no record had the id) or replaced",
        );
        let heartbeats = family(
            &mut registry,
            "crank_heartbeats",
            "Heartbeats, by outcome: ok, unknown_worker (404), superseded (409)",
        );
        let routes = family(
            &mut registry,
            "crank_routes",
            "Routes, by outcome: ok, no_worker_available (404)",
        );
        let reports = family(
            &mut registry,
            "crank_call_reports",
            "Callers' reports of calls to workers (POST /report), by outcome: success, failure",
        );
        let checks = family(
            &mut registry,
            "crank_health_checks",
            "Active checks of workers (GET /health by the controller, for workers that do not heartbeat), by outcome: passed (counted as a heartbeat), failed",
        );
        let changes = Family::<Change, Counter>::default();
        registry.register(
            "crank_registry_changes",
            "Changes to the registry, by kind, as the watch stream shows them",
            changes.clone(),
        );
        let change = |change| changes.get_or_create_owned(&Change { change });
        let metrics = ControllerMetrics {
            requests,
            registrations: Outcomes::new(&registrations, ["new", "replaced"]),
            reregistrations_after_unknown: Counter::default(),
            deregistrations: Counter::default(),
            heartbeats: Outcomes::new(&heartbeats, ["ok", "unknown_worker", "superseded"]),
            routes: Outcomes::new(&routes, ["ok", "no_worker_available"]),
            reports: Outcomes::new(&reports, ["success", "failure"]),
            ejections: Counter::default(),
            checks: Outcomes::new(&checks, ["passed", "failed"]),
            changes: Outcomes(
                [
                    ChangeKind::Registered,
                    ChangeKind::Deregistered,
                    ChangeKind::Stale,
                    ChangeKind::Healthy,
                    ChangeKind::Evicted,
                    ChangeKind::Draining,
                ]
                .map(|kind| change(kind.as_str())),
            ),
            evictions: Counter::default(),
            sweep_duration: latency_histogram(),
            mailbox: Gauge::default(),
            unknown: UnknownWorkers::default(),
            registry,
        };
        metrics.register_singles()
    }

    fn register_singles(mut self) -> Self {
        let registry = &mut self.registry;
        registry.register(
            "crank_reregistrations_after_unknown",
            "Registrations of an id whose heartbeat was answered unknown_worker since it last registered (a worker recovering from a controller restart or an eviction)",
            self.reregistrations_after_unknown.clone(),
        );
        registry.register(
            "crank_deregistrations",
            "Deregistrations that removed a record",
            self.deregistrations.clone(),
        );
        registry.register(
            "crank_ejections",
            "Ejections from routing begun by failures reported in a row (outlier detection)",
            self.ejections.clone(),
        );
        registry.register(
            "crank_evictions",
            "Workers removed for staying stale for evict_after",
            self.evictions.clone(),
        );
        registry.register(
            "crank_sweep_duration_seconds",
            "Registry time of each complete sweep, all its steps together",
            self.sweep_duration.clone(),
        );
        registry.register(
            "crank_registry_mailbox_depth",
            "Messages sent to the registry and not yet answered (its queue, plus the one it handles)",
            self.mailbox.clone(),
        );
        transport().register(registry);
        self
    }

    /// The gauge a [`RegistryMailbox`] counts its messages in flight in.
    pub fn mailbox_gauge(&self) -> Gauge {
        self.mailbox.clone()
    }

    /// Counts a registration of `worker_id`; `replaced`: a record had its id.
    pub fn registered(&self, worker_id: &str, replaced: bool) {
        self.registrations.0[usize::from(replaced)].inc();
        if self.unknown.registers(worker_id) {
            self.reregistrations_after_unknown.inc();
        }
    }

    pub fn deregistered(&self) {
        self.deregistrations.inc();
    }

    pub fn heartbeat(&self, worker_id: &str, outcome: HeartbeatOutcome) {
        self.heartbeats.0[outcome as usize].inc();
        if outcome == HeartbeatOutcome::UnknownWorker {
            self.unknown.answered_unknown(worker_id);
        }
    }

    pub fn route(&self, outcome: RouteOutcome) {
        self.routes.0[outcome as usize].inc();
    }

    /// Counts a caller's report; `ejected`: it began an ejection.
    /// One active check of a worker, passed or failed.
    pub fn check(&self, passed: bool) {
        self.checks.0[usize::from(!passed)].inc();
    }

    pub fn report(&self, success: bool, ejected: bool) {
        self.reports.0[usize::from(!success)].inc();
        if ejected {
            self.ejections.inc();
        }
    }

    /// What the registry calls after each complete sweep.
    pub fn sweep_observer(self: &Arc<Self>) -> Box<dyn FnMut(Duration)> {
        let histogram = self.sweep_duration.clone();
        Box::new(move |took| histogram.observe(took.as_secs_f64()))
    }

    /// The sink counting the registry's changes.
    pub fn change_counter(&self) -> Box<dyn ChangeSink> {
        Box::new(ChangeCounter {
            changes: self.changes.clone(),
            evictions: self.evictions.clone(),
        })
    }
}

/// Counts the registry's changes by kind, on its thread.
struct ChangeCounter {
    changes: Outcomes<6>,
    evictions: Counter,
}

impl ChangeSink for ChangeCounter {
    fn publish(&mut self, events: &[RegistryEvent]) {
        for event in events {
            let index = match event.kind {
                ChangeKind::Registered => 0,
                ChangeKind::Deregistered => 1,
                ChangeKind::Stale => 2,
                ChangeKind::Healthy => 3,
                ChangeKind::Evicted => 4,
                ChangeKind::Draining => 5,
                // A change of owner between controllers is not a change of
                // the fleet.
                ChangeKind::Owned => continue,
            };
            self.changes.0[index].inc();
            if event.kind == ChangeKind::Evicted {
                self.evictions.inc();
            }
        }
    }
}

/// `GET /metrics` of the controller: every identity may read it.
pub async fn scrape(
    metrics: web::Data<ControllerMetrics>,
    registry: web::Data<RegistryMailbox>,
    watch: Option<web::Data<WatchHub>>,
    store: Option<web::Data<StoreHealth>>,
    protection: Option<web::Data<crate::protection::Protection>>,
    _: Caller,
) -> Result<HttpResponse, ApiError> {
    let gauges = registry.send(GetGauges).await?;
    let mut fleet = Registry::default();
    fleet.register_collector(Box::new(FleetCollector {
        gauges,
        watchers: watch.map(|hub| hub.watchers()),
        store: store.map(|store| store.get_ref().clone()),
    }));
    Ok(match &protection {
        Some(protection) => exposition(&[&metrics.registry, &fleet, &protection.metrics.registry]),
        None => exposition(&[&metrics.registry, &fleet]),
    })
}
