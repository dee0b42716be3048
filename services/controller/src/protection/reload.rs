//! The task behind [`Protection`]: once a second it evaluates the SLOs and
//! looks whether the policy file or an SLO file changed (modification time,
//! length and names), and reloads on a change or on `SIGHUP`. Polling, not
//! inotify: it also sees files on network mounts and edits made by
//! replacing the file, and a second is fast enough for a policy edit.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::signal::unix::{signal, SignalKind};

use super::Protection;

/// How often SLOs are evaluated and the files looked at.
pub const TICK: Duration = Duration::from_secs(1);

/// What the files looked like: each path's modification time and length.
type Stamp = Vec<(PathBuf, Option<SystemTime>, u64)>;

fn stamp_of(path: &Path, stamp: &mut Stamp) {
    let meta = std::fs::metadata(path).ok();
    stamp.push((
        path.to_owned(),
        meta.as_ref().and_then(|m| m.modified().ok()),
        meta.map_or(0, |m| m.len()),
    ));
}

fn stamp(protection: &Protection) -> Stamp {
    let settings = protection.settings();
    let mut stamp = Vec::new();
    if let Some(file) = &settings.policy_file {
        stamp_of(file, &mut stamp);
    }
    if let Some(dir) = &settings.slo_dir {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        files.sort();
        for file in files {
            stamp_of(&file, &mut stamp);
        }
    }
    stamp
}

/// Runs for as long as the controller does.
pub async fn run(protection: Arc<Protection>) {
    let mut hangups = match signal(SignalKind::hangup()) {
        Ok(hangups) => Some(hangups),
        Err(error) => {
            log::warn!(
                "cannot listen for SIGHUP ({error}); policy and SLO files reload when they change"
            );
            None
        }
    };
    let mut last = stamp(&protection);
    let mut ticks = tokio::time::interval(TICK);
    loop {
        let hangup = async {
            match hangups.as_mut() {
                Some(hangups) => hangups.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = ticks.tick() => {
                let now = stamp(&protection);
                if now != last {
                    last = now;
                    protection.reload();
                }
                protection.tick();
            }
            _ = hangup => {
                log::info!("SIGHUP: reloading the policy and SLO files");
                last = stamp(&protection);
                protection.reload();
                protection.tick();
            }
        }
    }
}
