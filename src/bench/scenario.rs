//! Each [`Scenario`]: which processes it starts, what it registers first, which
//! load it measures, and the [`Row`] it makes of that.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use crank_proto::wire::Stats;

use super::calls::{
    heartbeat_calls, latency_report_calls, loaded_heartbeat_calls, mixed_calls, registration,
    route_calls, route_calls_with,
};
use super::flags::Scenario;
use super::load::{Call, Load, MakeCall, Until};
use super::row::Row;
use super::target::{free_port, Bench, Target};

/// Runs `scenario` once. Its row has the columns and the scenario's details;
/// the comparisons with the round's baseline are the caller's to add.
pub fn run_scenario(bench: &Bench, scenario: Scenario) -> Result<Row> {
    let flags = &bench.flags;
    let until = Until::Elapsed(flags.duration);
    match scenario {
        Scenario::Baseline => {
            let target = bench.baseline_endpoint()?;
            let (load, cpu) = measured(&target, || {
                Ok(bench.load(&target, until, heartbeat_calls("bench", flags.workers)))
            })?;
            Ok(row(scenario, &load, &target, cpu))
        }
        Scenario::Heartbeat | Scenario::Route | Scenario::Mixed => {
            let target = bench.controller()?;
            register_workers(
                bench,
                &target,
                "bench",
                (0, flags.workers),
                (1, flags.capabilities),
            )?;
            let make = match scenario {
                Scenario::Heartbeat => heartbeat_calls("bench", flags.workers),
                Scenario::Route => route_calls(flags.capabilities),
                _ => mixed_calls(flags.workers, flags.capabilities),
            };
            let (load, cpu) = measured(&target, || Ok(bench.load(&target, until, make)))?;
            let round_robin = match scenario {
                Scenario::Route => Some(strategy_cost(bench, &target)?),
                _ => None,
            };
            Ok(Row {
                workers: Some(flags.workers as u64),
                route_throughput_round_robin: round_robin.as_ref().map(|c| c.round_robin.0),
                route_ratio_to_round_robin: round_robin
                    .as_ref()
                    .map(|c| c.default.0 / c.round_robin.0.max(1e-9)),
                route_cpu_us_default: round_robin.as_ref().and_then(|c| c.default.1),
                route_cpu_us_round_robin: round_robin.as_ref().and_then(|c| c.round_robin.1),
                ..row(scenario, &load, &target, cpu)
            })
        }
        Scenario::RegisterStorm => register_storm(bench),
        Scenario::Scale => scale(bench),
        Scenario::IdleWorker => idle_worker(bench),
        Scenario::Cluster => super::cluster::cluster(bench),
        Scenario::MetricsScrape => super::observe::metrics_scrape(bench),
        Scenario::Watch => super::observe::watch(bench),
        Scenario::Heterogeneous => super::routing::heterogeneous(bench),
        Scenario::FailingWorker => super::routing::failing_worker(bench),
        Scenario::Restart => super::restart::restart(bench),
        Scenario::EqualCapacity => super::balancing::equal_capacity(bench),
        Scenario::Saturated => super::balancing::saturated(bench),
        Scenario::LocalMode => super::balancing::local_mode(bench),
        Scenario::ControllerOutage => super::balancing::controller_outage(bench),
        Scenario::RollingRestart => super::rolling::rolling_restart(bench),
        Scenario::RollingRestartCluster => super::rolling::rolling_restart_cluster(bench),
        Scenario::PolicyCost => super::protection::policy_cost(bench),
        Scenario::Fairness => super::protection::fairness(bench),
        Scenario::Shedding => super::protection::shedding(bench),
    }
}

/// Throughput, and the controller's CPU per route in microseconds, of the
/// default strategy and of round-robin.
struct StrategyCost {
    default: (f64, Option<f64>),
    round_robin: (f64, Option<f64>),
}

