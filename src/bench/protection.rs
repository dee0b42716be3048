//! The protection scenarios: what the access policy costs, what rate limits
//! buy a steady caller beside a flooding one, and what SLO shedding buys
//! `normal` callers when a capability is driven past its p95 target.
//!
//! - `policy-cost`: routes as `client/client` against a controller with a
//!   1,000-rule policy whose only match is the last rule the decision reads,
//!   in `off` and then in `enforce` mode: throughput and controller CPU per
//!   route, so the difference is the decision's cost.
//! - `fairness`: a steady caller (`client/client`, 200 routes a second,
//!   one connection) alone, then beside a flood of routes as `admin/admin`
//!   at full speed, without and then with `--route-rate`.
//! - `shedding`: four hello-world workers driven past a 12 ms p95 target by
//!   24 callers through the client library, half of them `low`; without and
//!   then with the SLO file.

use std::cell::RefCell;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use crank_client::{Balance, Constraints, CrankClient, Request};
use crank_net::tls::{client_config, TlsFiles};
use crank_worker::hello::{GreetOptions, GreetRequest};

use super::calls::route_calls;
use super::flags::Scenario;
use super::load::{client, Load, Until};
use super::routing::Profile;
use super::row::Row;
use super::scenario::{measured, register_workers, row};
use super::target::{Bench, Target};
use crate::error::flat;

/// Rules of `policy-cost`'s policy.
const RULES: usize = 1_000;
/// The steady caller's rate in `fairness`.
const STEADY_PER_S: u64 = 200;

/// `target` as seen by the certificate `name` of the bench's directory.
fn as_identity(bench: &Bench, target: &Target, name: &str) -> Result<Target> {
    let tls = client_config(&TlsFiles::in_dir(&bench.cert_dir, name)).map_err(flat)?;
    Ok(Target::named(&target.url, Arc::new(tls)))
}

/// A controller started with `extra`, `--workers` registered on it, and
/// the same controller as seen by `client/client`.
fn route_fleet(bench: &Bench, extra: &[&str]) -> Result<(Target, Target)> {
    let flags = &bench.flags;
    let controller = bench.controller_with(extra)?;
    register_workers(
        bench,
        &controller,
        "bench",
        (0, flags.workers),
        (1, flags.capabilities),
    )?;
    let as_client = as_identity(bench, &controller, "client")?;
    Ok((controller, as_client))
}

/// A policy of [`RULES`] `client/*` rules, only the last matching the
/// bench's capabilities: the decision reads them all.
fn write_policy(path: &Path, mode: &str) -> Result<()> {
    let mut text = format!("mode = \"{mode}\"\n");
    for i in 0..RULES - 1 {
        text.push_str(&format!(
            "[[allow]]\nidentity = \"client/*\"\ncapabilities = [\"invoke:other{i}.*\"]\n"
        ));
    }
    text.push_str("[[allow]]\nidentity = \"client/*\"\ncapabilities = [\"invoke:bench.*\"]\n");
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// Route throughput and controller CPU per route under `mode`.
fn routes_under(bench: &Bench, mode: &str) -> Result<(Load, Option<f64>)> {
    let flags = &bench.flags;
    let dir = tempfile::tempdir()?;
    let policy = dir.path().join("policy.toml");
    write_policy(&policy, mode)?;
    let policy_arg = policy.to_string_lossy().into_owned();
    let (controller, as_client) = route_fleet(bench, &["--policy", &policy_arg])?;
    let until = Until::Elapsed(flags.duration);
    measured(&controller, || {
        Ok(bench.load(&as_client, until, route_calls(flags.capabilities)))
    })
}

pub fn policy_cost(bench: &Bench) -> Result<Row> {
    let (off, off_cpu) = routes_under(bench, "off")?;
    let (enforce, enforce_cpu) = routes_under(bench, "enforce")?;
    let per_route =
        |cpu: Option<f64>, load: &Load| cpu.map(|s| s * 1e6 / load.requests.max(1) as f64);
    let controller = bench.controller()?;
    Ok(Row {
        policy_rules: Some(RULES as u64),
        route_throughput_policy_off: Some(off.throughput()),
        route_ratio_enforce_to_off: Some(enforce.throughput() / off.throughput().max(1e-9)),
        route_cpu_us_policy_off: per_route(off_cpu, &off),
        route_cpu_us_policy_enforce: per_route(enforce_cpu, &enforce),
        ..row(Scenario::PolicyCost, &enforce, &controller, enforce_cpu)
    })
}

/// One caller routing `STEADY_PER_S` a second on one connection for
/// `duration`, as `target`'s identity; each route's latency.
async fn steady(target: &Target, duration: Duration, capabilities: usize) -> Load {
    let http = client(target.tls.clone(), 1);
    let url = format!("{}/route", target.url);
    let make = route_calls(capabilities);
    let mut load = Load::default();
    let started = Instant::now();
    let mut ticks = actix_rt::time::interval(Duration::from_micros(1_000_000 / STEADY_PER_S));
    let mut n = 0;
    while started.elapsed() < duration {
        ticks.tick().await;
        let super::load::Call::Post(_, body) = make(n) else {
            continue;
        };
        n += 1;
        let sent = Instant::now();
        let answer = http
            .post(&url)
            .content_type("application/json")
            .send_body(body)
            .await;
        let ok = match answer {
            Ok(mut response) => {
                let _ = response.body().await;
                response.status().is_success()
            }
            Err(_) => false,
        };
        load.requests += 1;
        load.errors += u64::from(!ok);
        load.latencies_us
            .push(u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX));
    }
    load.elapsed = started.elapsed();
    load.latencies_us.sort_unstable();
    load
}

