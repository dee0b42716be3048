//! [`WorkerMetrics`]: a worker's own `GET /metrics` — its registration state,
//! the heartbeats it sent by outcome and their round-trip time (counted by
//! [`MeteredLink`], around whatever [`ControllerLink`] the worker uses), the
//! requests it served ([`RequestMetrics`]), and its connections.
//!
//! Self-contained: a worker app mounts it with [`mount`], wraps each endpoint
//! with [`RequestMetrics::endpoint`], and wraps its link in a [`MeteredLink`].

use std::sync::{Arc, Mutex};
use std::time::Instant;

use actix_web::{web, HttpResponse};
use crank_agent::link::{ControllerLink, LinkError};
use crank_agent::registration::{RegistrationState, RegistrationStatus};
use crank_proto::wire::{HeartbeatRequest, RegisterRequest, RegisterResponse};
use futures_util::future::LocalBoxFuture;
use futures_util::FutureExt;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::replays::Replays;
use crank_net::caller::Caller;
use crank_net::fallback::endpoint;
use crank_net::metrics::requests::RequestMetrics;
use crank_net::metrics::transport::transport;
use crank_net::metrics::{exposition, latency_histogram};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    outcome: &'static str,
}

/// The `outcome` label of a heartbeat answered with `result`.
fn outcome(result: &Result<(), LinkError>) -> &'static str {
    match result {
        Ok(()) => "ok",
        Err(LinkError::UnknownWorker) => "unknown_worker",
        Err(LinkError::Superseded) => "superseded",
        Err(LinkError::Rejected { .. }) => "rejected",
        Err(LinkError::Throttled { .. }) => "throttled",
        Err(LinkError::Unreachable(_)) => "unreachable",
        Err(LinkError::Timeout(_)) => "timeout",
    }
}

/// See the [module](self) docs.
#[derive(Debug)]
pub struct WorkerMetrics {
    registry: Registry,
    pub requests: RequestMetrics,
    heartbeats: Family<Outcome, Counter>,
    heartbeat_rtt: Histogram,
}

/// The registration state, read at each scrape.
#[derive(Debug)]
struct Registration(RegistrationStatus);

impl Collector for Registration {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let now = self.0.get();
        let metric = ConstGauge::new(0i64);
        let mut family = encoder.encode_descriptor(
            "crank_worker_registration",
            "1 for the worker's registration state: standalone, registering, registered or superseded",
            None,
            metric.metric_type(),
        )?;
        for state in [
            RegistrationState::Standalone,
            RegistrationState::Registering,
            RegistrationState::Registered,
            RegistrationState::Superseded,
        ] {
            ConstGauge::new(i64::from(state == now))
                .encode(family.encode_family(&[("state", state.as_str())])?)?;
        }
        Ok(())
    }
}

/// The idempotency keys' answers, read at each scrape.
#[derive(Debug)]
struct ReplayCounts(Arc<Mutex<Replays>>);

impl Collector for ReplayCounts {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let (replayed, evicted, kept, kept_bytes) = {
            let replays = self.0.lock().unwrap_or_else(|e| e.into_inner());
            (
                replays.replayed,
                replays.evicted,
                replays.kept() as u64,
                replays.kept_bytes() as u64,
            )
        };
        for (name, help, value) in [
            (
                "crank_worker_idempotent_replays",
                "Calls answered from memory for a repeated Idempotency-Key",
                replayed,
            ),
            (
                "crank_worker_idempotent_evictions",
                "Kept answers dropped before their TTL, past the entry or byte bound",
                evicted,
            ),
        ] {
            let counter = ConstCounter::new(value);
            counter.encode(encoder.encode_descriptor(
                name,
                help,
                None,
                counter.metric_type(),
            )?)?;
        }
        for (name, help, value) in [
            (
                "crank_worker_idempotent_kept",
                "Answers kept for Idempotency-Key replays now",
                kept,
            ),
            (
                "crank_worker_idempotent_kept_bytes",
                "Bytes of the answers kept for replays now (bounded at 64 MiB)",
                kept_bytes,
            ),
        ] {
            let gauge = ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX));
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        Ok(())
    }
}

