//! `restart`: the durable store's costs and its point. In one run: a
//! registration storm against the memory store and against the file store
//! (`--fsync batch`), with the fsyncs it paid per registration as the
//! controller counted them; heartbeats against both, with the bytes the file
//! store's process wrote to disk per heartbeat (`/proc/<pid>/io`); then a
//! SIGKILL of the file-store controller and a restart on the same directory:
//! the time until its first `/workers` answer lists every worker, and how many
//! of the routes and heartbeats after it were answered 404.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use crank_proto::wire::WorkerList;

use super::calls::{heartbeat_calls, registration, route_calls};
use super::flags::Scenario;
use super::load::{client, Call, MakeCall, Until};
use super::row::Row;
use super::scenario::{measured, row};
use super::target::{sample, Bench, Target};
use crate::error::flat;

fn storm(prefix: &'static str) -> MakeCall {
    Arc::new(move |n| {
        Call::Post(
            "/register".into(),
            registration(&format!("{prefix}-{n}"), &[0]),
        )
    })
}

/// A figure of the controller's `/metrics`, 0 when absent.
fn metric(bench: &Bench, target: &Target, name: &str) -> Result<f64> {
    Ok(sample(&bench.metrics(target)?, name).unwrap_or(0.0))
}

fn workers_listed(bench: &Bench, target: &Target) -> Result<usize> {
    let url = format!("{}/workers", target.url);
    let tls = target.tls.clone();
    bench.block_on(async move {
        let mut response = client(tls, 1).get(&url).send().await.map_err(flat)?;
        let list: WorkerList = response.json().limit(256 << 20).await.map_err(flat)?;
        anyhow::Ok(list.workers.len())
    })
}

pub fn restart(bench: &Bench) -> Result<Row> {
    let workers = bench.flags.workers.max(1);
    let n = workers as u64;
    let data = tempfile::tempdir().context("cannot make a data directory")?;
    let dir = data
        .path()
        .join("controller")
        .to_string_lossy()
        .into_owned();

    let memory = bench.controller_with(&["--store", "memory"])?;
    let memory_storm = bench.fresh_load(&memory, Until::Requests(n), storm("m"));
    let memory_beats = bench.load(
        &memory,
        Until::Elapsed(bench.flags.duration),
        heartbeat_calls("m", workers),
    );
    drop(memory);

    let file_args = [
        "--store",
        "file",
        "--fsync",
        "batch",
        "--data-dir",
        dir.as_str(),
    ];
    let mut target = bench.controller_with(&file_args)?;
    let (file_storm, cpu) = measured(&target, || {
        Ok(bench.fresh_load(&target, Until::Requests(n), storm("w")))
    })?;
    // Every change is written before the kill: pending drains in milliseconds.
    let deadline = Instant::now() + std::time::Duration::from_secs(30);
    while metric(bench, &target, "crank_store_pending_writes")? > 0.0 {
        if Instant::now() > deadline {
            bail!("the store did not drain its pending writes within 30 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let fsyncs = metric(bench, &target, "crank_store_fsyncs_total")?;
    let disk_bytes = metric(bench, &target, "crank_store_bytes")?;
    let written_before = target.written_bytes();
    let file_beats = bench.load(
        &target,
        Until::Elapsed(bench.flags.duration),
        heartbeat_calls("w", workers),
    );
    let written_after = target.written_bytes();
    let bytes_per_beat = written_before
        .zip(written_after)
        .map(|(b, a)| a.saturating_sub(b) as f64 / file_beats.requests.max(1) as f64);

    let port: u16 = target
        .url
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .context("the controller's URL names no port")?;
    target.crash(bench)?;
    drop(target);
    let started = Instant::now();
    let port_arg = port.to_string();
    let cert_dir = bench.cert_dir().to_string_lossy().into_owned();
    let mut args = vec!["controller", "--port", &port_arg, "--cert-dir", &cert_dir];
    args.extend_from_slice(&file_args);
    let restarted = bench.start("controller-restarted", &args, port)?;
    let listed = workers_listed(bench, &restarted)?;
    let to_first_answer = started.elapsed();
    let routes = bench.load(&restarted, Until::Requests(n.min(1000)), route_calls(1));
    let beats = bench.load(
        &restarted,
        Until::Requests(n),
        heartbeat_calls("w", workers),
    );
    Ok(Row {
        workers: Some(n),
        registered: Some(listed as u64),
        restart_to_full_answer_s: Some(to_first_answer.as_secs_f64()),
        routes_404_after_restart: Some(routes.errors),
        heartbeats_404_after_restart: Some(beats.errors),
        register_ratio_file_to_memory: Some(
            file_storm.throughput() / memory_storm.throughput().max(1e-9),
        ),
        fsyncs_per_registration: Some(fsyncs / n as f64),
        heartbeat_ratio_file_to_memory: Some(
            file_beats.throughput() / memory_beats.throughput().max(1e-9),
        ),
        disk_bytes_per_heartbeat: bytes_per_beat,
        disk_bytes_per_worker: Some(disk_bytes / n as f64),
        ..row(Scenario::Restart, &file_storm, &restarted, cpu)
    })
}
