//! `crank up`: a controller and N hello-world workers as child processes, live,
//! with dev certificates made on first use. It reports registrations and health
//! changes as they happen, reports a child that dies, and on Ctrl-C stops the
//! workers first (so they deregister) and then the controller.

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::client::{Client, ClientFlags};

/// How long `up` waits for the fleet to be registered and routable.
const START_DEADLINE: Duration = Duration::from_secs(60);
/// How often `up` looks at the registry and its children.
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

struct Supervised {
    name: String,
    child: Child,
}

impl Supervised {
    fn spawn(name: &str, args: &[String]) -> Result<Self, String> {
        let exe =
            std::env::current_exe().map_err(|e| format!("cannot find the crank binary: {e}"))?;
        let mut command = Command::new(exe);
        command
            .args(args)
            .stdin(Stdio::null())
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            // A group of its own: the terminal's Ctrl-C reaches only `up`, which
            // then stops the children in order.
            .process_group(0);
        // SAFETY: `set_pdeathsig` is async-signal-safe; it makes the child get
        // SIGTERM if `up` dies without cleaning up, so no process is left behind.
        unsafe {
            command.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(Signal::SIGTERM).map_err(std::io::Error::from)
            });
        }
        let child = command
            .spawn()
            .map_err(|e| format!("cannot start {name}: {e}"))?;
        Ok(Supervised {
            name: name.to_owned(),
            child,
        })
    }

    fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    /// `Some(description)` once the child has exited.
    fn exit(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            Ok(None) => None,
            Err(e) => Some(format!("unknown status ({e})")),
        }
    }

    /// SIGTERM (again, harmlessly, if already sent), then wait until `deadline`
    /// before killing it.
    async fn stop(&mut self, deadline: Instant) {
        if self.exit().is_some() {
            return;
        }
        let _ = kill(self.pid(), Signal::SIGTERM);
        while Instant::now() < deadline {
            if self.exit().is_some() {
                return;
            }
            actix_rt::time::sleep(Duration::from_millis(50)).await;
        }
        eprintln!(
            "{} did not stop within {STOP_GRACE:?} of SIGTERM; killing it",
            self.name
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ensure_certificates(dir: &Path, workers: u16) -> Result<(), String> {
    if !crank_services::certs::has_ca(dir) {
        crank_services::certs::init(dir, false).map_err(|e| e.to_string())?;
        println!("created dev certificates in {}/", dir.display());
    }
    for i in 1..=workers {
        let name = format!("hello-world-{i}");
        if !dir.join(format!("{name}.crt")).exists() {
            crank_services::certs::issue(dir, crank_services::identity::Role::Worker, &name, false)
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// Every worker's status, by id.
async fn statuses(client: &Client) -> Option<BTreeMap<String, String>> {
    let body = client.controller("GET", "/workers", None).await.ok()?;
    Some(
        body["workers"]
            .as_array()?
            .iter()
            .map(|w| {
                (
                    w["worker_id"].as_str().unwrap_or("?").to_owned(),
                    w["status"].as_str().unwrap_or("?").to_owned(),
                )
            })
            .collect(),
    )
}

fn report_changes(before: &BTreeMap<String, String>, now: &BTreeMap<String, String>) {
    for (id, status) in now {
        match before.get(id) {
            None => println!("+ {id} registered ({status})"),
            Some(old) if old != status => println!("~ {id} is {status} (was {old})"),
            _ => {}
        }
    }
    for id in before.keys().filter(|id| !now.contains_key(*id)) {
        println!("- {id} is gone from the registry");
    }
}

fn check_children(children: &mut [Supervised]) -> Vec<String> {
    children
        .iter_mut()
        .filter_map(|c| {
            c.exit()
                .map(|status| format!("{} exited unexpectedly: {status}", c.name))
        })
        .collect()
}

/// Workers first (they deregister), sharing one grace period, then the controller.
async fn stop_all(controller: &mut Supervised, workers: &mut [Supervised]) {
    for worker in workers.iter() {
        let _ = kill(worker.pid(), Signal::SIGTERM);
    }
    let deadline = Instant::now() + STOP_GRACE;
    for worker in workers.iter_mut() {
        worker.stop(deadline).await;
    }
    controller.stop(Instant::now() + STOP_GRACE).await;
}

pub async fn up(flags: UpFlags) -> Result<(), String> {
    let mut signals = crank_services::process::ShutdownSignals::install()
        .map_err(|e| format!("cannot install signal handlers: {e}"))?;
    if flags.port.checked_add(flags.workers).is_none() {
        return Err(format!(
            "ports {}..{} do not fit below 65536",
            flags.port,
            u32::from(flags.port) + u32::from(flags.workers)
        ));
    }
    let dir = flags.cert_dir.clone();
    ensure_certificates(&dir, flags.workers)?;
    let dir_arg = dir.to_string_lossy().into_owned();
    let controller_url = format!("https://localhost:{}", flags.port);

    let mut controller = Supervised::spawn(
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
        controller.child.id()
    );
    let mut workers = Vec::new();
    for i in 1..=flags.workers {
        let id = format!("hello-world-{i}");
        let port = flags
            .port
            .checked_add(i)
            .ok_or("worker port out of range")?;
        let worker = Supervised::spawn(
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
        println!(
            "{id:<14} pid {:<7} https://localhost:{port}",
            worker.child.id()
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
    let expected = usize::from(flags.workers);
    loop {
        let mut deaths = check_children(std::slice::from_mut(&mut controller));
        deaths.extend(check_children(&mut workers));
        if !deaths.is_empty() {
            stop_all(&mut controller, &mut workers).await;
            return Err(format!("{} (its log is above)", deaths.join("; ")));
        }
        if let Some(now) = statuses(&client).await {
            report_changes(&seen, &now);
            seen = now;
            let healthy = seen.values().filter(|s| *s == "healthy").count();
            let routable = crate::client::route(&client, "invoke", "hello.greet", None)
                .await
                .is_ok();
            if healthy >= expected && routable {
                break;
            }
        }
        if started.elapsed() > START_DEADLINE {
            stop_all(&mut controller, &mut workers).await;
            return Err(format!(
                "the fleet was not registered within {START_DEADLINE:?}; only {} of {expected} workers are",
                seen.len()
            ));
        }
        tokio::select! {
            name = signals.recv() => {
                println!("\n{name} before the fleet was up: stopping everything");
                stop_all(&mut controller, &mut workers).await;
                return Ok(());
            }
            _ = actix_rt::time::sleep(Duration::from_millis(100)) => {}
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
    println!("\nWatching the registry; Ctrl-C stops the workers (they deregister), then the controller.\n");

    let outcome = loop {
        tokio::select! {
            name = signals.recv() => {
                println!("\n{name}: stopping {} worker{} and the controller", workers.len(), if workers.len() == 1 { "" } else { "s" });
                break Ok(());
            }
            _ = actix_rt::time::sleep(WATCH_INTERVAL) => {
                for death in check_children(&mut workers) {
                    eprintln!("! {death}");
                }
                workers.retain_mut(|w| w.exit().is_none());
                if let Some(status) = controller.exit() {
                    break Err(format!("the controller exited unexpectedly: {status}"));
                }
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
