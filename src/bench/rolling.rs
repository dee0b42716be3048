//! `rolling-restart`: real calls through the client library while every
//! worker of the fleet is replaced, one after another, as a deployment does
//! it: the new process up and routable, then the old one `SIGTERM`ed. Once
//! with the graceful drain (the default `--drain-timeout`), once with
//! `--drain-timeout 0` (deregister at once, the old behaviour), on fresh
//! fleets of the same shape.

use std::cell::{Cell, RefCell};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use crank_client::{Balance, CrankClient};
use crank_net::tls::TlsFiles;
use crank_proto::wire::WorkerStatus;
use futures_util::FutureExt;

use super::flags::Scenario;
use super::routing::{
    calls_in, issue_service_certificate, start_worker, worker_id, Calls, Phase, Profile, WorkerSpec,
};
use super::row::Row;
use super::scenario::row;
use super::target::{Bench, Target};
use crate::error::flat;

/// Workers of the fleet, all alike: a restart must not be shaped so that
/// routing away from one worker hides it. Room for every caller even while
/// one drains, so that refusals at capacity (load, not the restart) do not
/// blur what the restart costs.
const FLEET: [Profile; 4] = [("5ms", "32"); 4];
/// Callers: about half of the fleet's capacity.
const CALLERS: usize = 32;
/// How long a stopping worker may take before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(40);
/// How long a replacement has to show up healthy at the controller.
const ROUTABLE_DEADLINE: Duration = Duration::from_secs(20);

/// What one rolling restart saw.
struct Rolled {
    calls: Calls,
    restarts: u64,
    /// Seconds from the first replacement started to the last old worker gone.
    restart_s: f64,
}

