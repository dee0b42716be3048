//! The load-balancing scenarios: real calls through the client library to
//! real hello-world workers, as in [`routing`](super::routing), comparing
//! round-robin, the default strategy through the controller, and local mode
//! ([`Balance::Local`]) in one run.
//!
//! - `equal-capacity`: four workers announcing the **same** capacity, one
//!   slow by its service time alone, so only what is measured can tell it
//!   apart (the `heterogeneous` scenario also gives it less capacity).
//! - `saturated`: the same, with capacities so small that the fast workers
//!   cannot take every caller: the slow one must take a share.
//! - `local-mode`: four fast workers; calls per second and controller CPU per
//!   call through the controller and in local mode.
//! - `controller-outage`: local-mode callers while the controller is killed.

use std::cell::Cell;
use std::time::{Duration, Instant};

use anyhow::Result;
use crank_client::Balance;
use futures_util::FutureExt;

use super::flags::Scenario;
use super::routing::{calls_in, start_fleet_of, Calls, Phase, Profile, RoutingFleet};
use super::row::Row;
use super::scenario::{measured, row};
use super::target::{Bench, Target};

/// Callers of `equal-capacity`: a third more than the fast workers'
/// combined capacity would need at one call each.
const EQUAL_CALLERS: usize = 12;
/// The same capacity for every worker of `equal-capacity`.
const EQUAL: [Profile; 4] = [("10ms", "8"), ("10ms", "8"), ("10ms", "8"), ("100ms", "8")];
/// Callers of `saturated`: more than the fast workers have room for (12),
/// fewer than the whole fleet has (16): the slow one must take some.
const SATURATED_CALLERS: usize = 14;
const SATURATED: [Profile; 4] = [("10ms", "4"), ("10ms", "4"), ("10ms", "4"), ("100ms", "4")];
/// The slow worker of both: the last.
const SLOW: usize = 3;
/// Four workers that answer at once, with room for every caller.
const FAST: [Profile; 4] = [("0ms", "64"), ("0ms", "64"), ("0ms", "64"), ("0ms", "64")];

fn phase(
    strategy: Option<&str>,
    balance: Balance,
    callers: usize,
    duration: Duration,
) -> Phase<'_> {
    Phase {
        strategy,
        reports: true,
        balance,
        callers,
        duration,
        ends: Default::default(),
        fresh: false,
    }
}

/// Round-robin, the default strategy and local mode on one fleet.
struct Compared {
    round_robin: Calls,
    default: Calls,
    local: Calls,
}

fn compare(bench: &Bench, fleet: &RoutingFleet, callers: usize) -> Result<Compared> {
    let duration = bench.flags.duration;
    let controller = &fleet.controller;
    let round_robin = phase(Some("round_robin"), Balance::Controller, callers, duration);
    let default = phase(None, Balance::Controller, callers, duration);
    let local = phase(None, Balance::Local, callers, duration);
    Ok(Compared {
        round_robin: calls_in(bench, controller, &round_robin, None)?,
        default: calls_in(bench, controller, &default, None)?,
        local: calls_in(bench, controller, &local, None)?,
    })
}

fn compared_row(scenario: Scenario, fleet: &RoutingFleet, compared: &Compared) -> Row {
    let slow_id = &fleet.ids[SLOW];
    let (rr, chosen, local) = (
        &compared.round_robin.load,
        &compared.default.load,
        &compared.local.load,
    );
    let ratio = |a: f64, b: f64| a / b.max(1e-9);
    Row {
        workers: Some(fleet.ids.len() as u64),
        round_robin_p50_ms: Some(rr.percentile_ms(0.50)),
        round_robin_p99_ms: Some(rr.percentile_ms(0.99)),
        round_robin_throughput: Some(rr.throughput()),
        p50_ratio_to_round_robin: Some(ratio(chosen.percentile_ms(0.50), rr.percentile_ms(0.50))),
        p99_ratio_to_round_robin: Some(ratio(chosen.percentile_ms(0.99), rr.percentile_ms(0.99))),
        throughput_ratio_to_round_robin: Some(ratio(chosen.throughput(), rr.throughput())),
        local_p50_ratio_to_round_robin: Some(ratio(
            local.percentile_ms(0.50),
            rr.percentile_ms(0.50),
        )),
        local_p99_ratio_to_round_robin: Some(ratio(
            local.percentile_ms(0.99),
            rr.percentile_ms(0.99),
        )),
        local_throughput_ratio_to_round_robin: Some(ratio(local.throughput(), rr.throughput())),
        slow_worker_share: Some(compared.default.share_of(slow_id, Duration::ZERO)),
        slow_worker_share_round_robin: Some(compared.round_robin.share_of(slow_id, Duration::ZERO)),
        slow_worker_share_local: Some(compared.local.share_of(slow_id, Duration::ZERO)),
        failed_attempts: Some(
            compared.round_robin.failed_attempts()
                + compared.default.failed_attempts()
                + compared.local.failed_attempts(),
        ),
        ..row(scenario, chosen, &fleet.controller, None)
    }
}

