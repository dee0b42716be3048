//! A real etcd for the cluster tests: the fleet harness's
//! [`crank_fleet::etcd::Etcd`], in the test's directory, answering `etcdctl`
//! before a test goes on. `.ci/run` installs Debian's `etcd-server` and
//! `etcd-client`.

#![allow(dead_code)]

use std::time::Duration;

pub use crank_fleet::etcd::Etcd;
use crank_fleet::etcd::EtcdConfig;

use super::{eventually, Fleet};

/// Starts etcd for `fleet` and waits until it answers.
pub async fn start(fleet: &Fleet) -> Etcd {
    let config = EtcdConfig::in_dir("t", &fleet.cert_dir(), fleet.dir.path());
    let etcd = Etcd::start(config).await.unwrap();
    answers(&etcd).await;
    etcd
}

/// Stops etcd and starts it again on the same ports and data.
pub async fn restart(etcd: &mut Etcd) {
    etcd.restart().await.unwrap();
    answers(etcd).await;
}

async fn answers(etcd: &Etcd) {
    eventually("etcd answers", Duration::from_secs(20), || async {
        etcd.revision()
    })
    .await;
}
