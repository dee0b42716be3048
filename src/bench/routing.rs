//! `heterogeneous` and `failing-worker`: real calls, as a user's program makes
//! them, through the client library ([`CrankClient::call`]: route, call the
//! routed worker over mTLS, retry once elsewhere on failure, report the
//! outcome) to real hello-world workers, from [`CALLERS`] concurrent callers.
//!
//! - `heterogeneous`: four workers, one ten times slower and with an eighth
//!   of the capacity; the same load under `round_robin` and then under the
//!   default strategy, end-to-end latency of each call.
//! - `failing-worker`: four workers, one killed with SIGKILL once registered:
//!   its record stays healthy until `stale_after`, so calls routed to it fail
//!   (and are retried). The share of attempts that hit it, without outcome
//!   reports and then with them.

use std::cell::{Cell, RefCell};
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use crank_client::{Balance, CallOutcome, Constraints, CrankClient, OutcomeSink, Request};
use crank_net::identity::Role;
use crank_net::tls::TlsFiles;
use crank_proto::wire::WorkerStatus;
use crank_worker::hello::{GreetOptions, GreetRequest};

use super::flags::Scenario;
use super::load::Load;
use super::row::Row;
use super::scenario::row;
use super::target::{free_port, Bench, Target};
use crate::error::flat;

/// Concurrent callers, each making one call after another: enough to keep the
/// fast workers busy, few enough that the client, the controller and four
/// workers share two cores without the client being the bottleneck.
pub const CALLERS: usize = 16;
/// The service certificate (`service/bench-routing`) the workers share; their
/// ids are `bench-routing.1` to `.4`.
const SERVICE: &str = "bench-routing";
pub const WORKERS: usize = 4;
/// A hello-world-like worker: each answer held 10 ms, 32 at once.
const FAST: Profile = ("10ms", "32");
/// Ten times slower, with room for 4 at once.
const SLOW: Profile = ("100ms", "4");

/// A worker's `--service-time` and `--capacity`.
pub type Profile = (&'static str, &'static str);
/// Heartbeats every second, so that load reports are fresh: what the router
/// knows between them is its own estimate.
const HEARTBEAT: &str = "1s";

/// The controller and its workers.
pub struct RoutingFleet {
    pub controller: Target,
    pub workers: Vec<Target>,
    pub ids: Vec<String>,
}

pub fn worker_id(index: usize) -> String {
    format!("{SERVICE}.{}", index + 1)
}

/// A controller and [`WORKERS`] workers, worker `slow` (if any) with
/// [`SLOW`]'s service time and capacity, the others [`FAST`]; returns once
/// every worker is registered and healthy.
fn start_fleet(bench: &Bench, slow: Option<usize>) -> Result<RoutingFleet> {
    let profiles: Vec<Profile> = (0..WORKERS)
        .map(|index| if slow == Some(index) { SLOW } else { FAST })
        .collect();
    start_fleet_of(bench, &profiles)
}

/// A controller and one worker per profile; returns once every worker is
/// registered and healthy.
pub fn start_fleet_of(bench: &Bench, profiles: &[Profile]) -> Result<RoutingFleet> {
    start_fleet_with(bench, profiles, &[])
}

/// [`start_fleet_of`], the controller started with `controller_extra` flags.
pub fn start_fleet_with(
    bench: &Bench,
    profiles: &[Profile],
    controller_extra: &[&str],
) -> Result<RoutingFleet> {
    issue_service_certificate(&bench.cert_dir)?;
    let controller = bench.controller_with(controller_extra)?;
    let mut workers = Vec::new();
    let ids: Vec<String> = (0..profiles.len()).map(worker_id).collect();
    for (index, profile) in profiles.iter().enumerate() {
        let spec = WorkerSpec {
            index,
            profile: *profile,
            controller_url: &controller.url,
            extra: &[],
        };
        workers.push(bench.block_on(start_worker(bench, &spec))?);
    }
    let fleet = RoutingFleet {
        controller,
        workers,
        ids,
    };
    all_registered(bench, &fleet)?;
    Ok(fleet)
}

/// One worker of a routing fleet: its id is [`worker_id`] of `index`.
pub struct WorkerSpec<'a> {
    pub index: usize,
    pub profile: Profile,
    /// One controller, or a comma-separated list.
    pub controller_url: &'a str,
    /// More `crank worker` flags.
    pub extra: &'a [&'a str],
}