/// Four workers of the same capacity, one slow.
pub fn equal_capacity(bench: &Bench) -> Result<Row> {
    let fleet = start_fleet_of(bench, &EQUAL)?;
    let compared = compare(bench, &fleet, EQUAL_CALLERS)?;
    Ok(compared_row(Scenario::EqualCapacity, &fleet, &compared))
}

/// Four workers of the same small capacity, one slow, more callers than
/// the fast ones take.
pub fn saturated(bench: &Bench) -> Result<Row> {
    let fleet = start_fleet_of(bench, &SATURATED)?;
    let compared = compare(bench, &fleet, SATURATED_CALLERS)?;
    Ok(compared_row(Scenario::Saturated, &fleet, &compared))
}

/// Controller CPU per call of a phase, in microseconds.
fn cpu_us_per_call(cpu_s: Option<f64>, calls: &Calls) -> Option<f64> {
    cpu_s.map(|cpu| cpu * 1e6 / calls.load.requests.max(1) as f64)
}

/// Four fast workers: through the controller, then in local mode.
pub fn local_mode(bench: &Bench) -> Result<Row> {
    let fleet = start_fleet_of(bench, &FAST)?;
    let duration = bench.flags.duration;
    let callers = super::routing::CALLERS;
    let routed = phase(None, Balance::Controller, callers, duration);
    let local = phase(None, Balance::Local, callers, duration);
    let controller = &fleet.controller;
    let ((routed, routed_cpu), routed_handshakes) = handshaking(bench, &fleet.workers, || {
        measured(controller, || calls_in(bench, controller, &routed, None))
    })?;
    let ((local, local_cpu), local_handshakes) = handshaking(bench, &fleet.workers, || {
        measured(controller, || calls_in(bench, controller, &local, None))
    })?;
    Ok(Row {
        workers: Some(fleet.ids.len() as u64),
        controller_mode_throughput: Some(routed.load.throughput()),
        local_throughput_ratio_to_controller: Some(
            local.load.throughput() / routed.load.throughput().max(1e-9),
        ),
        controller_cpu_us_per_call: cpu_us_per_call(routed_cpu, &routed),
        controller_cpu_us_per_call_local: cpu_us_per_call(local_cpu, &local),
        worker_handshakes_per_call: Some(per_call(routed_handshakes, &routed)),
        worker_handshakes_per_call_local: Some(per_call(local_handshakes, &local)),
        failed_attempts: Some(routed.failed_attempts() + local.failed_attempts()),
        ..row(Scenario::LocalMode, &local.load, controller, local_cpu)
    })
}

/// What `run` returns, and the TLS handshakes `workers` completed meanwhile,
/// less the count scrapes' own (one new connection each).
fn handshaking<T>(
    bench: &Bench,
    workers: &[Target],
    run: impl FnOnce() -> Result<T>,
) -> Result<(T, u64)> {
    let count = || -> Result<u64> { workers.iter().map(|worker| bench.handshakes(worker)).sum() };
    let before = count()?;
    let result = run()?;
    let after = count()?;
    let scrapes = workers.len() as u64;
    Ok((result, after.saturating_sub(before + scrapes)))
}

fn per_call(count: u64, calls: &Calls) -> f64 {
    count as f64 / calls.load.requests.max(1) as f64
}

/// How long local-mode callers call before the controller is killed.
const BEFORE_OUTAGE: Duration = Duration::from_secs(2);

/// Local-mode callers; the controller SIGKILLed after [`BEFORE_OUTAGE`] and
/// left down for `--outage`.
pub fn controller_outage(bench: &Bench) -> Result<Row> {
    let fleet = start_fleet_of(bench, &EQUAL)?;
    let outage = bench.flags.outage;
    let local = phase(None, Balance::Local, EQUAL_CALLERS, BEFORE_OUTAGE + outage);
    let controller = &fleet.controller;
    let started = Instant::now();
    let killed_at = Cell::new(None);
    let rss_mb = Cell::new(None);
    let fault = async {
        actix_rt::time::sleep(BEFORE_OUTAGE).await;
        killed_at.set(Some(started.elapsed()));
        rss_mb.set(controller.peak_rss_mb());
        if let Err(error) = controller.kill() {
            log::warn!("could not kill the controller: {error:#}");
        }
    };
    let calls = calls_in(bench, controller, &local, Some(fault.boxed_local()))?;
    let killed = killed_at.get().unwrap_or(BEFORE_OUTAGE);
    let during = calls.attempts.iter().filter(|a| a.at >= killed);
    Ok(Row {
        workers: Some(fleet.ids.len() as u64),
        outage_s: Some(outage.as_secs_f64()),
        calls_during_outage: Some(during.clone().count() as u64),
        failed_calls_during_outage: Some(calls.load.errors),
        failed_attempts: Some(during.filter(|a| !a.succeeded).count() as u64),
        controller_rss_mb: rss_mb.get(),
        ..row(Scenario::ControllerOutage, &calls.load, controller, None)
    })
}
