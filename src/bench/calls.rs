//! What each scenario sends: the request bodies, as wire types, and the
//! [`MakeCall`]s that pick the n-th request of a phase.

use std::sync::Arc;

use actix_web::web::Bytes;
use crank_proto::wire::{
    Capability, HeartbeatRequest, Load, Outcome, RegisterRequest, ReportRequest, RouteRequest,
};
use serde::Serialize;

use super::load::{Call, MakeCall};

/// `value` as a request body. Serializing a wire body cannot fail: none has a
/// map with other than string keys.
fn body(value: &impl Serialize) -> Bytes {
    Bytes::from(serde_json::to_vec(value).expect("a wire body serializes"))
}

/// A [`RegisterRequest`] for worker `id`, serving `bench.cap<N>` for each N of
/// `capabilities`.
pub fn registration(id: &str, capabilities: &[usize]) -> Bytes {
    body(&RegisterRequest {
        worker_id: id.to_owned(),
        worker_url: format!("https://{id}.bench.local:8500"),
        capabilities: capabilities
            .iter()
            .map(|c| Capability::new("invoke", &format!("bench.cap{c}"), "1.0.0"))
            .collect(),
        // Load generators speak v1, as the original system's workers do.
        instance: None,
        health_check: None,
    })
}

fn heartbeat(id: &str, load: Option<Load>) -> Bytes {
    body(&HeartbeatRequest {
        worker_id: id.to_owned(),
        load,
        instance: None,
    })
}

fn route(capability: usize, strategy: Option<&str>) -> Bytes {
    body(&RouteRequest {
        strategy: strategy.map(str::to_owned),
        ..RouteRequest::new("invoke", &format!("bench.cap{capability}"))
    })
}

/// Heartbeats cycling over workers `prefix-0 .. prefix-(workers-1)`.
pub fn heartbeat_calls(prefix: &str, workers: usize) -> MakeCall {
    let bodies: Arc<Vec<Bytes>> = Arc::new(
        (0..workers.max(1))
            .map(|i| heartbeat(&format!("{prefix}-{i}"), None))
            .collect(),
    );
    Arc::new(move |n| {
        Call::Post(
            "/heartbeat".into(),
            bodies[n as usize % bodies.len()].clone(),
        )
    })
}

/// One heartbeat for each of workers `prefix-0 .. prefix-(workers-1)`, each
/// reporting a load: `i % 8` of 64 in flight, so that the load-aware strategy
/// has loads to compare.
pub fn loaded_heartbeat_calls(prefix: &str, workers: usize) -> MakeCall {
    let prefix = prefix.to_owned();
    Arc::new(move |n| {
        let load = Load::new((n % 8) as u32, 64);
        Call::Post(
            "/heartbeat".into(),
            heartbeat(
                &format!("{prefix}-{}", n as usize % workers.max(1)),
                Some(load),
            ),
        )
    })
}

/// One successful call reported per worker (`POST /report`), its latency 5
/// to 14 ms: every provider then has a latency estimate, so the default
/// strategy computes an expected wait for each, as in a fleet whose callers
/// report.
pub fn latency_report_calls(prefix: &str, workers: usize) -> MakeCall {
    let prefix = prefix.to_owned();
    Arc::new(move |n| {
        Call::Post(
            "/report".into(),
            body(&ReportRequest {
                worker_id: format!("{prefix}-{}", n as usize % workers.max(1)),
                outcome: Outcome::Success,
                latency_ms: Some(5.0 + (n % 10) as f64),
                load: None,
                capability: None,
            }),
        )
    })
}

/// Routes cycling over the capabilities, with the controller's default strategy.
pub fn route_calls(capabilities: usize) -> MakeCall {
    route_calls_with(capabilities, None)
}

/// Routes cycling over the capabilities, asking for `strategy`.
pub fn route_calls_with(capabilities: usize, strategy: Option<&str>) -> MakeCall {
    let bodies: Arc<Vec<Bytes>> = Arc::new(
        (0..capabilities.max(1))
            .map(|capability| route(capability, strategy))
            .collect(),
    );
    Arc::new(move |n| Call::Post("/route".into(), bodies[n as usize % bodies.len()].clone()))
}

pub fn mixed_calls(workers: usize, capabilities: usize) -> MakeCall {
    let heartbeats = heartbeat_calls("bench", workers);
    let routes = route_calls(capabilities);
    Arc::new(move |n| match n % 100 {
        // Churn: the n-th hundred registers churn-k, the next one deregisters it.
        0 => {
            let k = n / 200;
            if (n / 100) % 2 == 0 {
                Call::Post(
                    "/register".into(),
                    registration(&format!("churn-{k}"), &[0]),
                )
            } else {
                Call::Delete(format!("/deregister/churn-{k}"))
            }
        }
        1..=9 => routes(n),
        _ => heartbeats(n),
    })
}
