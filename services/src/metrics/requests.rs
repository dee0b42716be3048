//! [`RequestMetrics`]: every request an app served, by endpoint (its route
//! pattern, such as `/workers/{worker_id}`, or `unmatched`) and status class,
//! and how long each took until its answer's head was ready.

use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;

use actix_web::http::StatusCode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::latency_histogram;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Endpoint {
    endpoint: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Served {
    endpoint: String,
    status: &'static str,
}

#[derive(Debug, Clone, Copy)]
struct Latency;

impl MetricConstructor<Histogram> for Latency {
    fn new_metric(&self) -> Histogram {
        latency_histogram()
    }
}

/// See the [module](self) docs.
#[derive(Debug, Clone)]
pub struct RequestMetrics {
    served: Family<Served, Counter>,
    latency: Family<Endpoint, Histogram, Latency>,
}

impl Default for RequestMetrics {
    fn default() -> Self {
        RequestMetrics {
            served: Family::default(),
            latency: Family::new_with_constructor(Latency),
        }
    }
}

fn status_class(status: StatusCode) -> &'static str {
    match status.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

impl RequestMetrics {
    /// Counts one request to `endpoint` (`None`: no route matched) answered
    /// with `status` after `took`.
    pub fn observe(&self, endpoint: Option<String>, status: StatusCode, took: Duration) {
        let endpoint = endpoint.unwrap_or_else(|| "unmatched".to_owned());
        self.latency
            .get_or_create(&Endpoint {
                endpoint: endpoint.clone(),
            })
            .observe(took.as_secs_f64());
        self.served
            .get_or_create(&Served {
                endpoint,
                status: status_class(status),
            })
            .inc();
    }

    /// Adds these metrics to `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "crank_http_requests",
            "Requests served, by endpoint (route pattern) and status class",
            self.served.clone(),
        );
        registry.register(
            "crank_http_request_duration_seconds",
            "Time from a request's arrival to its answer's head, by endpoint",
            self.latency.clone(),
        );
    }
}

/// Middleware (`.wrap(actix_web::middleware::from_fn(observe))`) counting
/// each request in the app's [`RequestMetrics`] (its `web::Data`), if it has
/// one.
pub async fn observe(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let metrics = request.app_data::<web::Data<RequestMetrics>>().cloned();
    let started = Instant::now();
    let response = next.call(request).await?;
    if let Some(metrics) = metrics {
        metrics.observe(
            response.request().match_pattern(),
            response.status(),
            started.elapsed(),
        );
    }
    Ok(response)
}
