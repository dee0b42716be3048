//! `crank up`: a controller (or, with `--controllers N`, a local etcd and N
//! controllers sharing it) and N hello-world workers as child processes, live,
//! with dev certificates made on first use, and with `--with stream` a
//! streaming worker beside them. It reports registrations and health
//! changes as they happen, reports a child that dies, and on Ctrl-C stops the
//! workers first (so they deregister) and then the controller.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use crank_proto::wire::{WorkerList, WorkerStatus};
use futures_util::future::{self, FutureExt};

use crate::client::{Client, ClientFlags};
use crate::error::flat;
use crank_fleet::child::Child;
use crank_fleet::etcd::{Etcd, EtcdConfig};

/// How long `up` waits for the fleet to be registered and routable.
const START_DEADLINE: Duration = Duration::from_secs(60);
/// How often `up` looks at the registry while the fleet starts.
const START_INTERVAL: Duration = Duration::from_millis(100);
/// How often `up` looks at the registry once the fleet is up.
const WATCH_INTERVAL: Duration = Duration::from_millis(500);
/// How long a child may take to stop after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// A worker `up` can start beside the hello-world workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Extra {
    /// The streaming worker (`crank stream-worker`), as stream.1 on the
    /// service certificate `stream`.
    Stream,
}

/// The streaming worker's id: replica 1 of the service `stream`.
const STREAM_ID: &str = "stream.1";

