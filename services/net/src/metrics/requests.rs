//! [`RequestMetrics`]: the requests each endpoint served, by status class, and
//! how long each took until its answer's head was ready.
//!
//! Counting must not slow the endpoints it counts: each endpoint gets its own
//! middleware ([`RequestMetrics::endpoint`]) holding its own counters, so a
//! request touches no label map, takes no lock and matches no route again; its
//! latency goes into a [`LatencyHistogram`] of relaxed atomics.

use std::collections::BTreeMap;
use std::future::{ready, Ready};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::dev::{forward_ready, Service, ServiceRequest, ServiceResponse, Transform};
use futures_util::future::LocalBoxFuture;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;

use super::LATENCY_BUCKETS;

/// A latency histogram over [`LATENCY_BUCKETS`] of relaxed atomics: observing
/// is a few atomic adds, with no lock (`prometheus-client`'s own histogram
/// takes a mutex per observation).
#[derive(Debug, Default)]
pub struct LatencyHistogram {
    /// Observations per bucket; the last is above every bound (`+Inf`).
    buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl LatencyHistogram {
    pub fn observe(&self, took: Duration) {
        let seconds = took.as_secs_f64();
        let bucket = LATENCY_BUCKETS.partition_point(|bound| *bound < seconds);
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

impl TypedMetric for LatencyHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for LatencyHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let buckets: Vec<(f64, u64)> = LATENCY_BUCKETS
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .zip(&self.buckets)
            .map(|(bound, count)| (bound, count.load(Ordering::Relaxed)))
            .collect();
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        encoder.encode_histogram::<NoLabelSet>(sum, self.count(), &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

/// Status classes counted: 1xx to 5xx.
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// One endpoint's counts.
#[derive(Debug, Default)]
struct Endpoint {
    latency: LatencyHistogram,
    by_class: [AtomicU64; 5],
}

impl Endpoint {
    fn observe(&self, status: u16, took: Duration) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.by_class[class].fetch_add(1, Ordering::Relaxed);
        self.latency.observe(took);
    }
}

/// See the [module](self) docs.
#[derive(Debug, Clone, Default)]
pub struct RequestMetrics {
    endpoints: Arc<Mutex<BTreeMap<&'static str, Arc<Endpoint>>>>,
}

impl RequestMetrics {
    /// The middleware counting the requests of `endpoint` (its route pattern,
    /// such as `/workers/{worker_id}`): `.wrap()` that resource with it.
    pub fn endpoint(&self, endpoint: &'static str) -> Observed {
        let mut endpoints = self.endpoints.lock().unwrap_or_else(|e| e.into_inner());
        Observed(endpoints.entry(endpoint).or_default().clone())
    }

    /// Requests `endpoint` answered so far.
    pub fn served(&self, endpoint: &str) -> u64 {
        let endpoints = self.endpoints.lock().unwrap_or_else(|e| e.into_inner());
        endpoints.get(endpoint).map_or(0, |e| e.latency.count())
    }

    /// Adds these metrics to `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register_collector(Box::new(self.clone()));
    }
}

impl Collector for RequestMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let endpoints = self.endpoints.lock().unwrap_or_else(|e| e.into_inner());
        let counter = ConstCounter::new(0u64);
        let mut served = encoder.encode_descriptor(
            "crank_http_requests",
            "Requests served, by endpoint (route pattern) and status class",
            None,
            counter.metric_type(),
        )?;
        for (endpoint, counts) in endpoints.iter() {
            for (class, count) in CLASSES.iter().zip(&counts.by_class) {
                let count = count.load(Ordering::Relaxed);
                if count > 0 {
                    let labels = [("endpoint", *endpoint), ("status", *class)];
                    ConstCounter::new(count).encode(served.encode_family(&labels)?)?;
                }
            }
        }
        let mut latency = encoder.encode_descriptor(
            "crank_http_request_duration_seconds",
            "Time from a request's arrival to its answer's head, by endpoint",
            None,
            MetricType::Histogram,
        )?;
        for (endpoint, counts) in endpoints.iter() {
            counts
                .latency
                .encode(latency.encode_family(&[("endpoint", *endpoint)])?)?;
        }
        Ok(())
    }
}

/// The middleware of one endpoint; see [`RequestMetrics::endpoint`].
pub struct Observed(Arc<Endpoint>);

impl<S, B> Transform<S, ServiceRequest> for Observed
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Transform = ObservedService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(ObservedService {
            service,
            endpoint: self.0.clone(),
        }))
    }
}

/// An endpoint's service, counted.
pub struct ObservedService<S> {
    service: S,
    endpoint: Arc<Endpoint>,
}

impl<S, B> Service<ServiceRequest> for ObservedService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, request: ServiceRequest) -> Self::Future {
        let started = Instant::now();
        let endpoint = self.endpoint.clone();
        let answer = self.service.call(request);
        Box::pin(async move {
            let response = answer.await?;
            endpoint.observe(response.status().as_u16(), started.elapsed());
            Ok(response)
        })
    }
}
