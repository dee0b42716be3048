//! A real etcd for the cluster tests: started on free loopback ports with a
//! temporary data directory and a certificate from the fleet's CA, as an
//! operator would run it (see `shared/notes/etcd-local.md` in the design
//! notes). `.ci/run` installs Debian's `etcd-server` and `etcd-client`.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::child::Child;
use super::{eventually, free_port, Fleet, CRANK};

/// A running etcd, stopped when dropped.
pub struct Etcd {
    child: Option<Child>,
    pub client_url: String,
    peer_url: String,
    data_dir: PathBuf,
    cert_dir: PathBuf,
    log: PathBuf,
}

impl Etcd {
    /// Starts etcd for `fleet` and waits until it answers.
    pub async fn start(fleet: &Fleet) -> Etcd {
        let cert_dir = fleet.cert_dir();
        if !cert_dir.join("etcd.crt").exists() {
            let status = Command::new(CRANK)
                .args([
                    "certs",
                    "issue",
                    "--role",
                    "controller",
                    "--name",
                    "etcd",
                    "--dir",
                ])
                .arg(&cert_dir)
                .stdout(Stdio::null())
                .status()
                .unwrap();
            assert!(status.success(), "crank certs issue etcd failed");
        }
        let mut etcd = Etcd {
            child: None,
            client_url: format!("https://127.0.0.1:{}", free_port()),
            peer_url: format!("http://127.0.0.1:{}", free_port()),
            data_dir: fleet.dir.path().join("etcd-data"),
            cert_dir,
            log: fleet.dir.path().join("etcd.log"),
        };
        etcd.run().await;
        etcd
    }

    async fn run(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let cert = |name: &str| self.cert_dir.join(name);
        let mut command = Command::new("etcd");
        command
            .args(["--name", "t", "--data-dir"])
            .arg(&self.data_dir)
            .args(["--listen-client-urls", &self.client_url])
            .args(["--advertise-client-urls", &self.client_url])
            .args(["--listen-peer-urls", &self.peer_url])
            .args(["--initial-advertise-peer-urls", &self.peer_url])
            .args(["--initial-cluster", &format!("t={}", self.peer_url)])
            .arg("--cert-file")
            .arg(cert("etcd.crt"))
            .arg("--key-file")
            .arg(cert("etcd.key"))
            .arg("--trusted-ca-file")
            .arg(cert("ca.crt"))
            .args(["--client-cert-auth", "--log-level", "warn"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        self.child =
            Some(Child::spawn("etcd", command).expect(
                "etcd must be installed (Debian: apt-get install -y etcd-server etcd-client)",
            ));
        eventually("etcd answers", Duration::from_secs(20), || async {
            self.revision()
        })
        .await;
    }

    /// Stops etcd (SIGTERM, then SIGKILL).
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.stop(Duration::from_secs(5)).await.unwrap();
        }
    }

    /// Starts it again on the same ports and data.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.run().await;
    }

    /// The store's revision: every write transaction raises it by one.
    pub fn revision(&self) -> Option<i64> {
        let output = Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .args(["--endpoints", &self.client_url, "--cacert"])
            .arg(self.cert_dir.join("ca.crt"))
            .arg("--cert")
            .arg(self.cert_dir.join("controller.crt"))
            .arg("--key")
            .arg(self.cert_dir.join("controller.key"))
            .args([
                "--command-timeout",
                "2s",
                "endpoint",
                "status",
                "-w",
                "json",
            ])
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&output.stdout);
        let at = text.find("\"revision\":")? + "\"revision\":".len();
        text[at..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .ok()
    }
}
