//! [`Etcd`]: the one local etcd that `crank up --controllers N`, `crank bench
//! cluster` and the cluster tests start.
//!
//! It is Debian's `etcd` (package `etcd-server`) on two free loopback ports,
//! with its own data directory, serving a certificate of crank's CA
//! (`etcd.crt`, minted on first use) and trusting that CA's clients, as an
//! operator runs it (see `docs/cluster.md`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crank_net::cert_files::CertError;
use crank_net::identity::Role;

use crate::child::Child;
use crate::ports::free_port;

/// How long etcd may take to listen before [`Etcd::start`] gives up.
const LISTEN_DEADLINE: Duration = Duration::from_secs(20);

/// What starting etcd can fail with.
#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    #[error("etcd is not on PATH (Debian: apt-get install -y etcd-server etcd-client)")]
    NotInstalled,
    #[error("cannot mint etcd's certificate: {0}")]
    Certificate(#[from] CertError),
    #[error("cannot start etcd (log: {log}): {source}")]
    Spawn {
        log: PathBuf,
        source: std::io::Error,
    },
    #[error("etcd did not listen on {url} within {LISTEN_DEADLINE:?} (log: {log})")]
    NotListening { url: String, log: PathBuf },
}

/// Where an etcd keeps its data and log, and whose certificates it uses.
#[derive(Clone, Debug)]
pub struct EtcdConfig {
    /// The member's name (`--name`).
    pub name: String,
    /// A crank certificate directory: `ca.crt`, and `etcd.crt` once minted.
    pub cert_dir: PathBuf,
    pub data_dir: PathBuf,
    /// etcd's own output goes here (appended across restarts), not over the
    /// parent's.
    pub log: PathBuf,
    /// `--log-level`.
    pub log_level: &'static str,
}

impl EtcdConfig {
    /// Data in `dir/etcd`, log in `dir/etcd.log`.
    pub fn in_dir(name: &str, cert_dir: &Path, dir: &Path) -> Self {
        EtcdConfig {
            name: name.to_owned(),
            cert_dir: cert_dir.to_owned(),
            data_dir: dir.join("etcd"),
            log: dir.join("etcd.log"),
            log_level: "warn",
        }
    }
}

/// A running etcd; stopped with its group when dropped.
pub struct Etcd {
    child: Option<Child>,
    client_url: String,
    peer_url: String,
    config: EtcdConfig,
}

impl Etcd {
    /// Mints `etcd.crt` if missing, starts etcd, and returns once it listens.
    pub async fn start(config: EtcdConfig) -> Result<Etcd, EtcdError> {
        let found = Command::new("etcd")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !found.is_ok_and(|status| status.success()) {
            return Err(EtcdError::NotInstalled);
        }
        if !config.cert_dir.join("etcd.crt").exists() {
            crank_net::certs::issue(&config.cert_dir, Role::Controller, "etcd", false)?;
        }
        let mut etcd = Etcd {
            child: None,
            client_url: format!("https://127.0.0.1:{}", free_port()),
            peer_url: format!("http://127.0.0.1:{}", free_port()),
            config,
        };
        etcd.run().await?;
        Ok(etcd)
    }

    /// The URL controllers give as `--etcd-endpoints`.
    pub fn client_url(&self) -> &str {
        &self.client_url
    }

    pub fn log(&self) -> &Path {
        &self.config.log
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::pid)
    }

    /// The process, for a parent that supervises its children together
    /// (`crank up` reports etcd's death as any other child's).
    pub fn into_child(mut self) -> Option<Child> {
        self.child.take()
    }

    async fn run(&mut self) -> Result<(), EtcdError> {
        let config = &self.config;
        let spawn_error = |source| EtcdError::Spawn {
            log: config.log.clone(),
            source,
        };
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&config.log)
            .map_err(spawn_error)?;
        let cert = |name: &str| config.cert_dir.join(name);
        let mut command = Command::new("etcd");
        command
            .args(["--name", &config.name, "--data-dir"])
            .arg(&config.data_dir)
            .args(["--listen-client-urls", &self.client_url])
            .args(["--advertise-client-urls", &self.client_url])
            .args(["--listen-peer-urls", &self.peer_url])
            .args(["--initial-advertise-peer-urls", &self.peer_url])
            .args([
                "--initial-cluster",
                &format!("{}={}", config.name, self.peer_url),
            ])
            .arg("--cert-file")
            .arg(cert("etcd.crt"))
            .arg("--key-file")
            .arg(cert("etcd.key"))
            .arg("--trusted-ca-file")
            .arg(cert("ca.crt"))
            .args(["--client-cert-auth", "--log-level", config.log_level])
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(spawn_error)?)
            .stderr(log);
        self.child = Some(Child::spawn("etcd", command).map_err(spawn_error)?);
        // Controllers load the store before they serve: let etcd listen first.
        let address = self.client_url.trim_start_matches("https://").to_owned();
        let listening = async {
            while tokio::net::TcpStream::connect(&address).await.is_err() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        tokio::time::timeout(LISTEN_DEADLINE, listening)
            .await
            .map_err(|_| EtcdError::NotListening {
                url: self.client_url.clone(),
                log: self.config.log.clone(),
            })
    }

    /// Stops etcd: SIGTERM, then SIGKILL after 5 s.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Err(error) = child.stop(Duration::from_secs(5)).await {
                log::warn!("stopping etcd: {error}");
            }
        }
    }

    /// Starts it again on the same ports and data.
    pub async fn restart(&mut self) -> Result<(), EtcdError> {
        self.stop().await;
        self.run().await
    }

    /// The store's revision (every write transaction raises it by one), asked
    /// with `etcdctl` (Debian: `etcd-client`) as the controller's identity;
    /// `None` while etcd does not answer.
    pub fn revision(&self) -> Option<i64> {
        let cert = |name: &str| self.config.cert_dir.join(name);
        let output = Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .args(["--endpoints", &self.client_url, "--cacert"])
            .arg(cert("ca.crt"))
            .arg("--cert")
            .arg(cert("controller.crt"))
            .arg("--key")
            .arg(cert("controller.key"))
            .args(["--command-timeout", "2s", "endpoint", "status"])
            .args(["-w", "json"])
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&output.stdout);
        let at = text.find("\"revision\":")? + "\"revision\":".len();
        text.get(at..)?
            .chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .ok()
    }
}
