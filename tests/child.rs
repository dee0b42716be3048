//! The one child-process wrapper (`src/child.rs`, shared with the tests through
//! `common`): SIGTERM then SIGKILL after the grace period, and a dropped child
//! takes its whole process group with it.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::child::Child;
use common::eventually;
use nix::sys::signal::Signal;
use std::os::unix::process::ExitStatusExt;

fn sh(script: &str) -> Command {
    let mut command = Command::new("sh");
    command.args(["-c", script]);
    command
}

/// Whether `pid` has exited: gone, or a zombie no one has reaped yet.
fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // "<pid> (<comm>) <state> …"
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
        Err(_) => true,
    }
}

#[actix_rt::test]
async fn stop_ends_a_child_that_heeds_sigterm_without_the_grace_period() {
    let mut child = Child::spawn("sleep", sh("exec sleep 30")).unwrap();
    let started = Instant::now();
    let status = child.stop(Duration::from_secs(20)).await.unwrap();
    assert_eq!(status.signal(), Some(Signal::SIGTERM as i32), "{status}");
    assert!(started.elapsed() < Duration::from_secs(10));
    // Stopping again only reports how it ended.
    let again = child.stop(Duration::from_secs(20)).await.unwrap();
    assert_eq!(again, status);
}

#[actix_rt::test]
async fn stop_kills_a_child_that_ignores_sigterm_once_the_grace_period_is_over() {
    let mut child = Child::spawn("stubborn", sh("trap '' TERM; sleep 30")).unwrap();
    // Give the shell time to set its trap: before it, SIGTERM would simply work.
    eventually("the trap is set", Duration::from_secs(10), || {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", child.pid())).unwrap_or_default();
        // SigIgn is a hex mask; SIGTERM (15) is bit 14.
        let ignored = status
            .lines()
            .find_map(|l| l.strip_prefix("SigIgn:"))
            .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
            .is_some_and(|mask| mask & (1 << 14) != 0);
        async move { ignored.then_some(()) }
    })
    .await;
    let grace = Duration::from_millis(300);
    let started = Instant::now();
    let status = child.stop(grace).await.unwrap();
    assert_eq!(status.signal(), Some(Signal::SIGKILL as i32), "{status}");
    assert!(started.elapsed() >= grace);
}

#[actix_rt::test]
async fn a_dropped_child_takes_its_process_group_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("grandchild");
    let script = format!("sleep 30 & echo $! > {}; wait", pid_file.display());
    let child = Child::spawn("parent", sh(&script)).unwrap();
    let grandchild: u32 = eventually("the grandchild is started", Duration::from_secs(10), || {
        let pid = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|text| text.trim().parse().ok());
        async move { pid }
    })
    .await;
    let parent = child.pid();
    drop(child);
    eventually(
        "the child and its own child are gone",
        Duration::from_secs(10),
        || {
            let both = gone(parent) && gone(grandchild);
            async move { both.then_some(()) }
        },
    )
    .await;
}
