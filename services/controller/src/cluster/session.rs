//! A controller's session: one etcd lease, kept alive, with the controller's
//! [`ControllerAnnouncement`] attached. When the controller dies (or loses
//! etcd for longer than the lease's time to live), the announcement
//! disappears and the others adopt its workers.

use std::time::Duration;

use chrono::Utc;
use crank_proto::wire::ControllerAnnouncement;
use etcd_client::{Client, PutOptions};

use super::connect::etcd_error;
use super::keys::Keys;
use super::{ClusterError, ClusterSettings, StoreHealth, StoreState};

/// Grants a lease and announces this controller under it; returns the lease.
pub async fn open(
    client: &mut Client,
    settings: &ClusterSettings,
    keys: &Keys,
) -> Result<i64, ClusterError> {
    let ttl = settings.session_ttl.as_secs().max(1) as i64;
    let lease = client
        .lease_grant(ttl, None)
        .await
        .map_err(|e| etcd_error(settings, e))?
        .id();
    let announcement = ControllerAnnouncement {
        controller_id: settings.controller_id.clone(),
        url: settings.controller_url.clone(),
        started_at: Utc::now(),
    };
    let value = serde_json::to_vec(&announcement).expect("an announcement serializes");
    client
        .put(
            keys.controller(&settings.controller_id),
            value,
            Some(PutOptions::new().with_lease(lease)),
        )
        .await
        .map_err(|e| etcd_error(settings, e))?;
    Ok(lease)
}

/// Keeps the session alive for as long as the process lives: renews the lease
/// three times per time to live, and opens a new session when the old one is
/// lost (etcd was away for longer than the lease lived).
pub async fn keep_alive(
    mut client: Client,
    settings: ClusterSettings,
    keys: Keys,
    health: StoreHealth,
    mut lease: i64,
) {
    let period = settings.session_ttl / 3;
    loop {
        if let Ok((mut keeper, mut answers)) = client.lease_keep_alive(lease).await {
            loop {
                if keeper.keep_alive().await.is_err() {
                    break;
                }
                match answers.message().await {
                    Ok(Some(answer)) if answer.ttl() > 0 => {}
                    _ => break,
                }
                actix_rt::time::sleep(period).await;
            }
        }
        // The lease could not be renewed: etcd is away, or the lease expired.
        loop {
            actix_rt::time::sleep(Duration::from_secs(1)).await;
            match open(&mut client, &settings, &keys).await {
                Ok(renewed) => {
                    lease = renewed;
                    log::info!(
                        "controller {} renewed its etcd session",
                        settings.controller_id
                    );
                    break;
                }
                Err(problem) => {
                    if health.set(StoreState::Unreachable) != StoreState::Unreachable {
                        log::warn!("etcd is unreachable ({problem}); this controller keeps answering routes and heartbeats from its replica and writes its changes when etcd returns");
                    }
                }
            }
        }
    }
}
