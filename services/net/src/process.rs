//! What every crank process shares at start and stop: [`StartError`],
//! [`ShutdownSignals`], and lifting the open-file limit.

use crate::tls::TlsError;

/// Why a process could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: String,
        source: std::io::Error,
    },
    #[error("server failed: {0}")]
    Serve(std::io::Error),
    #[error("tracing: {0}")]
    Tracing(String),
}

/// Maps a failure to listen on `address` to the error naming it.
pub fn bind_error(address: &str) -> impl Fn(std::io::Error) -> StartError + Copy + '_ {
    move |source| StartError::Bind {
        address: address.to_owned(),
        source,
    }
}

/// Lifts the soft limit on open files to the hard limit: every worker holds a
/// keep-alive connection to its controller, and the default soft limit of 1024
/// would cap a controller at about a thousand workers.
pub fn raise_open_file_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            if let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
                log::warn!("could not raise the open-file limit from {soft} to {hard}: {e}; the controller can hold about {soft} connections");
            }
        }
    }
}

/// SIGTERM and SIGINT listeners. Install them before anything that must be
/// shut down in order starts: until then the default disposition would kill the
/// process on the spot.
pub struct ShutdownSignals {
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    pub fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(ShutdownSignals {
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }

    /// Resolves on the next SIGTERM or SIGINT, naming which.
    pub async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.terminate.recv() => "SIGTERM",
            _ = self.interrupt.recv() => "SIGINT",
        }
    }
}
