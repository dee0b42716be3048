//! The load generator: [`run_load`] sends a phase's requests ([`Call`]s) over
//! keep-alive mTLS connections from several threads and tallies a [`Load`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::web::Bytes;
use anyhow::bail;
use rustls::ClientConfig;

use crate::error::flat;

/// One request of a load.
pub enum Call {
    Post(String, Bytes),
    Delete(String),
}

/// What a load phase measured.
#[derive(Default)]
pub struct Load {
    pub requests: u64,
    /// Requests that failed or were answered with other than 2xx.
    pub errors: u64,
    pub first_error: Option<String>,
    /// Every request's latency, sorted once the phase is over.
    pub latencies_us: Vec<u32>,
    pub elapsed: Duration,
}

impl Load {
    pub fn merge(&mut self, other: Load) {
        self.requests += other.requests;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.latencies_us.extend(other.latencies_us);
        self.elapsed = self.elapsed.max(other.elapsed);
    }

    /// The `q` quantile of the latencies (nearest rank), in milliseconds.
    pub fn percentile_ms(&self, q: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        // Nearest rank: the smallest sample with at least q of all at or below it.
        let len = self.latencies_us.len();
        let index = ((len as f64 * q).ceil() as usize)
            .saturating_sub(1)
            .min(len - 1);
        f64::from(self.latencies_us[index]) / 1000.0
    }

    /// Requests per second.
    pub fn throughput(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// When a load phase ends.
#[derive(Clone, Copy)]
pub enum Until {
    Elapsed(Duration),
    Requests(u64),
}

/// How requests are made: the n-th request of the phase (across all threads).
pub type MakeCall = Arc<dyn Fn(u64) -> Call + Send + Sync>;

/// An awc client of at most `connections` keep-alive connections.
pub fn client(tls: Arc<ClientConfig>, connections: usize) -> awc::Client {
    let connector = awc::Connector::new()
        .rustls_0_23(tls)
        .limit(connections)
        .timeout(Duration::from_secs(10));
    awc::Client::builder()
        .connector(connector)
        .timeout(Duration::from_secs(30))
        .finish()
}

/// `tls` with TLS session resumption turned off: every connection made with it
/// pays a full handshake (key exchange, certificates sent and verified both ways).
pub fn without_resumption(tls: &Arc<ClientConfig>) -> Arc<ClientConfig> {
    let mut config = (**tls).clone();
    config.resumption = rustls::client::Resumption::disabled();
    Arc::new(config)
}

/// Runs `make`'s requests against `base` from `threads` threads with
/// `connections` connections in all. `fresh_connections` opens a new connection
/// for every request and closes it after the answer, without resuming a TLS
/// session, so every request pays a full handshake.
pub fn run_load(
    base: &str,
    tls: Arc<ClientConfig>,
    connections: usize,
    threads: usize,
    until: Until,
    fresh_connections: bool,
    make: MakeCall,
) -> Load {
    let threads = threads.clamp(1, connections.max(1));
    // Fresh connections must pay full handshakes: no session resumption.
    let tls = if fresh_connections {
        without_resumption(&tls)
    } else {
        tls
    };
    let sequence = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let per_thread = connections / threads + usize::from(t < connections % threads);
            let (base, tls, make, sequence) =
                (base.to_owned(), tls.clone(), make.clone(), sequence.clone());
            std::thread::spawn(move || {
                actix_rt::System::new().block_on(async move {
                    let client = client(tls, per_thread);
                    let tasks = (0..per_thread).map(|_| {
                        let (client, base, make, sequence) =
                            (client.clone(), base.clone(), make.clone(), sequence.clone());
                        async move {
                            let mut load = Load::default();
                            loop {
                                let n = sequence.fetch_add(1, Ordering::Relaxed);
                                let done = match until {
                                    Until::Elapsed(d) => started.elapsed() >= d,
                                    Until::Requests(total) => n >= total,
                                };
                                if done {
                                    break;
                                }
                                let call = make(n);
                                let sent_at = Instant::now();
                                let outcome = send(&client, &base, call, fresh_connections).await;
                                load.latencies_us.push(
                                    sent_at.elapsed().as_micros().min(u32::MAX as u128) as u32,
                                );
                                load.requests += 1;
                                if let Err(e) = outcome {
                                    load.errors += 1;
                                    load.first_error.get_or_insert_with(|| format!("{e:#}"));
                                }
                            }
                            load
                        }
                    });
                    let mut total = Load::default();
                    for load in futures_util::future::join_all(tasks).await {
                        total.merge(load);
                    }
                    total
                })
            })
        })
        .collect();
    let mut load = Load::default();
    for handle in handles {
        load.merge(handle.join().expect("a load thread panicked"));
    }
    load.elapsed = started.elapsed();
    load.latencies_us.sort_unstable();
    load
}

/// Sends one request. A failure is counted, and the first of a phase is kept
/// for its row ([`Load::first_error`]).
async fn send(client: &awc::Client, base: &str, call: Call, fresh: bool) -> anyhow::Result<()> {
    let mut request = match &call {
        Call::Post(path, _) => client
            .post(format!("{base}{path}"))
            .insert_header(("content-type", "application/json")),
        Call::Delete(path) => client.delete(format!("{base}{path}")),
    };
    if fresh {
        // Not a `Connection: close` header: awc's encoder drops that header and
        // keeps the connection in its pool, which is how register-storm once
        // measured keep-alive requests while claiming fresh connections.
        request = request.force_close();
    }
    let sent = match call {
        Call::Post(_, body) => request.send_body(body).await,
        Call::Delete(_) => request.send().await,
    };
    let mut response = sent.map_err(flat)?;
    let body = response.body().await.map_err(flat)?;
    if response.status().is_success() {
        Ok(())
    } else {
        bail!(
            "HTTP {}: {}",
            response.status(),
            String::from_utf8_lossy(&body)
        )
    }
}