impl WorkerMetrics {
    /// Metrics of a worker whose registration stands as `status` says, and
    /// whose kept answers are `replays`.
    pub fn new(status: RegistrationStatus, replays: Arc<Mutex<Replays>>) -> Arc<Self> {
        let mut registry = Registry::default();
        let requests = RequestMetrics::default();
        requests.register(&mut registry);
        let heartbeats = Family::<Outcome, Counter>::default();
        for outcome in ["ok", "unknown_worker", "superseded"] {
            let _ = heartbeats.get_or_create(&Outcome { outcome });
        }
        registry.register(
            "crank_worker_heartbeats",
            "Heartbeats sent, by outcome: ok, unknown_worker, superseded, rejected, unreachable, timeout",
            heartbeats.clone(),
        );
        let heartbeat_rtt = latency_histogram();
        registry.register(
            "crank_worker_heartbeat_rtt_seconds",
            "Round-trip time of each heartbeat the controller answered",
            heartbeat_rtt.clone(),
        );
        registry.register_collector(Box::new(Registration(status)));
        registry.register_collector(Box::new(ReplayCounts(replays)));
        transport().register(&mut registry);
        Arc::new(WorkerMetrics {
            registry,
            requests,
            heartbeats,
            heartbeat_rtt,
        })
    }

    /// Heartbeats sent so far that were answered `outcome` (`ok`, …).
    pub fn heartbeats(&self, outcome: &'static str) -> u64 {
        self.heartbeats.get_or_create(&Outcome { outcome }).get()
    }

    fn heartbeat_sent(&self, result: &Result<(), LinkError>, started: Instant) {
        self.heartbeats
            .get_or_create(&Outcome {
                outcome: outcome(result),
            })
            .inc();
        if !matches!(
            result,
            Err(LinkError::Unreachable(_) | LinkError::Timeout(_))
        ) {
            self.heartbeat_rtt.observe(started.elapsed().as_secs_f64());
        }
    }
}

/// Mounts `GET /metrics` and request counting on a worker app.
pub fn mount(metrics: Arc<WorkerMetrics>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |config| {
        let counted = metrics.requests.endpoint("/metrics");
        config.app_data(web::Data::from(metrics)).service(
            endpoint("/metrics")
                .wrap(counted)
                .route(web::get().to(scrape)),
        );
    }
}

/// `GET /metrics` of a worker: every identity may read it.
async fn scrape(metrics: web::Data<WorkerMetrics>, _: Caller) -> HttpResponse {
    exposition(&[&metrics.registry])
}

/// A [`ControllerLink`] that counts the heartbeats sent through it.
pub struct MeteredLink<L> {
    link: L,
    metrics: Arc<WorkerMetrics>,
}

impl<L> MeteredLink<L> {
    pub fn new(link: L, metrics: Arc<WorkerMetrics>) -> Self {
        MeteredLink { link, metrics }
    }
}

impl<L: ControllerLink> ControllerLink for MeteredLink<L> {
    fn register(
        &self,
        request: RegisterRequest,
    ) -> LocalBoxFuture<'static, Result<RegisterResponse, LinkError>> {
        self.link.register(request)
    }

    fn heartbeat(
        &self,
        request: HeartbeatRequest,
    ) -> LocalBoxFuture<'static, Result<(), LinkError>> {
        let metrics = self.metrics.clone();
        let started = Instant::now();
        self.link
            .heartbeat(request)
            .map(move |result| {
                metrics.heartbeat_sent(&result, started);
                result
            })
            .boxed_local()
    }

    fn deregister(
        &self,
        worker_id: &str,
        instance: Option<&str>,
    ) -> LocalBoxFuture<'static, Result<(), LinkError>> {
        self.link.deregister(worker_id, instance)
    }

    fn describe(&self) -> String {
        self.link.describe()
    }
}
