//! [`Child`]: the one wrapper around a child process that `crank up`, `crank
//! bench` and the end-to-end tests all use.
//!
//! A child is started in a process group of its own, so the terminal's Ctrl-C
//! reaches only its parent, which then stops its children in the order it
//! chooses ([`Child::stop`]: SIGTERM, then SIGKILL after a grace period). Should
//! the parent die without doing so, the child is sent SIGTERM by the kernel; a
//! [`Child`] dropped while its process runs kills the process's group.
//!
//! Exits are awaited ([`Child::wait`], cancel-safe, for `select!`), never polled
//! with sleeps. Everything here needs a Tokio runtime with its I/O driver (an
//! actix `System` has one): spawning a child registers it with the runtime's
//! SIGCHLD handling.

use std::io;
use std::process::ExitStatus;
use std::time::Duration;

use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;

/// A running (or exited) child process; killed with its group when dropped.
pub struct Child {
    name: String,
    pid: u32,
    process: tokio::process::Child,
    /// How it ended, once [`Child::wait`] has seen it: after that the pid may
    /// belong to another process and is never signalled.
    exit: Option<ExitStatus>,
}

impl Child {
    /// Starts `command`, calling the process `name` in messages.
    ///
    /// The child gets a process group of its own and SIGTERM when the thread
    /// that started it ends (`PR_SET_PDEATHSIG`: the kernel ties it to the
    /// thread, not the process), so start children from the thread that
    /// outlives them.
    pub fn spawn(name: &str, command: std::process::Command) -> io::Result<Self> {
        let mut command = tokio::process::Command::from(command);
        command.process_group(0).kill_on_drop(true);
        // SAFETY: `set_pdeathsig` is one prctl(2) call, async-signal-safe as
        // `pre_exec` requires.
        unsafe {
            command.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(Signal::SIGTERM).map_err(io::Error::from)
            });
        }
        let process = command.spawn()?;
        let pid = process
            .id()
            .expect("a child that was just spawned has not been reaped");
        Ok(Child {
            name: name.to_owned(),
            pid,
            process,
            exit: None,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Resolves when the process exits (at once if it already has). Cancel-safe:
    /// dropping the future loses nothing, so it can be one branch of a `select!`.
    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        if let Some(status) = self.exit {
            return Ok(status);
        }
        let status = self.process.wait().await?;
        self.exit = Some(status);
        Ok(status)
    }

    /// Sends `signal` to the process, unless it has been seen to exit.
    pub fn signal(&self, signal: Signal) -> nix::Result<()> {
        if self.exit.is_some() {
            return Err(nix::errno::Errno::ESRCH);
        }
        signal::kill(Pid::from_raw(self.pid as i32), signal)
    }

    /// SIGTERM, then up to `grace` for the process to exit before SIGKILL (to
    /// its group, logged as a warning); how it ended.
    pub async fn stop(&mut self, grace: Duration) -> io::Result<ExitStatus> {
        if let Some(status) = self.exit {
            return Ok(status);
        }
        // ESRCH only means it is already gone; `wait` below collects it.
        let _ = self.signal(Signal::SIGTERM);
        tokio::select! {
            status = self.wait() => return status,
            _ = tokio::time::sleep(grace) => {}
        }
        log::warn!(
            "{} did not stop within {grace:?} of SIGTERM; killing it",
            self.name
        );
        self.kill_group();
        self.wait().await
    }

    /// SIGKILL to the child's whole group, unless it has been reaped: only
    /// until then is its pid (and so its group id) sure to be its own.
    fn kill_group(&mut self) {
        if self.exit.is_some() {
            return;
        }
        match self.process.try_wait() {
            // Not reaped: even if it exits this instant, its zombie keeps the id.
            Ok(None) => {
                let _ = signal::killpg(Pid::from_raw(self.pid as i32), Signal::SIGKILL);
            }
            Ok(Some(status)) => self.exit = Some(status),
            Err(_) => {}
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        // The group, for anything the child started; the child itself is also
        // killed and then reaped in the background by Tokio (`kill_on_drop`).
        self.kill_group();
    }
}
