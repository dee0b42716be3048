//! A harness for end-to-end tests: real `crank` processes on free loopback ports,
//! with certificates made for the test run, and polling with a deadline.

#![allow(dead_code)]

pub mod etcd;

/// The harness's processes and ports, shared with `crank up` and the bench.
pub use crank_fleet::child;
#[allow(unused_imports)] // each test binary uses what it needs
pub use crank_fleet::ports::{free_port, free_ports_in_a_row};

use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::web::Bytes;
use anyhow::{anyhow, Context, Result};
use crank_proto::wire::{WorkerList, WorkerSummary};
use crank_worker::hello::{GreetOptions, GreetRequest};
use serde::de::DeserializeOwned;
use serde::Serialize;

use child::Child;

pub const CRANK: &str = env!("CARGO_BIN_EXE_crank");

/// A `crank` process with its output in a log file; killed when dropped.
pub struct Proc {
    pub child: Child,
    pub log: PathBuf,
}

impl Proc {
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        self.child.signal(signal).unwrap();
    }

    /// Waits until the process exits, or panics once `deadline` has passed.
    pub async fn exits_within(&mut self, deadline: Duration) -> ExitStatus {
        match tokio::time::timeout(deadline, self.child.wait()).await {
            Ok(status) => status.unwrap(),
            Err(_) => panic!(
                "{} did not exit within {deadline:?}; its log:\n{}",
                self.child.name(),
                self.log_text()
            ),
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// A `POST /greet` body with the default options.
pub fn greeting(message: &str) -> GreetRequest {
    GreetRequest {
        message: message.into(),
        options: GreetOptions::default(),
    }
}

/// Certificates and processes of one test.
pub struct Fleet {
    pub dir: tempfile::TempDir,
    pub controller_port: u16,
    logs: Vec<PathBuf>,
}

impl Fleet {
    /// A fresh cert dir (`crank certs init`) and a port for the controller.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new(CRANK)
            .args(["certs", "init", "--dir"])
            .arg(dir.path().join("certs"))
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "crank certs init failed");
        Fleet {
            dir,
            controller_port: free_port(),
            logs: Vec::new(),
        }
    }

    pub fn cert_dir(&self) -> PathBuf {
        self.dir.path().join("certs")
    }

    pub fn controller_url(&self) -> String {
        format!("https://localhost:{}", self.controller_port)
    }

    /// Mints a worker certificate named `name` from the fleet's CA, unless the dev
    /// set already has it.
    pub fn issue_worker(&self, name: &str) {
        if self.cert_dir().join(format!("{name}.crt")).exists() {
            return;
        }
        let status = Command::new(CRANK)
            .args([
                "certs", "issue", "--role", "worker", "--name", name, "--dir",
            ])
            .arg(self.cert_dir())
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "crank certs issue {name} failed");
    }

    /// Runs `crank <args>` with its output in a log file of the fleet.
    pub fn spawn(&mut self, name: &str, args: &[&str]) -> Proc {
        self.spawn_with_env(name, args, &[])
    }

    /// [`Fleet::spawn`] with `env` added to the process's environment.
    pub fn spawn_with_env(&mut self, name: &str, args: &[&str], env: &[(&str, &str)]) -> Proc {
        let log = self
            .dir
            .path()
            .join(format!("{name}-{}.log", self.logs.len()));
        let out = std::fs::File::create(&log).unwrap();
        let mut command = Command::new(CRANK);
        command
            .args(args)
            .env_remove("CONTROLLER_URL")
            .env_remove("WORKER_ID")
            .env_remove("WORKER_URL")
            .env_remove("CERT_DIR")
            .env_remove("WORKER_HTTPS_PORT")
            .env_remove("CONTROLLER_HTTPS_PORT")
            .env("RUST_LOG", "info")
            // A controller's durable store, per process name: a restart of
            // the same name finds its data, and no test shares another's.
            .env(
                "CONTROLLER_DATA_DIR",
                self.dir.path().join("state").join(name),
            )
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out);
        let child = Child::spawn(name, command).unwrap();
        self.logs.push(log.clone());
        Proc { child, log }
    }

    /// A controller with short timings: stale after `stale_after`, sweeping every 100 ms.
    pub fn start_controller(&mut self, stale_after: &str) -> Proc {
        self.start_controller_with(stale_after, &[])
    }

    /// [`Fleet::start_controller`] with `extra` arguments.
    pub fn start_controller_with(&mut self, stale_after: &str, extra: &[&str]) -> Proc {
        let port = self.controller_port.to_string();
        let cert_dir = self.cert_dir();
        let mut args = vec![
            "controller",
            "--cert-dir",
            cert_dir.to_str().unwrap(),
            "--port",
            &port,
            "--stale-after",
            stale_after,
            "--sweep-interval",
            "100ms",
        ];
        args.extend_from_slice(extra);
        self.spawn("controller", &args)
    }

    /// A hello-world worker registering with this fleet's controller.
    pub fn start_worker(&mut self, id: &str, port: u16, heartbeat: &str) -> Proc {
        let controller_url = self.controller_url();
        self.start_worker_with(id, port, heartbeat, &controller_url)
    }

    /// A hello-world worker registering with the controller(s) at
    /// `controller_url` (a comma-separated list for a cluster).
    pub fn start_worker_with(
        &mut self,
        id: &str,
        port: u16,
        heartbeat: &str,
        controller_url: &str,
    ) -> Proc {
        let port = port.to_string();
        let cert_dir = self.cert_dir();
        self.spawn(
            id,
            &[
                "worker",
                "--cert-dir",
                cert_dir.to_str().unwrap(),
                "--port",
                &port,
                "--worker-id",
                id,
                "--controller-url",
                controller_url,
                "--heartbeat-interval",
                heartbeat,
            ],
        )
    }

    /// An mTLS client with the certificate `name` of this fleet.
    pub fn client(&self, name: &str) -> awc::Client {
        let files = crank_net::tls::TlsFiles::in_dir(&self.cert_dir(), name);
        let config = crank_net::tls::client_config(&files).unwrap();
        crank_net::https::mtls_client(Arc::new(config), Duration::from_secs(3))
    }

    /// `GET` on the controller with the client certificate.
    pub async fn get(&self, path: &str) -> Result<Reply> {
        get(
            &self.client("client"),
            &format!("{}{path}", self.controller_url()),
        )
        .await
    }

    /// `POST` of `body` as JSON to the controller with the client certificate.
    pub async fn post(&self, path: &str, body: &impl Serialize) -> Result<Reply> {
        post(
            &self.client("client"),
            &format!("{}{path}", self.controller_url()),
            body,
        )
        .await
    }

    /// The workers the controller lists, if it answers.
    pub async fn workers(&self) -> Option<Vec<WorkerSummary>> {
        let reply = self.get("/workers").await.ok()?;
        (reply.status == 200).then(|| reply.json::<WorkerList>().workers)
    }

    /// The controller's entry for worker `id`, if it lists one.
    pub async fn worker(&self, id: &str) -> Option<WorkerSummary> {
        self.workers()
            .await?
            .into_iter()
            .find(|w| w.worker_id == id)
    }

    pub fn dump_logs(&self) {
        for log in &self.logs {
            eprintln!(
                "----- {} -----\n{}",
                log.display(),
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.dump_logs();
        }
    }
}