/// Route throughput with the default strategy and with `round_robin`, the
/// same routes, for the same time (`--duration` each), once every worker has
/// reported a load (so that the default strategy compares two providers'
/// loads and expected waits, as it does in a fleet of real workers whose
/// callers report): in four alternating halves,
/// default, round-robin, round-robin, default, so that a machine whose speed
/// drifts during the run weighs on both alike.
fn strategy_cost(bench: &Bench, target: &Target) -> Result<StrategyCost> {
    let flags = &bench.flags;
    let reports = Until::Requests(flags.workers as u64);
    let reported = bench.load(
        target,
        reports,
        loaded_heartbeat_calls("bench", flags.workers),
    );
    if let Some(e) = reported.first_error {
        bail!("reporting the workers' loads: {e}");
    }
    let latencies = bench.load(
        target,
        reports,
        latency_report_calls("bench", flags.workers),
    );
    if let Some(e) = latencies.first_error {
        bail!("reporting the workers' latencies: {e}");
    }
    let half = Until::Elapsed(flags.duration / 2);
    // (routes, seconds, controller CPU seconds) of one half.
    let phase = |strategy: Option<&str>| -> Result<(f64, f64, Option<f64>)> {
        let make = route_calls_with(flags.capabilities, strategy);
        let (load, cpu) = measured(target, || Ok(bench.load(target, half, make)))?;
        Ok((load.requests as f64, load.elapsed.as_secs_f64(), cpu))
    };
    let (d1, r1) = (phase(None)?, phase(Some("round_robin"))?);
    let (r2, d2) = (phase(Some("round_robin"))?, phase(None)?);
    let both = |(a, ta, ca): (f64, f64, Option<f64>), (b, tb, cb): (f64, f64, Option<f64>)| {
        let routes = (a + b).max(1.0);
        let cpu_us = ca.zip(cb).map(|(ca, cb)| (ca + cb) * 1e6 / routes);
        (routes / (ta + tb).max(1e-9), cpu_us)
    };
    Ok(StrategyCost {
        default: both(d1, d2),
        round_robin: both(r1, r2),
    })
}

/// The columns of `scenario`'s row: `load`'s figures and what `target` used.
pub fn row(scenario: Scenario, load: &Load, target: &Target, cpu_s: Option<f64>) -> Row {
    Row {
        scenario: scenario.name().to_owned(),
        requests: load.requests,
        errors: load.errors,
        throughput: load.throughput(),
        p50_ms: load.percentile_ms(0.50),
        p99_ms: load.percentile_ms(0.99),
        p999_ms: load.percentile_ms(0.999),
        controller_cpu_s: cpu_s,
        controller_rss_mb: target.peak_rss_mb(),
        first_error: load.first_error.clone(),
        ..Row::default()
    }
}

/// `run`'s value, and the CPU time `target` used meanwhile.
pub fn measured<T>(target: &Target, run: impl FnOnce() -> Result<T>) -> Result<(T, Option<f64>)> {
    let before = target.cpu_seconds();
    let value = run()?;
    let cpu = target
        .cpu_seconds()
        .zip(before)
        .map(|(after, before)| after - before);
    Ok((value, cpu))
}

/// TLS handshakes a server completed, as it counted them itself.
#[derive(Debug, Clone, Copy)]
struct Handshakes {
    completed: u64,
    /// Of those, the ones that resumed a session.
    resumed: u64,
}

/// `run`'s value, the handshakes `target` completed meanwhile (none if it does
/// not count them), and its [`Stats`] after.
fn counting_handshakes<T>(
    bench: &Bench,
    target: &Target,
    run: impl FnOnce() -> Result<T>,
) -> Result<(T, Option<Handshakes>, Stats)> {
    let before = bench.stats(target)?;
    let value = run()?;
    let after = bench.stats(target)?;
    let counted = match (
        before.tls_handshakes,
        before.tls_resumed,
        after.tls_handshakes,
        after.tls_resumed,
    ) {
        (Some(completed), Some(resumed), Some(now_completed), Some(now_resumed)) => {
            Some(Handshakes {
                // The second `GET /stats` came on a new connection, with a
                // full handshake its own answer counts.
                completed: now_completed.saturating_sub(completed + 1),
                resumed: now_resumed.saturating_sub(resumed),
            })
        }
        _ => None,
    };
    Ok((value, counted, after))
}

/// The bare endpoint under `requests` requests, each on a new connection
/// with a full handshake: what it took, the CPU it used, and the handshakes it
/// counted.
struct TransportPhase {
    requests: u64,
    elapsed: Duration,
    cpu_s: Option<f64>,
    handshakes: Option<u64>,
}

fn transport_phase(bench: &Bench, endpoint: &Target, requests: u64) -> Result<TransportPhase> {
    let make = heartbeat_calls("storm", bench.flags.workers);
    let ((load, cpu_s), handshakes, _) = counting_handshakes(bench, endpoint, || {
        measured(endpoint, || {
            Ok(bench.fresh_load(endpoint, Until::Requests(requests), make))
        })
    })?;
    if let Some(e) = &load.first_error {
        bail!(
            "the bare endpoint failed {} of {} requests on new connections, first: {e}",
            load.errors,
            load.requests
        );
    }
    Ok(TransportPhase {
        requests: load.requests,
        elapsed: load.elapsed,
        cpu_s,
        handshakes: handshakes.map(|h| h.completed),
    })
}

