//! `crank up`: a controller and N hello-world workers as child processes, live,
//! with dev certificates made on first use. It reports registrations and health
//! changes as they happen, reports a child that dies, and on Ctrl-C stops the
//! workers first (so they deregister) and then the controller.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use crank_actors::wire::{WorkerList, WorkerStatus};
use futures_util::future::{self, FutureExt};

use crate::child::Child;
use crate::client::{Client, ClientFlags};
use crate::error::flat;

/// How long `up` waits for the fleet to be registered and routable.
const START_DEADLINE: Duration = Duration::from_secs(60);
/// How often `up` looks at the registry while the fleet starts.
const START_INTERVAL: Duration = Duration::from_millis(100);
/// How often `up` looks at the registry once the fleet is up.
const WATCH_INTERVAL: Duration = Duration::from_millis(500);
/// How long a child may take to stop after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, clap::Args)]
pub struct UpFlags {
    /// Number of hello-world workers (ids hello-world-1…N).
    #[arg(long, default_value_t = 1)]
    pub workers: u16,
    /// The controller's port; workers listen on the ports after it.
    #[arg(long, default_value_t = 9000)]
    pub port: u16,
    /// Where the dev certificates are (made there if missing).
    #[arg(long, default_value = "certs")]
    pub cert_dir: PathBuf,
}

/// Starts `crank <args>` as the child `name`, its output on ours.
fn spawn(name: &str, args: &[String]) -> Result<Child> {
    let exe = std::env::current_exe().context("cannot find the crank binary")?;
    let mut command = Command::new(exe);
    command.args(args).stdin(Stdio::null()).env(
        "RUST_LOG",
        std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
    );
    Child::spawn(name, command).with_context(|| format!("cannot start {name}"))
}

fn ensure_certificates(dir: &Path, workers: u16) -> Result<()> {
    if !crank_services::certs::has_ca(dir) {
        crank_services::certs::init(dir, false).map_err(flat)?;
        println!("created dev certificates in {}/", dir.display());
    }
    for i in 1..=workers {
        let name = format!("hello-world-{i}");
        if !dir.join(format!("{name}.crt")).exists() {
            crank_services::certs::issue(dir, crank_services::identity::Role::Worker, &name, false)
                .map_err(flat)?;
        }
    }
    Ok(())
}

/// Every worker's status, by id.
async fn statuses(client: &Client) -> Option<BTreeMap<String, WorkerStatus>> {
    let list: WorkerList = client.get("/workers").await.ok()?;
    Some(
        list.workers
            .into_iter()
            .map(|w| (w.worker_id, w.status))
            .collect(),
    )
}

fn report_changes(before: &BTreeMap<String, WorkerStatus>, now: &BTreeMap<String, WorkerStatus>) {
    for (id, status) in now {
        match before.get(id) {
            None => println!("+ {id} registered ({})", status.as_str()),
            Some(old) if old != status => {
                println!("~ {id} is {} (was {})", status.as_str(), old.as_str())
            }
            _ => {}
        }
    }
    for id in before.keys().filter(|id| !now.contains_key(*id)) {
        println!("- {id} is gone from the registry");
    }
}

/// Resolves when the controller or a worker exits: which worker (`None`: the
/// controller) and how it ended. Cancel-safe, as [`Child::wait`] is.
async fn next_exit(
    controller: &mut Child,
    workers: &mut [Child],
) -> (Option<usize>, io::Result<ExitStatus>) {
    let any_worker = if workers.is_empty() {
        future::pending().boxed_local()
    } else {
        future::select_all(workers.iter_mut().map(|w| w.wait().boxed_local()))
            .map(|(status, index, _)| (Some(index), status))
            .boxed_local()
    };
    tokio::select! {
        status = controller.wait() => (None, status),
        exit = any_worker => exit,
    }
}

/// "exit status: 1", "signal: 9 (SIGKILL)".
fn describe(status: io::Result<ExitStatus>) -> String {
    match status {
        Ok(status) => status.to_string(),
        Err(e) => format!("unknown status ({e})"),
    }
}

/// "hello-world-2 exited unexpectedly: exit status: 1".
fn death(child: &Child, status: io::Result<ExitStatus>) -> String {
    format!("{} exited unexpectedly: {}", child.name(), describe(status))
}

/// Workers first (they deregister), sharing one grace period, then the controller.
async fn stop_all(controller: &mut Child, workers: &mut [Child]) {
    let stops = workers.iter_mut().map(|worker| async move {
        if let Err(e) = worker.stop(STOP_GRACE).await {
            eprintln!("cannot stop {}: {e}", worker.name());
        }
    });
    future::join_all(stops).await;
    if let Err(e) = controller.stop(STOP_GRACE).await {
        eprintln!("cannot stop the controller: {e}");
    }
}

