//! Active health checks: the controller calls `GET /health` of the workers
//! that cannot heartbeat (the original system's, or any that registered with
//! `"health_check": "active"`), as Consul checks a service that cannot report
//! itself. A check that answers 2xx counts as a heartbeat without a load; one
//! that fails or times out is silence, and the worker goes stale and is
//! evicted as usual.
//!
//! Each round, one advised heartbeat interval long, asks the registry which
//! workers are due ([`DueChecks`]: only those judged here, so in a cluster
//! their owner checks them), then spreads their checks over the round at
//! random offsets (a fleet registered together is not checked in lockstep),
//! at most [`CheckerSettings::concurrency`] at a time, over one mTLS client
//! whose pooled connections are kept from round to round, as heartbeats keep
//! theirs.

use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use crank_registry::{CheckPassed, DueChecks, RegistryActor};
use futures_util::StreamExt;
use rand::Rng;

use crate::metrics::ControllerMetrics;
use crank_net::https::mtls_client;

/// Which workers the controller checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActiveChecks {
    /// None, whatever they ask.
    Off,
    /// Those whose registration asked (`"health_check": "active"`).
    Requested,
    /// Those, and those that sent no heartbeat one advised interval after
    /// registering.
    Silent,
}

impl std::str::FromStr for ActiveChecks {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text.trim() {
            "off" => Ok(ActiveChecks::Off),
            "requested" => Ok(ActiveChecks::Requested),
            "silent" => Ok(ActiveChecks::Silent),
            other => Err(format!("{other:?} is not off, requested or silent")),
        }
    }
}

/// How the checker runs.
#[derive(Clone)]
pub struct CheckerSettings {
    pub mode: ActiveChecks,
    /// One round: the advised heartbeat interval.
    pub interval: Duration,
    /// Checks in flight at most.
    pub concurrency: usize,
    /// The mTLS client's configuration, expecting a worker's certificate.
    pub tls: Arc<rustls::ClientConfig>,
    /// How long one check may take.
    pub timeout: Duration,
}

/// Runs rounds of checks until the registry is gone.
pub async fn run(
    registry: Addr<RegistryActor>,
    settings: CheckerSettings,
    metrics: Arc<ControllerMetrics>,
) {
    if settings.mode == ActiveChecks::Off {
        return;
    }
    let silent = settings.mode == ActiveChecks::Silent;
    let client = mtls_client(settings.tls.clone(), settings.timeout);
    loop {
        actix_rt::time::sleep(settings.interval).await;
        let Ok(due) = registry.send(DueChecks { silent }).await else {
            return;
        };
        if due.is_empty() {
            continue;
        }
        let round = settings.interval.mul_f64(0.9);
        let mut scheduled: Vec<(Duration, String, String)> = {
            let mut rng = rand::rng();
            due.into_iter()
                .map(|(id, url)| (round.mul_f64(rng.random::<f64>()), id, url))
                .collect()
        };
        scheduled.sort_by_key(|(offset, ..)| *offset);
        let started = actix_rt::time::Instant::now();
        let client = &client;
        let registry = &registry;
        let metrics = &metrics;
        futures_util::stream::iter(scheduled)
            .then(|(offset, id, url)| async move {
                actix_rt::time::sleep_until(started + offset).await;
                (id, url)
            })
            .map(|(id, url)| async move {
                let passed = check(client, &url).await;
                metrics.check(passed);
                if passed {
                    let _ = registry.send(CheckPassed { worker_id: id, url }).await;
                } else {
                    log::debug!(
                        "active check of worker {id} at {url} failed; it counts as silence"
                    );
                }
            })
            .buffer_unordered(settings.concurrency.max(1))
            .for_each(|()| async {})
            .await;
    }
}

/// Whether `GET {url}/health` answers 2xx.
async fn check(client: &awc::Client, url: &str) -> bool {
    let url = format!("{}/health", url.trim_end_matches('/'));
    match client.get(&url).send().await {
        Ok(mut response) => {
            // Read the body so the pooled connection can be used again.
            let _ = response.body().limit(64 * 1024).await;
            response.status().is_success()
        }
        Err(_) => false,
    }
}