/// 10,000 workers registering at once, as after a controller restart: their
/// keep-alive connections died with the old process, so each registration
/// comes on a new connection with a full TLS handshake. The controller counts
/// the handshakes it completed, so the row shows what was paid, not what was
/// meant. The transport's own handshake rate comes from as many requests on new
/// connections to the bare `baseline` endpoint, half just before the storm and
/// half just after, so a machine whose load drifts (other processes, thermal
/// limits) weighs on both sides alike.
fn register_storm(bench: &Bench) -> Result<Row> {
    let workers = bench.flags.workers as u64;
    let per_registration = |total: f64| total / workers.max(1) as f64;

    let endpoint = bench.baseline_endpoint()?;
    let before = transport_phase(bench, &endpoint, workers / 2)?;

    let target = bench.controller()?;
    let make: MakeCall = Arc::new(move |n| {
        Call::Post(
            "/register".into(),
            registration(&format!("storm-{n}"), &[0]),
        )
    });
    let until = Until::Requests(workers);
    let ((load, cpu), handshakes, stats) = counting_handshakes(bench, &target, || {
        measured(&target, || Ok(bench.fresh_load(&target, until, make)))
    })?;

    let after = transport_phase(bench, &endpoint, workers - workers / 2)?;
    drop(endpoint);
    let transport_requests = (before.requests + after.requests).max(1) as f64;
    let transport_rate =
        transport_requests / (before.elapsed + after.elapsed).as_secs_f64().max(1e-9);
    let transport_cpu = before.cpu_s.zip(after.cpu_s).map(|(b, a)| b + a);
    let transport_handshakes = before.handshakes.zip(after.handshakes).map(|(b, a)| b + a);
    Ok(Row {
        workers: Some(workers),
        registered: Some(stats.workers as u64),
        time_to_register_all_s: Some(load.elapsed.as_secs_f64()),
        handshakes_per_registration: handshakes.map(|h| per_registration(h.completed as f64)),
        resumed_handshakes: handshakes.map(|h| h.resumed),
        controller_cpu_us_per_registration: cpu.map(|s| per_registration(s * 1e6)),
        transport_handshakes_per_s: Some(transport_rate),
        transport_handshakes_per_request: transport_handshakes
            .map(|h| h as f64 / transport_requests),
        transport_cpu_us_per_request: transport_cpu.map(|s| s * 1e6 / transport_requests),
        ratio_to_transport_handshakes: Some(load.throughput() / transport_rate),
        ..row(Scenario::RegisterStorm, &load, &target, cpu)
    })
}

/// Registers workers `from..to` (ids `prefix-N`), each with `per_worker`
/// capabilities out of `capabilities`.
pub fn register_workers(
    bench: &Bench,
    target: &Target,
    prefix: &str,
    (from, to): (usize, usize),
    (per_worker, capabilities): (usize, usize),
) -> Result<()> {
    let owned = prefix.to_owned();
    let capabilities = capabilities.max(1);
    let per_worker = per_worker.min(capabilities);
    let make: MakeCall = Arc::new(move |n| {
        let prefix = &owned;
        let i = from + n as usize;
        let caps: Vec<usize> = (0..per_worker).map(|k| (i + k) % capabilities).collect();
        Call::Post(
            "/register".into(),
            registration(&format!("{prefix}-{i}"), &caps),
        )
    });
    let load = bench.load(target, Until::Requests((to - from) as u64), make);
    match load.first_error {
        Some(e) => bail!(
            "registering {prefix}-{from}..{to}: {} errors, first: {e}",
            load.errors
        ),
        None => Ok(()),
    }
}

