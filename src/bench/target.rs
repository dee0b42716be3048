//! The processes under load and where they come from: [`Bench`] holds what a
//! run shares (certificates, logs, the runtime its children are watched on) and
//! starts each [`Target`], a `crank` child process of its own or a controller
//! named by `--controller-url`.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use crank_client::{CrankClient, Request, RoutedWorker};
use crank_net::tls::{client_config, client_config_for, ExpectedPeer, TlsFiles};
use crank_proto::wire::Stats;
use rustls::ClientConfig;

use super::flags::BenchFlags;
use super::load::{client, run_load, without_resumption, Load, MakeCall, Until};
use super::probe::{proc_status_kb, process_cpu_seconds};
use crate::error::flat;
use crank_fleet::child::Child;

/// How long a started process has to answer `GET /health`.
const READY_DEADLINE: Duration = Duration::from_secs(20);

/// A process under load: a controller, the baseline endpoint or a worker.
pub struct Target {
    pub url: String,
    pub tls: Arc<ClientConfig>,
    /// `None` for a controller named by `--controller-url`: nothing to measure
    /// in `/proc`. Killed when the target is dropped.
    child: Option<Child>,
}

impl Target {
    /// A process the bench did not start, reached at `url` with `tls`: its
    /// figures are not measured.
    pub fn named(url: &str, tls: Arc<ClientConfig>) -> Self {
        Target {
            url: url.to_owned(),
            tls,
            child: None,
        }
    }

    /// Kills the target's process at once (SIGKILL), as a crash would.
    pub fn kill(&self) -> Result<()> {
        if let Some(child) = &self.child {
            child.signal(nix::sys::signal::Signal::SIGKILL)?;
        }
        Ok(())
    }

    /// Kills the target's process (SIGKILL) and waits until it is gone, so
    /// its port and its data directory's lock are free again.
    pub fn crash(&mut self, bench: &Bench) -> Result<()> {
        if let Some(child) = &mut self.child {
            child.signal(nix::sys::signal::Signal::SIGKILL)?;
            bench.block_on(child.wait())?;
        }
        Ok(())
    }

    /// SIGTERM, and up to `grace` for the process to stop on its own (then
    /// SIGKILL): a worker drains and deregisters.
    pub async fn terminate(&mut self, grace: Duration) -> Result<()> {
        if let Some(child) = &mut self.child {
            child.stop(grace).await?;
        }
        Ok(())
    }

    fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::pid)
    }

    /// Bytes it has caused to be written to storage (`write_bytes` of
    /// `/proc/<pid>/io`).
    pub fn written_bytes(&self) -> Option<u64> {
        let io = std::fs::read_to_string(format!("/proc/{}/io", self.pid()?)).ok()?;
        io.lines()
            .find_map(|l| l.strip_prefix("write_bytes: "))
            .and_then(|v| v.trim().parse().ok())
    }

    /// CPU time it has used so far, in seconds.
    pub fn cpu_seconds(&self) -> Option<f64> {
        self.pid().and_then(process_cpu_seconds)
    }

    /// Its resident memory now, in MB.
    pub fn rss_mb(&self) -> Option<f64> {
        self.pid()
            .and_then(|pid| proc_status_kb(pid, "VmRSS:"))
            .map(|kb| kb / 1024.0)
    }

    /// The most resident memory it has had, in MB.
    pub fn peak_rss_mb(&self) -> Option<f64> {
        self.pid()
            .and_then(|pid| proc_status_kb(pid, "VmHWM:"))
            .map(|kb| kb / 1024.0)
    }
}

/// A free loopback port, never one handed out before (the harness's rule:
/// the OS readily gives a just-released port again).
pub fn free_port() -> Result<u16> {
    Ok(crank_fleet::ports::free_port())
}

/// How the bench knows a process it started is ready.
enum Ready {
    /// `GET /health` answers 2xx to a client with this configuration.
    Health(Arc<ClientConfig>),
    /// The worker answers `GET /health` to the client library.
    Worker {
        controller_url: String,
        files: TlsFiles,
        worker: RoutedWorker,
    },
}

impl Ready {
    async fn answers(&self, health: &str) -> bool {
        match self {
            Ready::Health(tls) => client(tls.clone(), 1)
                .get(health)
                .send()
                .await
                .is_ok_and(|response| response.status().is_success()),
            Ready::Worker {
                controller_url,
                files,
                worker,
            } => match CrankClient::new(controller_url, files.clone()) {
                Ok(fleet) => fleet.send(worker, &Request::get("/health")).await.is_ok(),
                Err(_) => false,
            },
        }
    }
}