/// The steady caller's routes, beside a flood from the bench's admin
/// identity if `flood`, against a fresh controller started with `extra`.
fn steady_beside(bench: &Bench, extra: &[&str], flood: bool) -> Result<(Load, Option<Load>)> {
    let flags = &bench.flags;
    let (controller, as_client) = route_fleet(bench, extra)?;
    let duration = flags.duration;
    let flooder = flood.then(|| {
        let (url, tls) = (controller.url.clone(), controller.tls.clone());
        let (connections, threads, capabilities) =
            (flags.connections, flags.threads, flags.capabilities);
        std::thread::spawn(move || {
            super::load::run_load(
                &url,
                tls,
                connections,
                threads,
                Until::Elapsed(duration),
                false,
                route_calls(capabilities),
            )
        })
    });
    let steady = bench.block_on(steady(&as_client, duration, flags.capabilities));
    let flood = flooder.and_then(|thread| thread.join().ok());
    Ok((steady, flood))
}

pub fn fairness(bench: &Bench) -> Result<Row> {
    let (alone, _) = steady_beside(bench, &[], false)?;
    let (unlimited, flood_unlimited) = steady_beside(bench, &[], true)?;
    let limits = ["--route-rate", "500/s", "--rate-burst", "100"];
    let (limited, flood_limited) = steady_beside(bench, &limits, true)?;
    let controller = bench.controller()?;
    Ok(Row {
        steady_p99_ms_alone: Some(alone.percentile_ms(0.99)),
        steady_p99_ms_flooded_without_limits: Some(unlimited.percentile_ms(0.99)),
        steady_p99_ratio_with_limits: Some(
            limited.percentile_ms(0.99) / alone.percentile_ms(0.99).max(1e-9),
        ),
        flood_routes_per_s_without_limits: flood_unlimited.as_ref().map(Load::throughput),
        flood_refused_with_limits: flood_limited.as_ref().map(|l| l.errors),
        ..row(Scenario::Fairness, &limited, &controller, None)
    })
}

/// Four workers answering in 10 ms with room for 8 at once: 24 callers drive
/// their latency past a 12 ms p95 (10 ms of it is the service time).
const SHEDDING_FLEET: [Profile; 4] = [("10ms", "8"), ("10ms", "8"), ("10ms", "8"), ("10ms", "8")];
const SHEDDING_CALLERS: usize = 24;
const SHEDDING_SLO: &str = "capability: {verb: invoke, name: hello.greet, version: \"1.0.0\"}
slo:
  latency: {p50_ms: 10, p95_ms: 12, p99_ms: 30}
  availability: {target: 0.99}
";

/// Per priority, the calls' latencies and refusals of one phase.
#[derive(Default)]
struct ByPriority {
    normal: Load,
    low: Load,
    shed: u64,
}

fn shedding_phase(bench: &Bench, slo_dir: Option<&Path>) -> Result<ByPriority> {
    let slo_arg = slo_dir.map(|d| d.to_string_lossy().into_owned());
    let extra: Vec<&str> = match &slo_arg {
        Some(dir) => vec!["--slo-dir", dir, "--slo-window", "5s"],
        None => Vec::new(),
    };
    let fleet = super::routing::start_fleet_with(bench, &SHEDDING_FLEET, &extra)?;
    let client = CrankClient::new(
        &fleet.controller.url,
        TlsFiles::in_dir(&bench.cert_dir, "admin"),
    )
    .map_err(flat)?
    .with_balance(Balance::Controller);
    let request = Request::post(
        "/greet",
        &GreetRequest {
            message: "bench".into(),
            options: GreetOptions::default(),
        },
    )
    .map_err(flat)?;
    let result = RefCell::new(ByPriority::default());
    let deadline = Instant::now() + bench.flags.duration;
    let caller = |priority: &'static str| {
        let (client, request, result) = (&client, &request, &result);
        async move {
            let constraints = Constraints {
                priority: Some(priority.to_owned()),
                ..Constraints::any()
            };
            while Instant::now() < deadline {
                let sent = Instant::now();
                let outcome = super::routing::greet(client, &constraints, request).await;
                let micros = u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX);
                let mut result = result.borrow_mut();
                let shed = matches!(&outcome, Err(crank_client::ClientError::Refused { code: Some(code), .. }) if code == "slo_violation");
                if shed {
                    result.shed += 1;
                    continue;
                }
                let load = if priority == "low" {
                    &mut result.low
                } else {
                    &mut result.normal
                };
                load.requests += 1;
                load.errors += u64::from(outcome.is_err());
                load.latencies_us.push(micros);
            }
        }
    };
    let started = Instant::now();
    bench.block_on(futures_util::future::join_all(
        (0..SHEDDING_CALLERS).map(|i| caller(if i % 2 == 0 { "low" } else { "normal" })),
    ));
    let mut result = result.into_inner();
    for load in [&mut result.normal, &mut result.low] {
        load.elapsed = started.elapsed();
        load.latencies_us.sort_unstable();
    }
    drop(fleet);
    Ok(result)
}

pub fn shedding(bench: &Bench) -> Result<Row> {
    let without = shedding_phase(bench, None)?;
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("hello.greet.yml"), SHEDDING_SLO)?;
    let with = shedding_phase(bench, Some(dir.path()))?;
    let controller = bench.controller()?;
    let attempted_low = with.low.requests + with.shed;
    Ok(Row {
        normal_p99_ms_without_shedding: Some(without.normal.percentile_ms(0.99)),
        normal_p99_ms_with_shedding: Some(with.normal.percentile_ms(0.99)),
        low_shed_share: Some(with.shed as f64 / attempted_low.max(1) as f64),
        ..row(Scenario::Shedding, &with.normal, &controller, None)
    })
}