/// Waits for the sweeper to run at least once more, and returns the stats after it.
pub fn after_next_sweep(bench: &Bench, target: &Target) -> Result<Stats> {
    let before = bench.stats(target)?.sweeps;
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let stats = bench.stats(target)?;
        if stats.sweeps > before {
            return Ok(stats);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    bail!("the controller did not sweep within 30 s")
}

fn scale(bench: &Bench) -> Result<Row> {
    let flags = &bench.flags;
    let target = bench.controller()?;
    let small = 1_000.min(flags.scale_workers);
    let until = Until::Elapsed(flags.duration);
    let capabilities = flags.capabilities.max(2);
    register_workers(bench, &target, "scale", (0, small), (2, capabilities))?;
    let at_small = bench.load(&target, until, route_calls(capabilities));
    let (_, cpu) = measured(&target, || {
        register_workers(
            bench,
            &target,
            "scale",
            (small, flags.scale_workers),
            (2, capabilities),
        )
    })?;
    let stats = after_next_sweep(bench, &target)?;
    let (at_scale, route_cpu) = measured(&target, || {
        Ok(bench.load(&target, until, route_calls(capabilities)))
    })?;
    // Heartbeats while sweeps run: the longest wait is the worst stall.
    let beats = bench.load(
        &target,
        until,
        heartbeat_calls("scale", flags.scale_workers),
    );
    let stats_after = bench.stats(&target)?;
    let (p99_small, p99_scale) = (at_small.percentile_ms(0.99), at_scale.percentile_ms(0.99));
    Ok(Row {
        workers: Some(stats.workers as u64),
        sweep_ms: Some(stats.last_sweep_ms),
        max_sweep_ms: Some(stats_after.max_sweep_ms),
        route_p99_ms_at_1000: Some(p99_small),
        route_p99_ms_at_scale: Some(p99_scale),
        route_p99_ratio: Some(p99_scale / p99_small.max(1e-9)),
        heartbeat_max_ms_at_scale: Some(beats.percentile_ms(1.0)),
        heartbeat_throughput_at_scale: Some(beats.throughput()),
        registration_cpu_s: cpu,
        ..row(Scenario::Scale, &at_scale, &target, route_cpu)
    })
}

fn idle_worker(bench: &Bench) -> Result<Row> {
    // Two idle workers side by side: one standalone, one heartbeating every 6 s
    // (longer than nothing, shorter than the default so the window sees several
    // beats). The difference in CPU is what the registration and heartbeat
    // loop costs; the rest (actix's timers) an idle worker pays anyway.
    const INTERVAL_S: f64 = 6.0;
    let controller = bench.controller()?;
    let controller_ip_url = controller.url.replace("://localhost:", "://127.0.0.1:");
    let cert_dir = bench.cert_dir.to_string_lossy().into_owned();
    let (port, alone_port) = (free_port()?, free_port()?);
    // Both serve with hello-world-1's certificate.
    let registered = bench.start_worker(
        &controller,
        "worker",
        &[
            "worker",
            "--port",
            &port.to_string(),
            "--cert-dir",
            &cert_dir,
            "--controller-url",
            &controller_ip_url,
            "--heartbeat-interval",
            "6s",
        ],
        port,
        "hello-world-1",
    )?;
    let standalone = bench.start_worker(
        &controller,
        "standalone-worker",
        &[
            "worker",
            "--port",
            &alone_port.to_string(),
            "--cert-dir",
            &cert_dir,
            "--worker-id",
            "standalone",
            "--cert",
            "hello-world-1",
        ],
        alone_port,
        "hello-world-1",
    )?;
    // Past start-up, then a fixed window: a measurement, not a wait for an event.
    std::thread::sleep(Duration::from_secs(1));
    let cpu = |target: &Target| {
        target
            .cpu_seconds()
            .context("cannot read a worker's CPU time")
    };
    let (before, alone_before) = (cpu(&registered)?, cpu(&standalone)?);
    let controller_before = controller.cpu_seconds();
    let window = bench.flags.duration * 3;
    std::thread::sleep(window);
    let used = cpu(&registered)? - before;
    let alone = cpu(&standalone)? - alone_before;
    let beats = window.as_secs_f64() / INTERVAL_S;
    let per_beat_ms = ((used - alone) * 1000.0 / beats).max(0.0);
    let per_minute = |seconds: f64| seconds * 1000.0 * 60.0 / window.as_secs_f64();
    Ok(Row {
        controller_cpu_s: controller
            .cpu_seconds()
            .zip(controller_before)
            .map(|(after, before)| after - before),
        window_s: Some(window.as_secs_f64()),
        heartbeat_interval_s: Some(INTERVAL_S),
        worker_rss_mb: registered.rss_mb(),
        worker_peak_rss_mb: registered.peak_rss_mb(),
        worker_cpu_ms_per_minute: Some(per_minute(used)),
        standalone_worker_cpu_ms_per_minute: Some(per_minute(alone)),
        heartbeat_cpu_ms_per_beat: Some(per_beat_ms),
        heartbeat_loop_cpu_ms_per_minute_at_30s: Some(per_beat_ms * 2.0),
        ..row(Scenario::IdleWorker, &Load::default(), &controller, None)
    })
}