pub async fn up(flags: UpFlags) -> Result<()> {
    let mut signals = crank_services::process::ShutdownSignals::install()
        .context("cannot install signal handlers")?;
    if flags.port.checked_add(flags.workers).is_none() {
        bail!(
            "ports {}..{} do not fit below 65536",
            flags.port,
            u32::from(flags.port) + u32::from(flags.workers)
        );
    }
    let dir = flags.cert_dir.clone();
    ensure_certificates(&dir, flags.workers)
        .with_context(|| format!("making dev certificates in {}", dir.display()))?;
    let dir_arg = dir.to_string_lossy().into_owned();
    let controller_url = format!("https://localhost:{}", flags.port);

    let mut controller = spawn(
        "controller",
        &[
            "controller",
            "--port",
            &flags.port.to_string(),
            "--cert-dir",
            &dir_arg,
        ]
        .map(String::from),
    )?;
    println!(
        "controller     pid {:<7} {controller_url}",
        controller.pid()
    );
    let mut workers = Vec::new();
    for i in 1..=flags.workers {
        let id = format!("hello-world-{i}");
        let port = flags
            .port
            .checked_add(i)
            .context("worker port out of range")?;
        let worker = spawn(
            &id,
            &[
                "worker",
                "--worker-id",
                &id,
                "--port",
                &port.to_string(),
                "--controller-url",
                &controller_url,
                "--cert-dir",
                &dir_arg,
            ]
            .map(String::from),
        )?;
        println!("{id:<14} pid {:<7} https://localhost:{port}", worker.pid());
        workers.push(worker);
    }

    let client = Client::new(&ClientFlags {
        controller_url: controller_url.clone(),
        cert_dir: dir.clone(),
        cert: "client".into(),
        json: false,
    })?;
    let started = Instant::now();
    let mut seen = BTreeMap::new();
    let expected = usize::from(flags.workers);
    loop {
        if let Some(now) = statuses(&client).await {
            report_changes(&seen, &now);
            seen = now;
            let healthy = seen
                .values()
                .filter(|s| **s == WorkerStatus::Healthy)
                .count();
            let routable = crate::client::route(&client, "invoke", "hello.greet", None)
                .await
                .is_ok();
            if healthy >= expected && routable {
                break;
            }
        }
        if started.elapsed() > START_DEADLINE {
            stop_all(&mut controller, &mut workers).await;
            bail!(
                "the fleet was not registered within {START_DEADLINE:?}; only {} of {expected} workers are",
                seen.len()
            );
        }
        tokio::select! {
            name = signals.recv() => {
                println!("\n{name} before the fleet was up: stopping everything");
                stop_all(&mut controller, &mut workers).await;
                return Ok(());
            }
            (which, status) = next_exit(&mut controller, &mut workers) => {
                let death = death(which.map_or(&controller, |i| &workers[i]), status);
                stop_all(&mut controller, &mut workers).await;
                bail!("{death} (its log is above)");
            }
            _ = actix_rt::time::sleep(START_INTERVAL) => {}
        }
    }
    println!(
        "\n{expected} worker{} registered and routable. Try:\n",
        if expected == 1 { "" } else { "s" }
    );
    let curl = format!(
        "curl --cacert {dir_arg}/ca.crt --cert {dir_arg}/client.crt --key {dir_arg}/client.key"
    );
    println!("  {curl} {controller_url}/workers");
    println!("  {curl} {controller_url}/capabilities");
    println!("  {curl} --json '{{\"verb\":\"invoke\",\"capability\":\"hello.greet\"}}' {controller_url}/route");
    let flags = format!("--controller-url {controller_url} --cert-dir {dir_arg}");
    println!("  crank workers {flags}");
    println!("  crank greet world --uppercase {flags}");
    println!("  crank watch {flags}");
    println!(
        "  {controller_url}/ui in a browser, with {dir_arg}/client.p12 imported (password {})",
        crank_services::bundle::PKCS12_PASSWORD
    );
    println!("\nWatching the registry; Ctrl-C stops the workers (they deregister), then the controller.\n");

    let outcome = loop {
        tokio::select! {
            name = signals.recv() => {
                println!("\n{name}: stopping {} worker{} and the controller", workers.len(), if workers.len() == 1 { "" } else { "s" });
                break Ok(());
            }
            (which, status) = next_exit(&mut controller, &mut workers) => match which {
                None => break Err(anyhow!("the controller exited unexpectedly: {}", describe(status))),
                // A worker is reported and left out; the rest of the fleet goes on.
                Some(i) => eprintln!("! {}", death(&workers.remove(i), status)),
            },
            _ = actix_rt::time::sleep(WATCH_INTERVAL) => {
                if let Some(now) = statuses(&client).await {
                    report_changes(&seen, &now);
                    seen = now;
                }
            }
        }
    };
    // Our own keep-alive connection would otherwise hold the controller's graceful stop.
    drop(client);
    stop_all(&mut controller, &mut workers).await;
    if outcome.is_ok() {
        println!("stopped");
    }
    outcome
}