/// An answer: its status and body, read as whichever type the test expects.
pub struct Reply {
    pub status: u16,
    pub body: Bytes,
}

impl Reply {
    /// The body as `T`; panics, showing the answer, if it is not one.
    pub fn json<T: DeserializeOwned>(&self) -> T {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{self} is not a {}: {e}", std::any::type_name::<T>()))
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "HTTP {} {}",
            self.status,
            String::from_utf8_lossy(&self.body)
        )
    }
}

/// One HTTPS `GET`; the answer, or why there is none.
pub async fn get(client: &awc::Client, url: &str) -> Result<Reply> {
    exchange(client.get(url), None).await
}

/// One HTTPS `POST` of `body` as JSON; the answer, or why there is none.
pub async fn post(client: &awc::Client, url: &str, body: &impl Serialize) -> Result<Reply> {
    exchange(client.post(url), Some(serde_json::to_vec(body)?)).await
}

async fn exchange(request: awc::ClientRequest, body: Option<Vec<u8>>) -> Result<Reply> {
    let url = request.get_uri().to_string();
    let sent = match body {
        Some(body) => {
            request
                .content_type("application/json")
                .send_body(body)
                .await
        }
        None => request.send().await,
    };
    // awc's errors are not `Send`: anyhow keeps their message.
    let mut response = sent.map_err(|e| anyhow!("{e}")).context(url.clone())?;
    let status = response.status().as_u16();
    let body = response
        .body()
        .await
        .map_err(|e| anyhow!("{e}"))
        .with_context(|| format!("reading the answer of {url}"))?;
    Ok(Reply { status, body })
}

/// Polls `probe` every 50 ms until it yields `Some`, or panics naming `what` once
/// `deadline` has passed.
pub async fn eventually<T, F, Fut>(what: &str, deadline: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        if start.elapsed() > deadline {
            panic!("timed out after {deadline:?} waiting until {what}");
        }
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs `crank <args>` to completion: exit success, stdout, stderr.
pub fn run_cli(args: &[&str]) -> (bool, String, String) {
    let output = Command::new(CRANK).args(args).output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

pub fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// The value of the sample `name` (with its labels) in a metrics text.
pub fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
}
