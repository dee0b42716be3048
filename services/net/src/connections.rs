//! The connections of an mTLS server, once their handshake is done: each is
//! counted against its peer's identity ([`ConnectionLimiter`]), so one
//! certificate that parks connections cannot use up the process's open files and
//! lock every other caller out; and each can be told to stop reading
//! ([`ReadCutoff`]), which closes it once its current answer is written.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::caller::ConnectionIdentity;
use crate::identity::PeerIdentity;
use crate::metrics::transport::{transport, OpenConnection};

/// Default of the per-identity connection cap: far above what one worker or
/// client needs (a worker holds one keep-alive connection to its controller),
/// far below the open-file limit.
pub const DEFAULT_MAX_CONNECTIONS_PER_IDENTITY: usize = 256;

/// How often a refused identity's refusals are logged: once, then at most once
/// per this period with the number refused in between.
const REFUSAL_LOG_PERIOD: Duration = Duration::from_secs(10);

/// Whom a connection counts against: its certificate's identity, or for a
/// certificate without a usable identity, its IP address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LimitKey {
    /// A caller with a crank identity.
    Identity(PeerIdentity),
    /// A certificate from the fleet's CA without a usable identity, by address.
    Unidentified(IpAddr),
}

impl std::fmt::Display for LimitKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LimitKey::Identity(identity) => write!(f, "identity {identity}"),
            LimitKey::Unidentified(ip) => {
                write!(f, "certificates without a usable identity from {ip}")
            }
        }
    }
}

#[derive(Debug, Default)]
struct Entry {
    open: usize,
    last_logged: Option<Instant>,
    unlogged_refusals: u64,
}

/// Counts the open connections of each [`LimitKey`] across all of a server's
/// threads, and refuses one past the cap.
#[derive(Debug)]
pub struct ConnectionLimiter {
    max: usize,
    entries: Mutex<HashMap<LimitKey, Entry>>,
}

impl ConnectionLimiter {
    /// A limiter allowing `max` connections per key; 0 allows any number.
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(ConnectionLimiter {
            max,
            entries: Mutex::new(HashMap::new()),
        })
    }

    /// Counts a new connection of `key` from `peer`, or refuses it (logging
    /// the refusal, rate-limited per key) when `key` already holds the maximum.
    pub fn admit(
        self: &Arc<Self>,
        key: LimitKey,
        peer: Option<SocketAddr>,
    ) -> Option<ConnectionSlot> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let entry = entries.entry(key.clone()).or_default();
        if self.max > 0 && entry.open >= self.max {
            let now = Instant::now();
            let due = entry
                .last_logged
                .is_none_or(|at| now.duration_since(at) >= REFUSAL_LOG_PERIOD);
            if due {
                let earlier = match entry.unlogged_refusals {
                    0 => String::new(),
                    n => format!(" ({n} more refused since the last such line)"),
                };
                log::warn!(
                    "refused a connection from {} for {key}: it already holds {} connections (max_connections_per_identity); the connection is closed, its others are served{earlier}",
                    peer.map(|p| p.to_string())
                        .unwrap_or_else(|| "an unknown peer".into()),
                    entry.open,
                );
                entry.last_logged = Some(now);
                entry.unlogged_refusals = 0;
            } else {
                entry.unlogged_refusals += 1;
            }
            return None;
        }
        entry.open += 1;
        Some(ConnectionSlot {
            limiter: self.clone(),
            key,
        })
    }

    /// The open connections of `key`.
    pub fn open(&self, key: &LimitKey) -> usize {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.get(key).map_or(0, |entry| entry.open)
    }
}

/// One counted connection; dropping it (with the connection) frees its place.
#[derive(Debug)]
pub struct ConnectionSlot {
    limiter: Arc<ConnectionLimiter>,
    key: LimitKey,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut entries = self
            .limiter
            .entries
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = entries.get_mut(&self.key) {
            entry.open = entry.open.saturating_sub(1);
            if entry.open == 0 {
                entries.remove(&self.key);
            }
        }
    }
}

/// Tells a connection to stop reading: its current answer is written, then it
/// closes. Set when a request body missed its deadline, or was left unread.
#[derive(Debug, Clone, Default)]
pub struct ReadCutoff(Arc<AtomicBool>);

impl ReadCutoff {
    pub fn cut(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_cut(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// An accepted connection: the TLS stream, what its certificate says, its
/// place in the [`ConnectionLimiter`], and its [`ReadCutoff`]. Reads end (EOF)
/// once the cutoff is set.
pub struct Connection<S> {
    stream: S,
    pub peer: Option<SocketAddr>,
    pub identity: Option<ConnectionIdentity>,
    pub cutoff: ReadCutoff,
    _slot: Option<ConnectionSlot>,
    _open: OpenConnection,
}

impl<S> Connection<S> {
    pub fn new(
        stream: S,
        peer: Option<SocketAddr>,
        identity: Option<ConnectionIdentity>,
        slot: Option<ConnectionSlot>,
    ) -> Self {
        Connection {
            stream,
            peer,
            identity,
            cutoff: ReadCutoff::default(),
            _slot: slot,
            _open: transport().open_connection(),
        }
    }

    pub fn get_ref(&self) -> &S {
        &self.stream
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Connection<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.cutoff.is_cut() {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Connection<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Role;

    #[test]
    fn each_key_is_capped_alone_and_a_dropped_slot_frees_its_place() {
        let limiter = ConnectionLimiter::new(2);
        let cli = LimitKey::Identity(PeerIdentity::new(Role::Client, "cli"));
        let w1 = LimitKey::Identity(PeerIdentity::new(Role::Worker, "w1"));
        let a = limiter.admit(cli.clone(), None).unwrap();
        let _b = limiter.admit(cli.clone(), None).unwrap();
        assert!(limiter.admit(cli.clone(), None).is_none());
        assert!(limiter.admit(w1.clone(), None).is_some());
        assert_eq!(limiter.open(&cli), 2);
        drop(a);
        assert_eq!(limiter.open(&cli), 1);
        assert!(limiter.admit(cli.clone(), None).is_some());
        let unlimited = ConnectionLimiter::new(0);
        let slots: Vec<_> = (0..1000)
            .map(|_| unlimited.admit(cli.clone(), None).unwrap())
            .collect();
        assert_eq!(unlimited.open(&cli), 1000);
        drop(slots);
        assert_eq!(unlimited.open(&cli), 0);
    }
}