/// Starts the worker `spec` describes, serving with the fleet's service
/// certificate; returns once it answers.
pub async fn start_worker(bench: &Bench, spec: &WorkerSpec<'_>) -> Result<Target> {
    let cert_dir = bench.cert_dir.to_string_lossy().into_owned();
    let id = worker_id(spec.index);
    let (service_time, capacity) = spec.profile;
    let port = free_port()?;
    let port_arg = port.to_string();
    let mut args = vec![
        "worker",
        "--port",
        &port_arg,
        "--cert-dir",
        &cert_dir,
        "--cert",
        SERVICE,
        "--worker-id",
        &id,
        "--controller-url",
        spec.controller_url,
        "--heartbeat-interval",
        HEARTBEAT,
        "--service-time",
        service_time,
        "--capacity",
        capacity,
    ];
    args.extend_from_slice(spec.extra);
    bench
        .start_worker_now(spec.controller_url, &id, &args, port, &id)
        .await
}

/// `service/bench-routing`, unless the certificate directory has it.
pub fn issue_service_certificate(dir: &Path) -> Result<()> {
    if dir.join(format!("{SERVICE}.crt")).exists() {
        return Ok(());
    }
    crank_net::certs::issue(dir, Role::Service, SERVICE, false)
        .map_err(flat)
        .with_context(|| format!("cannot issue service/{SERVICE} in {}", dir.display()))?;
    Ok(())
}

fn admin_client(bench: &Bench, controller: &Target) -> Result<CrankClient> {
    CrankClient::new(&controller.url, TlsFiles::in_dir(&bench.cert_dir, "admin")).map_err(flat)
}

fn all_registered(bench: &Bench, fleet: &RoutingFleet) -> Result<()> {
    let client = admin_client(bench, &fleet.controller)?;
    let deadline = Instant::now() + Duration::from_secs(20);
    bench.block_on(async {
        loop {
            if let Ok(list) = client.workers().await {
                let healthy = fleet.ids.iter().all(|id| {
                    list.workers
                        .iter()
                        .any(|w| &w.worker_id == id && w.status == WorkerStatus::Healthy)
                });
                if healthy {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!("the routing workers did not all register within 20 s");
            }
            actix_rt::time::sleep(Duration::from_millis(100)).await;
        }
    })
}

/// One attempt of a call: when, to whom, and whether the worker did its part.
pub struct Attempt {
    pub at: Duration,
    pub worker_id: String,
    pub succeeded: bool,
    /// Why it failed: the failure, else the status the worker answered.
    pub failure: Option<String>,
    /// Whether a worker answered at all (a refusal at capacity included);
    /// not when the connection was refused or lost.
    pub answered: bool,
}

/// Every attempt of a phase, in order.
struct Attempts {
    started: Instant,
    log: RefCell<Vec<Attempt>>,
}

impl OutcomeSink for Attempts {
    fn record(&self, outcome: &CallOutcome) {
        self.log.borrow_mut().push(Attempt {
            at: self.started.elapsed(),
            worker_id: outcome.worker_id.clone(),
            succeeded: outcome.succeeded(),
            failure: (!outcome.succeeded()).then(|| {
                outcome
                    .failure
                    .clone()
                    .unwrap_or_else(|| match outcome.status {
                        Some(status) => format!("HTTP {status}"),
                        None => "no answer".to_owned(),
                    })
            }),
            answered: outcome.status.is_some(),
        });
    }
}

/// How a phase of calls went: the calls (a [`Load`]: each call's end-to-end
/// latency, route and retry included) and every attempt.
pub struct Calls {
    pub load: Load,
    pub attempts: Vec<Attempt>,
}

impl Calls {
    /// The share of attempts that went to `worker_id`, of those made from
    /// `from` on.
    pub fn share_of(&self, worker_id: &str, from: Duration) -> f64 {
        let later: Vec<&Attempt> = self.attempts.iter().filter(|a| a.at >= from).collect();
        let hits = later.iter().filter(|a| a.worker_id == worker_id).count();
        hits as f64 / later.len().max(1) as f64
    }

    /// Attempts that went to `worker_id`.
    fn hits(&self, worker_id: &str) -> u64 {
        self.attempts
            .iter()
            .filter(|a| a.worker_id == worker_id)
            .count() as u64
    }

    /// From when on every whole second of the phase sent under 1 % of its
    /// attempts to `worker_id`.
    fn under_one_percent_after(&self, worker_id: &str) -> Option<f64> {
        let seconds = self.load.elapsed.as_secs();
        let mut from = None;
        for second in (0..seconds).rev() {
            let window = |a: &&Attempt| a.at.as_secs() == second;
            let total = self.attempts.iter().filter(window).count();
            let hits = self
                .attempts
                .iter()
                .filter(window)
                .filter(|a| a.worker_id == worker_id)
                .count();
            if total == 0 || hits as f64 >= 0.01 * total as f64 {
                break;
            }
            from = Some(second as f64);
        }
        from
    }

    /// Attempts that failed.
    pub fn failed_attempts(&self) -> u64 {
        self.attempts.iter().filter(|a| !a.succeeded).count() as u64
    }

    /// Attempts no worker answered: a connection refused or lost, what a
    /// worker that stops under its callers costs them.
    pub fn unanswered_attempts(&self) -> u64 {
        self.attempts.iter().filter(|a| !a.answered).count() as u64
    }
}

/// How one phase of calls is made.
pub struct Phase<'a> {
    /// `None`: the controller's default (or local mode's own rule).
    pub strategy: Option<&'a str>,
    /// Outcomes reported to the controller (controller mode).
    pub reports: bool,
    pub balance: Balance,
    pub callers: usize,
    /// The longest the calls go on.
    pub duration: Duration,
    /// An earlier end, once set: a fault beside the calls sets it when it
    /// is done, so that the calls outlast it by as long as it needs.
    pub ends: Rc<Cell<Option<Instant>>>,
    /// Each call from a client of its own, on new connections (controller
    /// mode): a caller that keeps no connection to the workers, as a script
    /// running `crank call` does.
    pub fresh: bool,
}