/// Where the load goes: certificates, logs, and the processes started on demand.
pub struct Bench {
    pub flags: BenchFlags,
    pub cert_dir: PathBuf,
    /// The temporary certificates and logs, removed at the end unless kept.
    temp: Option<tempfile::TempDir>,
    /// The bench acts as admin, which may register and deregister.
    pub tls: Arc<ClientConfig>,
    /// Where the children are started and watched, and every request outside
    /// a load phase is made (load phases run on threads of their own).
    system: actix_rt::SystemRunner,
}

impl Bench {
    pub fn new(flags: BenchFlags) -> Result<Self> {
        let (cert_dir, temp) = match &flags.cert_dir {
            Some(dir) => (dir.clone(), None),
            None if flags.controller_url.is_some() => (PathBuf::from("certs"), None),
            None => {
                let temp = tempfile::tempdir().context("cannot make a temporary directory")?;
                let dir = temp.path().join("certs");
                crank_net::certs::init(&dir, false).map_err(flat)?;
                (dir, Some(temp))
            }
        };
        let tls = client_config(&TlsFiles::in_dir(&cert_dir, "admin"))
            .map_err(flat)
            .context("the bench acts as admin")?;
        Ok(Bench {
            flags,
            cert_dir,
            temp,
            tls: Arc::new(tls),
            system: actix_rt::System::new(),
        })
    }

    /// The certificates the bench and its targets use.
    pub fn cert_dir(&self) -> &Path {
        &self.cert_dir
    }