#[derive(Debug, Clone, clap::Args)]
pub struct UpFlags {
    /// Number of hello-world workers (ids hello-world-1…N).
    #[arg(long, default_value_t = 1)]
    pub workers: u16,
    /// Other workers to start too, on the ports after the hello-world workers.
    #[arg(long = "with", value_enum)]
    pub with: Vec<Extra>,
    /// The controller's port; further controllers and the workers listen on
    /// the ports after it.
    #[arg(long, default_value_t = 9000)]
    pub port: u16,
    /// Controllers sharing one registry through a local etcd (found on PATH);
    /// 1 = one controller with the embedded in-memory store.
    #[arg(long, default_value_t = 1)]
    pub controllers: u16,
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

fn ensure_certificates(dir: &Path, workers: u16, stream: bool) -> Result<()> {
    use crank_net::identity::Role;
    if !crank_net::certs::has_ca(dir) {
        crank_net::certs::init(dir, false).map_err(flat)?;
        println!("created dev certificates in {}/", dir.display());
    }
    let hello = (1..=workers).map(|i| (Role::Worker, format!("hello-world-{i}")));
    let services = stream.then(|| (Role::Service, crank_worker::stream::SERVICE.to_owned()));
    for (role, name) in hello.chain(services) {
        if !dir.join(format!("{name}.crt")).exists() {
            crank_net::certs::issue(dir, role, &name, false).map_err(flat)?;
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

/// Which child exited.
enum Exited {
    /// A controller, or etcd: the fleet cannot go on.
    Service(usize),
    Worker(usize),
}

/// Resolves when a service (a controller, etcd) or a worker exits: which one
/// and how it ended. Cancel-safe, as [`Child::wait`] is.
async fn next_exit(
    services: &mut [Child],
    workers: &mut [Child],
) -> (Exited, io::Result<ExitStatus>) {
    let any_worker = if workers.is_empty() {
        future::pending().boxed_local()
    } else {
        future::select_all(workers.iter_mut().map(|w| w.wait().boxed_local()))
            .map(|(status, index, _)| (Exited::Worker(index), status))
            .boxed_local()
    };
    let any_service = future::select_all(services.iter_mut().map(|s| s.wait().boxed_local()))
        .map(|(status, index, _)| (Exited::Service(index), status));
    tokio::select! {
        exit = any_service => exit,
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

/// Workers first (they deregister), sharing one grace period, then the
/// controllers, then etcd (the services, in the order they started, reversed).
async fn stop_all(services: &mut [Child], workers: &mut [Child]) {
    let stops = workers.iter_mut().map(|worker| async move {
        if let Err(e) = worker.stop(STOP_GRACE).await {
            eprintln!("cannot stop {}: {e}", worker.name());
        }
    });
    future::join_all(stops).await;
    for service in services.iter_mut().rev() {
        if let Err(e) = service.stop(STOP_GRACE).await {
            eprintln!("cannot stop {}: {e}", service.name());
        }
    }
}

pub async fn up(flags: UpFlags) -> Result<()> {
    let mut signals =
        crank_net::process::ShutdownSignals::install().context("cannot install signal handlers")?;
    if flags.controllers == 0 {
        bail!("--controllers must be at least 1");
    }
    let stream = flags.with.contains(&Extra::Stream);
    let last_port = u32::from(flags.port)
        + u32::from(flags.controllers - 1)
        + u32::from(flags.workers)
        + u32::from(stream);
    if last_port > u32::from(u16::MAX) {
        bail!("ports {}..{last_port} do not fit below 65536", flags.port);
    }
    let controllers = flags.controllers;
    let dir = flags.cert_dir.clone();
    ensure_certificates(&dir, flags.workers, stream)
        .with_context(|| format!("making dev certificates in {}", dir.display()))?;
    let dir_arg = dir.to_string_lossy().into_owned();
    let controller_ports: Vec<u16> = (0..flags.controllers).map(|i| flags.port + i).collect();
    let controller_urls: Vec<String> = controller_ports
        .iter()
        .map(|port| format!("https://localhost:{port}"))
        .collect();
    let controller_url = controller_urls[0].clone();

    let mut services = Vec::new();
    let etcd_data = tempfile::tempdir().context("cannot make etcd's data directory")?;
    let mut store_args = Vec::new();
    if flags.controllers > 1 {
        let mut config = EtcdConfig::in_dir("crank-up", &dir, etcd_data.path());
        config.log_level = "error";
        let etcd = Etcd::start(config).await?;
        let client_url = etcd.client_url().to_owned();
        println!(
            "etcd           pid {:<7} {client_url} (log: {})",
            etcd.pid().unwrap_or_default(),
            etcd.log().display()
        );
        services.extend(etcd.into_child());
        store_args = vec![
            "--store".to_owned(),
            "etcd".to_owned(),
            "--etcd-endpoints".to_owned(),
            client_url,
        ];
    }
    for (i, port) in controller_ports.iter().enumerate() {
        let mut args = [
            "controller",
            "--port",
            &port.to_string(),
            "--cert-dir",
            &dir_arg,
        ]
        .map(String::from)
        .to_vec();
        args.extend(store_args.iter().cloned());
        let name = if flags.controllers == 1 {
            "controller".to_owned()
        } else {
            format!("controller-{}", i + 1)
        };
        if store_args.is_empty() {
            // The durable store, in a directory of this fleet's own (beside
            // its certificates), so `up` never takes a standalone
            // controller's state/controller.
            let data_dir = dir
                .parent()
                .unwrap_or(Path::new("."))
                .join("state")
                .join("up")
                .join(&name);
            args.extend([
                "--data-dir".to_owned(),
                data_dir.to_string_lossy().into_owned(),
            ]);
        }
        let controller = spawn(&name, &args)?;
        println!(
            "{name:<14} pid {:<7} {}",
            controller.pid(),
            controller_urls[i]
        );
        services.push(controller);
    }
    {
        // Workers start once every controller listens: one started earlier
        // would fail its first registration and warn on the happy path (and
        // controllers of a cluster load the store before they listen).
        let deadline = actix_rt::time::Instant::now() + Duration::from_secs(40);
        let first_controller = services.len() - controller_ports.len();
        for (i, port) in controller_ports.iter().enumerate() {
            let controller = &mut services[first_controller + i];
            let name = controller.name().to_owned();
            let listening = async {
                while std::net::TcpStream::connect(("127.0.0.1", *port)).is_err() {
                    actix_rt::time::sleep(START_INTERVAL).await;
                }
            };
            // A controller that exits (its port taken, its store refused) is
            // reported at once, not after the deadline.
            let failure = tokio::select! {
                () = listening => None,
                status = controller.wait() => Some(match status {
                    Ok(status) => format!("{name} exited ({status}) before it listened on port {port}; its error is above"),
                    Err(e) => format!("cannot watch {name}: {e}"),
                }),
                () = actix_rt::time::sleep_until(deadline) => {
                    Some(format!("{name} did not listen on port {port} within 40 s"))
                }
            };
            if let Some(failure) = failure {
                stop_all(&mut services, &mut []).await;
                bail!("{failure}");
            }
        }
    }
    let mut workers = Vec::new();
    for i in 1..=flags.workers {
        let id = format!("hello-world-{i}");
        let port = flags.port + flags.controllers - 1 + i;
        // Spread over the controllers: each worker starts with another one.
        let count = controller_urls.len();
        let rotated: Vec<&str> = (0..count)
            .map(|k| controller_urls[(usize::from(i) - 1 + k) % count].as_str())
            .collect();
        let worker = spawn(
            &id,
            &[
                "worker",
                "--worker-id",
                &id,
                "--port",
                &port.to_string(),
                "--controller-url",
                &rotated.join(","),
                "--cert-dir",
                &dir_arg,
            ]
            .map(String::from),
        )?;
        println!("{id:<14} pid {:<7} https://localhost:{port}", worker.pid());
        workers.push(worker);
    }
    if stream {
        let port = (flags.port + flags.controllers + flags.workers).to_string();
        let worker = spawn(
            STREAM_ID,
            &[
                "stream-worker",
                "--worker-id",
                STREAM_ID,
                "--cert",
                crank_worker::stream::SERVICE,
                "--port",
                &port,
                "--controller-url",
                &controller_urls.join(","),
                "--cert-dir",
                &dir_arg,
            ]
            .map(String::from),
        )?;
        println!(
            "{STREAM_ID:<14} pid {:<7} https://localhost:{port}",
            worker.pid()
        );
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
    let expected = usize::from(flags.workers) + usize::from(stream);
    let mut capabilities = vec![("invoke", "hello.greet")];
    if stream {
        capabilities.extend([("stream", "text_events"), ("stream", "sse_events")]);
    }
    loop {
        if let Some(now) = statuses(&client).await {
            report_changes(&seen, &now);
            seen = now;
            let healthy = seen
                .values()
                .filter(|s| **s == WorkerStatus::Healthy)
                .count();
            let mut routable = true;
            for (verb, capability) in &capabilities {
                routable &= crate::client::route(&client, verb, capability, None)
                    .await
                    .is_ok();
            }
            if healthy >= expected && routable {
                break;
            }
        }
        if started.elapsed() > START_DEADLINE {
            stop_all(&mut services, &mut workers).await;
            bail!(
                "the fleet was not registered within {START_DEADLINE:?}; only {} of {expected} workers are",
                seen.len()
            );
        }
        tokio::select! {
            name = signals.recv() => {
                println!("\n{name} before the fleet was up: stopping everything");
                stop_all(&mut services, &mut workers).await;
                return Ok(());
            }
            (which, status) = next_exit(&mut services, &mut workers) => {
                let death = match which {
                    Exited::Service(i) => death(&services[i], status),
                    Exited::Worker(i) => death(&workers[i], status),
                };
                stop_all(&mut services, &mut workers).await;
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
    let flags_text = format!("--controller-url {controller_url} --cert-dir {dir_arg}");
    println!("  crank workers {flags_text}");
    println!("  crank greet world --uppercase {flags_text}");
    println!("  crank watch {flags_text}");
    println!(
        "  {controller_url}/ui in a browser, with {dir_arg}/client.p12 imported (password {})",
        crank_net::bundle::PKCS12_PASSWORD
    );
    if stream {
        let port = flags.port + flags.controllers + flags.workers;
        println!("  {curl} -N --json '{{\"text\":\"one word at a time\"}}' https://localhost:{port}/stream/text");
        println!("  {curl} -N 'https://localhost:{port}/events?interval_ms=1000'");
    }
    println!("\nWatching the registry; Ctrl-C stops the workers (they deregister), then the controller.\n");

    let outcome = loop {
        tokio::select! {
            name = signals.recv() => {
                println!("\n{name}: stopping {} worker{} and the controller{}", workers.len(), if workers.len() == 1 { "" } else { "s" }, if controllers == 1 { "" } else { "s" });
                break Ok(());
            }
            (which, status) = next_exit(&mut services, &mut workers) => match which {
                Exited::Service(i) => break Err(anyhow!("{}", death(&services[i], status))),
                // A worker is reported and left out; the rest of the fleet goes on.
                Exited::Worker(i) => eprintln!("! {}", death(&workers.remove(i), status)),
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
    stop_all(&mut services, &mut workers).await;
    if outcome.is_ok() {
        println!("stopped");
    }
    outcome
}