impl Phase<'_> {
    /// [`CALLERS`] callers through the controller, reporting.
    pub fn routed(strategy: Option<&str>, duration: Duration) -> Phase<'_> {
        Phase {
            strategy,
            reports: true,
            balance: Balance::Controller,
            callers: CALLERS,
            duration,
            ends: Rc::default(),
            fresh: false,
        }
    }
}

/// [`CALLERS`] callers calling `invoke:hello.greet` for `duration`, routed
/// with `strategy` (`None`: the controller's default), outcomes reported to
/// the controller if `reports`.
fn calls(
    bench: &Bench,
    controller: &Target,
    strategy: Option<&str>,
    reports: bool,
    duration: Duration,
) -> Result<Calls> {
    let phase = Phase {
        reports,
        ..Phase::routed(strategy, duration)
    };
    calls_in(bench, controller, &phase, None)
}

/// One call of `invoke:hello.greet`, its answer read to the end as a caller
/// reads it: an answer dropped unread cannot hand its connection back to the
/// pool, and every next call would pay a TLS handshake.
pub async fn greet(
    client: &CrankClient,
    constraints: &Constraints,
    request: &Request,
) -> Result<(), crank_client::ClientError> {
    let reply = client
        .call("invoke", "hello.greet", constraints, request)
        .await?;
    reply.bytes().await.map(drop)
}

