//! The scenarios that observe the fleet: `metrics-scrape` (how long a scrape
//! takes, and holds the registry, at full size) and `watch` (every watcher sees
//! every change of a register storm, in order; heartbeats with and without
//! them).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::calls::{heartbeat_calls, registration};
use super::flags::Scenario;
use super::load::{client, Call, Load, MakeCall, Until};
use super::row::Row;
use super::scenario::{after_next_sweep, measured, register_workers, row};
use super::target::{Bench, Target};
use super::watchers::Watchers;
use crate::error::flat;

/// One scrape: its latency, its size, and how long it held the registry.
struct Scrape {
    took: Duration,
    bytes: usize,
    hold: Duration,
}

fn scrape(bench: &Bench, target: &Target, http: &awc::Client) -> Result<Scrape> {
    let url = format!("{}/metrics", target.url);
    bench.block_on(async {
        let started = Instant::now();
        let mut response = http.get(&url).send().await.map_err(flat)?;
        let body = response.body().limit(64 << 20).await.map_err(flat)?;
        let took = started.elapsed();
        if !response.status().is_success() {
            bail!("GET {url}: HTTP {}", response.status());
        }
        let text = String::from_utf8_lossy(&body);
        let hold = text
            .lines()
            .find_map(|l| l.strip_prefix("crank_scrape_registry_hold_seconds "))
            .and_then(|v| v.parse::<f64>().ok())
            .context("no crank_scrape_registry_hold_seconds in the scrape")?;
        Ok(Scrape {
            took,
            bytes: body.len(),
            hold: Duration::from_secs_f64(hold),
        })
    })
}

pub fn metrics_scrape(bench: &Bench) -> Result<Row> {
    let flags = &bench.flags;
    let target = bench.controller()?;
    let capabilities = flags.capabilities.max(2);
    register_workers(
        bench,
        &target,
        "scale",
        (0, flags.scale_workers),
        (2, capabilities),
    )?;
    let stats = after_next_sweep(bench, &target)?;
    let http = bench.block_on(async { client(target.tls.clone(), 1) });
    let mut load = Load::default();
    let (mut hold, mut bytes) = (Duration::ZERO, 0);
    let started = Instant::now();
    let (_, cpu) = measured(&target, || {
        for _ in 0..flags.scrapes.max(1) {
            let one = scrape(bench, &target, &http)?;
            load.requests += 1;
            load.latencies_us.push(one.took.as_micros() as u32);
            hold = hold.max(one.hold);
            bytes = one.bytes;
        }
        Ok(())
    })?;
    load.elapsed = started.elapsed();
    load.latencies_us.sort_unstable();
    let mut row = row(Scenario::MetricsScrape, &load, &target, cpu);
    row.workers = Some(stats.workers as u64);
    row.scrapes = Some(load.requests);
    row.scrape_p50_ms = Some(load.percentile_ms(0.5));
    row.scrape_p99_ms = Some(load.percentile_ms(0.99));
    row.scrape_max_ms = Some(load.percentile_ms(1.0));
    row.scrape_hold_max_ms = Some(hold.as_secs_f64() * 1000.0);
    row.scrape_bytes = Some(bytes as u64);
    Ok(row)
}

pub fn watch(bench: &Bench) -> Result<Row> {
    let flags = &bench.flags;
    // Every watcher is the bench's one identity: lift the per-identity cap.
    let target = bench.controller_with(&["--max-connections-per-identity", "0"])?;
    let until = Until::Elapsed(flags.duration);
    register_workers(
        bench,
        &target,
        "bench",
        (0, flags.workers),
        (1, flags.capabilities),
    )?;
    let without = bench.load(&target, until, heartbeat_calls("bench", flags.workers));

    let expected = flags.workers as u64;
    let watchers = Watchers::start(&target.url, target.tls.clone(), flags.watchers, expected);
    if !watchers.connected_within(Duration::from_secs(60)) {
        bail!("the watchers did not all connect within 60 s");
    }
    let started = Instant::now();
    let make: MakeCall = Arc::new(|n| {
        Call::Post(
            "/register".into(),
            registration(&format!("storm-{n}"), &[0]),
        )
    });
    let (storm, cpu) = measured(&target, || {
        Ok(bench.load(&target, Until::Requests(expected), make))
    })?;
    let settled = watchers.settled_within(Duration::from_secs(300));
    let delivery = started.elapsed();
    let with = bench.load(&target, until, heartbeat_calls("bench", flags.workers));
    let tally = &watchers.tally;
    let get = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    let mut row = row(Scenario::Watch, &storm, &target, cpu);
    row.workers = Some(expected);
    row.watchers = Some(flags.watchers as u64);
    row.watch_events_expected = Some(expected);
    row.watchers_complete = Some(get(&tally.complete));
    row.watch_out_of_order = Some(get(&tally.out_of_order));
    row.watch_resyncs = Some(get(&tally.resyncs));
    row.watch_delivery_s = settled.then_some(delivery.as_secs_f64());
    row.heartbeat_throughput_without_watchers = Some(without.throughput());
    row.heartbeat_throughput_with_watchers = Some(with.throughput());
    row.heartbeat_ratio_with_watchers = Some(with.throughput() / without.throughput().max(1e-9));
    if get(&tally.failed) > 0 && row.first_error.is_none() {
        row.first_error = Some(format!("{} watchers failed", get(&tally.failed)));
    }
    Ok(row)
}