/// Waits until the controller(s) at `controller_url` show `id` healthy.
async fn routable(client: &CrankClient, id: &str) -> Result<()> {
    let deadline = Instant::now() + ROUTABLE_DEADLINE;
    loop {
        if let Ok(list) = client.workers().await {
            let healthy = list
                .workers
                .iter()
                .any(|w| w.worker_id == id && w.status == WorkerStatus::Healthy);
            if healthy {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            bail!("replacement {id} was not routable within {ROUTABLE_DEADLINE:?}");
        }
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A fleet of [`FLEET`] registering with `controllers` (one URL or a
/// comma-separated list), started with worker flags `extra`; callers route
/// through `controller` for the phase's duration while, from a fifth of it
/// on, each worker is replaced by a new one (the next id) and then stopped.
fn roll(
    bench: &Bench,
    controller: &Target,
    controllers: &str,
    extra: &[&str],
    fresh: bool,
) -> Result<Rolled> {
    let spec = |index| WorkerSpec {
        index,
        profile: FLEET[index % FLEET.len()],
        controller_url: controllers,
        extra,
    };
    let mut workers = Vec::new();
    for index in 0..FLEET.len() {
        workers.push(bench.block_on(start_worker(bench, &spec(index)))?);
    }
    let admin = CrankClient::new(&controller.url, TlsFiles::in_dir(&bench.cert_dir, "admin"))
        .map_err(flat)?;
    for index in 0..FLEET.len() {
        bench.block_on(routable(&admin, &worker_id(index)))?;
    }
    // Calls for a fifth of the phase, then the replacements, then a fifth
    // again: however long the replacements take on a loaded machine, every
    // one of them runs under calls, up to four phases in all.
    let head = bench.flags.duration.max(Duration::from_secs(5)) / 5;
    let duration = head * 20;
    let phase = Phase {
        strategy: None,
        reports: true,
        balance: Balance::Controller,
        callers: CALLERS,
        duration,
        ends: Default::default(),
        fresh,
    };
    let ends = phase.ends.clone();
    let restarts = Cell::new(0);
    let span = Cell::new(0.0);
    let failure = Cell::new(None);
    // The new fleet lives to the end of the phase.
    let replacements = RefCell::new(Vec::new());
    let rolling = async {
        actix_rt::time::sleep(head).await;
        let started = Instant::now();
        for (index, old) in workers.iter_mut().enumerate() {
            let new = match start_worker(bench, &spec(FLEET.len() + index)).await {
                Ok(new) => new,
                Err(error) => return failure.set(Some(error)),
            };
            if let Err(error) = routable(&admin, &worker_id(FLEET.len() + index)).await {
                return failure.set(Some(error));
            }
            replacements.borrow_mut().push(new);
            if let Err(error) = old.terminate(STOP_GRACE).await {
                return failure.set(Some(error));
            }
            restarts.set(restarts.get() + 1);
        }
        span.set(started.elapsed().as_secs_f64());
        ends.set(Some(Instant::now() + head));
    };
    let calls = calls_in(bench, controller, &phase, Some(rolling.boxed_local()))?;
    drop(replacements);
    if let Some(error) = failure.take() {
        return Err(error);
    }
    // Restarts after the callers stopped ran without calls: refused, not hidden.
    if head + Duration::from_secs_f64(span.get()) > duration {
        bail!(
            "replacing the workers took {:.1} s, past the {duration:?} the calls may last: the last ran without calls; give a longer --duration",
            span.get()
        );
    }
    Ok(Rolled {
        calls,
        restarts: restarts.get(),
        restart_s: span.get(),
    })
}

/// The rolling restart with drain (the row's columns) and without, for
/// callers that keep their connections and for callers on new ones.
pub fn rolling_restart(bench: &Bench) -> Result<Row> {
    issue_service_certificate(&bench.cert_dir)?;
    let mut last = None;
    let rolls = Rolls::each(|drain, fresh| {
        let controller = bench.controller()?;
        let rolled = roll(
            bench,
            &controller,
            &controller.url,
            drain_flags(drain),
            fresh,
        )?;
        last = Some(controller);
        Ok(rolled)
    })?;
    let controller = last.context("no roll ran")?;
    Ok(compared(Scenario::RollingRestart, &rolls, &controller))
}

/// `--drain-timeout 0` (deregister at once) when not `drain`.
fn drain_flags(drain: bool) -> &'static [&'static str] {
    if drain {
        &[]
    } else {
        &["--drain-timeout", "0"]
    }
}

/// The four rolling restarts: with and without drain, for callers that
/// keep their connections and for callers on new ones.
struct Rolls {
    with: Rolled,
    without: Rolled,
    fresh_with: Rolled,
    fresh_without: Rolled,
}

impl Rolls {
    /// Runs `roll(drain, fresh)` for each, without drain first.
    fn each(mut roll: impl FnMut(bool, bool) -> Result<Rolled>) -> Result<Rolls> {
        let without = roll(false, false)?;
        let with = roll(true, false)?;
        let fresh_without = roll(false, true)?;
        let fresh_with = roll(true, true)?;
        Ok(Rolls {
            with,
            without,
            fresh_with,
            fresh_without,
        })
    }
}

/// The first failed attempt's reason, and how many failed so.
fn first_failure(calls: &Calls) -> Option<String> {
    let failures: Vec<&str> = calls
        .attempts
        .iter()
        .filter_map(|a| a.failure.as_deref())
        .collect();
    let first = failures.first()?;
    let same = failures.iter().filter(|f| *f == first).count();
    Some(format!("{same}× {first}"))
}

fn compared(scenario: Scenario, rolls: &Rolls, controller: &Target) -> Row {
    let (with, without) = (&rolls.with, &rolls.without);
    Row {
        workers: Some(FLEET.len() as u64),
        restarts: Some(with.restarts),
        rolling_restart_s: Some(with.restart_s),
        failed_attempts: Some(with.calls.failed_attempts()),
        first_failed_attempt: first_failure(&with.calls),
        no_drain_first_failed_attempt: first_failure(&without.calls),
        no_drain_failed_calls: Some(without.calls.load.errors),
        no_drain_failed_attempts: Some(without.calls.failed_attempts()),
        unanswered_attempts: Some(with.calls.unanswered_attempts()),
        no_drain_unanswered_attempts: Some(without.calls.unanswered_attempts()),
        no_drain_restarts: Some(without.restarts),
        fresh_failed_calls: Some(rolls.fresh_with.calls.load.errors),
        fresh_unanswered_attempts: Some(rolls.fresh_with.calls.unanswered_attempts()),
        fresh_no_drain_failed_calls: Some(rolls.fresh_without.calls.load.errors),
        fresh_no_drain_unanswered_attempts: Some(rolls.fresh_without.calls.unanswered_attempts()),
        ..row(scenario, &with.calls.load, controller, None)
    }
}

#[cfg(not(feature = "etcd"))]
pub fn rolling_restart_cluster(_: &Bench) -> Result<Row> {
    bail!("rolling-restart-cluster needs the etcd store: build with --features etcd")
}

/// The rolling restart on three controllers sharing a local etcd: workers
/// register with all three (drained at the first), callers route through
/// the last, so a drain must reach it through the store.
#[cfg(feature = "etcd")]
pub fn rolling_restart_cluster(bench: &Bench) -> Result<Row> {
    use crank_fleet::etcd::{Etcd, EtcdConfig};

    issue_service_certificate(&bench.cert_dir)?;
    let data = tempfile::tempdir().context("cannot make etcd's data directory")?;
    let etcd = bench.block_on(Etcd::start(EtcdConfig::in_dir(
        "crank-rolling",
        bench.cert_dir(),
        data.path(),
    )))?;
    let cluster = |prefix: &str, round: usize| {
        super::cluster::etcd_controllers(
            bench,
            etcd.client_url(),
            prefix,
            &format!("rolling-controller-{round}"),
        )
    };
    let urls = |controllers: &[Target]| {
        controllers
            .iter()
            .map(|c| c.url.as_str())
            .collect::<Vec<_>>()
            .join(",")
    };
    let mut round = 0;
    let mut last = None;
    let rolls = Rolls::each(|drain, fresh| {
        round += 1;
        let controllers = cluster(&format!("/rolling-{round}"), round)?;
        let rolled = roll(
            bench,
            &controllers[2],
            &urls(&controllers),
            drain_flags(drain),
            fresh,
        )?;
        last = Some(controllers);
        Ok(rolled)
    })?;
    let controllers = last.context("no roll ran")?;
    Ok(compared(
        Scenario::RollingRestartCluster,
        &rolls,
        &controllers[2],
    ))
}