/// `phase.callers` callers calling `invoke:hello.greet` for
/// `phase.duration` as `phase` says, all through one client; `during`, if
/// given, runs beside them (a fault to inject).
pub fn calls_in(
    bench: &Bench,
    controller: &Target,
    phase: &Phase<'_>,
    during: Option<futures_util::future::LocalBoxFuture<'_, ()>>,
) -> Result<Calls> {
    let (strategy, duration) = (phase.strategy, phase.duration);
    let sink = Rc::new(Attempts {
        started: Instant::now(),
        log: RefCell::new(Vec::new()),
    });
    let make_client = || -> Result<CrankClient> {
        let client = admin_client(bench, controller)?
            .on_outcome(sink.clone())
            .with_balance(phase.balance);
        Ok(if phase.reports {
            client
        } else {
            client.without_reports()
        })
    };
    let client = make_client()?;
    let constraints = Constraints {
        strategy: strategy.map(str::to_owned),
        ..Constraints::any()
    };
    let greeting = GreetRequest {
        message: "bench".into(),
        options: GreetOptions::default(),
    };
    let request = Request::post("/greet", &greeting).map_err(flat)?;
    let started = Instant::now();
    let deadline = started + duration;
    let ends = || phase.ends.get().map_or(deadline, |ends| ends.min(deadline));
    let caller = || async {
        let mut load = Load::default();
        while Instant::now() < ends() {
            let sent = Instant::now();
            let result = if phase.fresh {
                match make_client() {
                    Ok(fresh) => greet(&fresh, &constraints, &request).await,
                    Err(error) => Err(crank_client::ClientError::Unreachable {
                        url: controller.url.clone(),
                        detail: format!("{error:#}"),
                    }),
                }
            } else {
                greet(&client, &constraints, &request).await
            };
            load.requests += 1;
            let micros = u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX);
            load.latencies_us.push(micros);
            if let Err(error) = result {
                load.errors += 1;
                load.first_error.get_or_insert_with(|| error.to_string());
            }
        }
        load
    };
    let callers = futures_util::future::join_all((0..phase.callers).map(|_| caller()));
    let loads = bench.block_on(async {
        match during {
            Some(fault) => futures_util::future::join(callers, fault).await.0,
            None => callers.await,
        }
    });
    let mut load = Load::default();
    for one in loads {
        load.merge(one);
    }
    load.elapsed = started.elapsed();
    load.latencies_us.sort_unstable();
    drop(client);
    let attempts = Rc::try_unwrap(sink)
        .ok()
        .context("the client outlived its phase")?
        .log
        .into_inner();
    Ok(Calls { load, attempts })
}

/// Four workers, one slow: `round_robin`, then the default strategy.
pub fn heterogeneous(bench: &Bench) -> Result<Row> {
    let slow = WORKERS - 1;
    let fleet = start_fleet(bench, Some(slow))?;
    let duration = bench.flags.duration;
    let round_robin = calls(
        bench,
        &fleet.controller,
        Some("round_robin"),
        true,
        duration,
    )?;
    let default = calls(bench, &fleet.controller, None, true, duration)?;
    let slow_id = &fleet.ids[slow];
    let (rr, chosen) = (&round_robin.load, &default.load);
    Ok(Row {
        workers: Some(WORKERS as u64),
        round_robin_p50_ms: Some(rr.percentile_ms(0.50)),
        round_robin_p99_ms: Some(rr.percentile_ms(0.99)),
        round_robin_throughput: Some(rr.throughput()),
        p99_ratio_to_round_robin: Some(chosen.percentile_ms(0.99) / rr.percentile_ms(0.99)),
        throughput_ratio_to_round_robin: Some(chosen.throughput() / rr.throughput().max(1e-9)),
        slow_worker_share: Some(default.share_of(slow_id, Duration::ZERO)),
        slow_worker_share_round_robin: Some(round_robin.share_of(slow_id, Duration::ZERO)),
        failed_attempts: Some(default.failed_attempts() + round_robin.failed_attempts()),
        ..row(Scenario::Heterogeneous, chosen, &fleet.controller, None)
    })
}

/// Four workers, one killed: calls without outcome reports, then with them.
pub fn failing_worker(bench: &Bench) -> Result<Row> {
    let fleet = start_fleet(bench, None)?;
    let dead = 0;
    fleet.workers[dead].kill()?;
    let dead_id = &fleet.ids[dead];
    let duration = bench.flags.duration;
    let unreported = calls(bench, &fleet.controller, None, false, duration)?;
    let reported = calls(bench, &fleet.controller, None, true, duration)?;
    Ok(Row {
        workers: Some(WORKERS as u64),
        failing_share_without_reports: Some(unreported.share_of(dead_id, Duration::ZERO)),
        failing_share_with_reports: Some(reported.share_of(dead_id, Duration::ZERO)),
        failing_hits_with_reports: Some(reported.hits(dead_id)),
        failing_under_1pct_after_s: reported.under_one_percent_after(dead_id),
        failed_attempts: Some(reported.failed_attempts()),
        ..row(
            Scenario::FailingWorker,
            &reported.load,
            &fleet.controller,
            None,
        )
    })
}