    /// Runs `future` on the bench's runtime, where its children live.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.system.block_on(future)
    }

    /// Keeps the temporary directory, with the children's logs an error points at.
    pub fn keep_logs(&mut self) {
        if let Some(temp) = self.temp.take() {
            let _ = temp.keep();
        }
    }

    fn log_path(&self, name: &str) -> PathBuf {
        self.cert_dir
            .parent()
            .unwrap_or(Path::new("."))
            .join(format!("bench-{name}.log"))
    }

    /// A fresh controller with `crank controller`'s defaults, or the one named.
    pub fn controller(&self) -> Result<Target> {
        self.controller_with(&[])
    }

    /// A fresh controller with `crank controller`'s defaults and `extra`
    /// flags, or the one named (`extra` then does not apply).
    pub fn controller_with(&self, extra: &[&str]) -> Result<Target> {
        if let Some(url) = &self.flags.controller_url {
            return Ok(Target {
                url: url.trim_end_matches('/').to_owned(),
                tls: self.tls.clone(),
                child: None,
            });
        }
        let port = free_port()?;
        let (port_arg, cert_dir) = (port.to_string(), self.cert_dir.to_string_lossy());
        // The in-memory store, as the benchmarks have always measured; the
        // durable store's cost has no scenario of its own yet.
        let mut args = vec!["controller", "--port", &port_arg, "--cert-dir", &cert_dir];
        if !extra.contains(&"--store") {
            args.extend(["--store", "memory"]);
        }
        args.extend_from_slice(extra);
        self.start("controller", &args, port)
    }

    /// The bare endpoint `baseline` loads (`crank bench-baseline`).
    pub fn baseline_endpoint(&self) -> Result<Target> {
        let port = free_port()?;
        let args = [
            "bench-baseline",
            "--port",
            &port.to_string(),
            "--cert-dir",
            &self.cert_dir.to_string_lossy(),
        ];
        self.start("baseline", &args, port)
    }

    /// Starts `crank <args>` serving with the controller's certificate,
    /// listening on `port`, with its output in the log `name`, and waits until
    /// `GET /health` answers.
    pub fn start(&self, name: &str, args: &[&str], port: u16) -> Result<Target> {
        let url = format!("https://localhost:{port}");
        let ready = Ready::Health(self.tls.clone());
        self.start_with(name, args, &url, self.tls.clone(), ready)
    }

    /// Starts a worker that serves with `worker_id`'s certificate, and waits
    /// until it answers `GET /health` through the client library, which
    /// checks it reaches that worker, as every client of a worker does.
    /// `controller` is the fleet's controller.
    pub fn start_worker(
        &self,
        controller: &Target,
        name: &str,
        args: &[&str],
        port: u16,
        worker_id: &str,
    ) -> Result<Target> {
        self.block_on(self.start_worker_now(&controller.url, name, args, port, worker_id))
    }

    /// [`Bench::start_worker`] from inside the bench's runtime (a fault
    /// injected beside a load phase).
    pub async fn start_worker_now(
        &self,
        controller_url: &str,
        name: &str,
        args: &[&str],
        port: u16,
        worker_id: &str,
    ) -> Result<Target> {
        let files = TlsFiles::in_dir(&self.cert_dir, "admin");
        let tls =
            client_config_for(&files, ExpectedPeer::Worker(worker_id.to_owned())).map_err(flat)?;
        let url = format!("https://localhost:{port}");
        let ready = Ready::Worker {
            controller_url: controller_url.to_owned(),
            files,
            worker: RoutedWorker::at(worker_id, &url),
        };
        self.start_now(name, args, &url, Arc::new(tls), ready).await
    }

    fn start_with(
        &self,
        name: &str,
        args: &[&str],
        url: &str,
        tls: Arc<ClientConfig>,
        ready: Ready,
    ) -> Result<Target> {
        self.block_on(self.start_now(name, args, url, tls, ready))
    }

    async fn start_now(
        &self,
        name: &str,
        args: &[&str],
        url: &str,
        tls: Arc<ClientConfig>,
        ready: Ready,
    ) -> Result<Target> {
        let log = self.log_path(name);
        let exe = std::env::current_exe().context("cannot find the crank binary")?;
        let log_file = std::fs::File::create(&log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let mut command = Command::new(exe);
        command
            .args(args)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file);
        let health = format!("{url}/health");
        let child = async {
            let mut child =
                Child::spawn(name, command).with_context(|| format!("cannot start {args:?}"))?;
            let answered = async {
                loop {
                    if ready.answers(&health).await {
                        return;
                    }
                    actix_rt::time::sleep(Duration::from_millis(50)).await;
                }
            };
            tokio::select! {
                () = answered => {}
                status = child.wait() => bail!(
                    "{args:?} exited before it answered ({}); see {}",
                    status.map_or_else(|e| e.to_string(), |s| s.to_string()),
                    log.display()
                ),
                () = actix_rt::time::sleep(READY_DEADLINE) => bail!(
                    "{args:?} did not answer within {READY_DEADLINE:?}; see {}",
                    log.display()
                ),
            }
            Ok(child)
        }
        .await?;
        Ok(Target {
            url: url.to_owned(),
            tls,
            child: Some(child),
        })
    }

    /// A load phase against `target` with the flags' connections and threads.
    pub fn load(&self, target: &Target, until: Until, make: MakeCall) -> Load {
        run_load(
            &target.url,
            target.tls.clone(),
            self.flags.connections,
            self.flags.threads,
            until,
            false,
            make,
        )
    }

    /// A load phase against `target` that opens a new connection for every
    /// request, with a full TLS handshake each.
    pub fn fresh_load(&self, target: &Target, until: Until, make: MakeCall) -> Load {
        run_load(
            &target.url,
            target.tls.clone(),
            self.flags.connections,
            self.flags.threads,
            until,
            true,
            make,
        )
    }

    /// `target`'s `GET /metrics`, on a connection of its own.
    pub fn metrics(&self, target: &Target) -> Result<String> {
        let url = format!("{}/metrics", target.url);
        let tls = target.tls.clone();
        self.block_on(async move {
            let mut response = get_alone(tls, &url).await?;
            let body = response
                .body()
                .limit(64 << 20)
                .await
                .map_err(flat)
                .with_context(|| format!("reading the answer of {url}"))?;
            anyhow::Ok(String::from_utf8_lossy(&body).into_owned())
        })
    }

    /// The TLS handshakes `target` completed so far, full and resumed
    /// (`crank_tls_handshakes_total`), this scrape's own included: it comes
    /// on a new connection.
    pub fn handshakes(&self, target: &Target) -> Result<u64> {
        let text = self.metrics(target)?;
        let count = |kind: &str| {
            sample(
                &text,
                &format!("crank_tls_handshakes_total{{kind=\"{kind}\"}}"),
            )
            .with_context(|| format!("{} counts no {kind} TLS handshakes", target.url))
        };
        Ok((count("full")? + count("resumed")?) as u64)
    }

    /// The controller's [`Stats`] (the baseline endpoint's: its handshakes).
    /// Each call is one new connection with a full TLS handshake, which the
    /// answer already counts.
    pub fn stats(&self, target: &Target) -> Result<Stats> {
        let url = format!("{}/stats", target.url);
        let tls = without_resumption(&target.tls);
        self.block_on(async move {
            get_alone(tls, &url)
                .await?
                .json::<Stats>()
                .await
                .map_err(flat)
                .with_context(|| format!("reading the answer of {url}"))
        })
    }
}

/// `GET url` on a connection of its own, made with `tls`.
async fn get_alone(tls: Arc<ClientConfig>, url: &str) -> Result<awc::ClientResponse> {
    client(tls, 1)
        .get(url)
        .send()
        .await
        .map_err(flat)
        .with_context(|| format!("GET {url}"))
}

/// The value of the sample `name` (with its labels) in a metrics text.
pub fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
}
