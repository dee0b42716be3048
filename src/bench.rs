//! `crank bench`: load over real mTLS with keep-alive connections, against a
//! controller it starts itself (the same binary and settings as `crank
//! controller`) or one named by `--controller-url`. It prints a table, or one
//! JSON object per scenario with `--json`, and can write BENCHMARKS.md.
//!
//! Every scenario's throughput is also given as a ratio to `baseline`: the same
//! load against a bare endpoint on the same TLS stack that parses the same JSON
//! and answers `{}`, measured in the same invocation, so the figures say what the
//! registry costs on top of its transport on this machine.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::web::Bytes;
use crank_services::tls::{client_config, client_config_for, ExpectedPeer, TlsFiles};
use rustls::ClientConfig;
use serde_json::{json, Map, Value};

/// A benchmark scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// The transport's ceiling: a bare mTLS endpoint that parses a heartbeat and answers {}.
    Baseline,
    /// Heartbeats spread over all registered workers.
    Heartbeat,
    /// Routes over the capabilities of the registered workers.
    Route,
    /// 90 % heartbeat, 9 % route, 1 % register/deregister churn.
    Mixed,
    /// Workers registering at once on fresh connections (full handshakes).
    RegisterStorm,
    /// 100,000 workers: controller RSS, sweep time, route latency at that size.
    Scale,
    /// An idle hello-world worker: its RSS and the CPU its heartbeat loop costs.
    IdleWorker,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::Baseline => "baseline",
            Scenario::Heartbeat => "heartbeat",
            Scenario::Route => "route",
            Scenario::Mixed => "mixed",
            Scenario::RegisterStorm => "register-storm",
            Scenario::Scale => "scale",
            Scenario::IdleWorker => "idle-worker",
        }
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct BenchFlags {
    /// Scenarios to run, in order [default: baseline heartbeat route mixed].
    #[arg(value_enum)]
    pub scenarios: Vec<Scenario>,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// How long each load phase runs.
    #[arg(long, default_value = "10s", value_parser = crank_services::config::parse_duration)]
    pub duration: Duration,
    /// Workers registered before heartbeat, route and mixed; the size of register-storm.
    #[arg(long, default_value_t = 10_000)]
    pub workers: usize,
    /// Distinct capabilities the workers serve.
    #[arg(long, default_value_t = 10)]
    pub capabilities: usize,
    /// Workers in the scale scenario.
    #[arg(long, default_value_t = 100_000)]
    pub scale_workers: usize,
    /// Client threads generating load.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Load an existing controller instead of starting one (needs --cert-dir with admin.crt).
    #[arg(long)]
    pub controller_url: Option<String>,
    /// Certificates to use; default: a fresh set in a temporary directory.
    #[arg(long)]
    pub cert_dir: Option<PathBuf>,
    /// One JSON object per scenario per line.
    #[arg(long)]
    pub json: bool,
    /// Also write a Markdown report (machine, command, table) to this file.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Run the whole list this many times and report, per scenario, the round
    /// with the median ratio to that round's own baseline (or median throughput).
    #[arg(long, default_value_t = 1)]
    pub repeat: usize,
}

/// One request of a load.
enum Call {
    Post(String, Bytes),
    Delete(String),
}

/// What a load phase measured.
#[derive(Default)]
struct Load {
    requests: u64,
    errors: u64,
    first_error: Option<String>,
    latencies_us: Vec<u32>,
    elapsed: Duration,
}

impl Load {
    fn merge(&mut self, other: Load) {
        self.requests += other.requests;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.latencies_us.extend(other.latencies_us);
        self.elapsed = self.elapsed.max(other.elapsed);
    }

    fn percentile_ms(&self, q: f64) -> f64 {
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

    fn throughput(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// When a load phase ends.
#[derive(Clone, Copy)]
enum Until {
    Elapsed(Duration),
    Requests(u64),
}

/// How requests are made: the n-th request of the phase (across all threads).
type MakeCall = Arc<dyn Fn(u64) -> Call + Send + Sync>;

fn client(tls: Arc<ClientConfig>, connections: usize) -> awc::Client {
    let connector = awc::Connector::new()
        .rustls_0_23(tls)
        .limit(connections)
        .timeout(Duration::from_secs(10));
    awc::Client::builder()
        .connector(connector)
        .timeout(Duration::from_secs(30))
        .finish()
}

/// Runs `make`'s requests against `base` from `threads` threads with
/// `connections` connections in all. `fresh_connections` closes each connection
/// after one request, so every request pays a full handshake.
fn run_load(
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
        let mut config = (*tls).clone();
        config.resumption = rustls::client::Resumption::disabled();
        Arc::new(config)
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
                                    load.first_error.get_or_insert(e);
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

async fn send(client: &awc::Client, base: &str, call: Call, fresh: bool) -> Result<(), String> {
    let mut request = match &call {
        Call::Post(path, _) => client
            .post(format!("{base}{path}"))
            .insert_header(("content-type", "application/json")),
        Call::Delete(path) => client.delete(format!("{base}{path}")),
    };
    if fresh {
        request = request.insert_header(("connection", "close"));
    }
    let sent = match call {
        Call::Post(_, body) => request.send_body(body).await,
        Call::Delete(_) => request.send().await,
    };
    let mut response = sent.map_err(|e| e.to_string())?;
    let body = response.body().await.map_err(|e| e.to_string())?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!(
            "HTTP {}: {}",
            response.status(),
            String::from_utf8_lossy(&body)
        ))
    }
}

fn registration(id: &str, capabilities: &[usize]) -> Bytes {
    let capabilities: Vec<Value> = capabilities
        .iter()
        .map(|c| json!({"name": format!("bench.cap{c}"), "verb": "invoke", "version": "1.0.0"}))
        .collect();
    Bytes::from(
        json!({"worker_id": id, "worker_url": format!("https://{id}.bench.local:8500"), "capabilities": capabilities})
            .to_string(),
    )
}

fn heartbeat(id: &str) -> Bytes {
    Bytes::from(json!({"worker_id": id}).to_string())
}

fn route(capability: usize) -> Bytes {
    Bytes::from(
        json!({"verb": "invoke", "capability": format!("bench.cap{capability}")}).to_string(),
    )
}

/// Registers workers `from..to` (ids `prefix-N`), each with `per_worker`
/// capabilities out of `capabilities`.
fn register_workers(
    target: &Target,
    flags: &BenchFlags,
    prefix: &str,
    (from, to): (usize, usize),
    (per_worker, capabilities): (usize, usize),
) -> Result<(), String> {
    let owned = prefix.to_owned();
    let capabilities = capabilities.max(1);
    let per_worker = per_worker.min(capabilities);
    let make: MakeCall = Arc::new(move |n| {
        let prefix = &owned;
        let i = from + n as usize;
        let caps: Vec<usize> = (0..per_worker).map(|k| (i + k) % capabilities).collect();
        Call::Post(
            "/register".into(),
            registration(&format!("{prefix}-{i}"), &caps),
        )
    });
    let load = run_load(
        &target.url,
        target.tls.clone(),
        flags.connections,
        flags.threads,
        Until::Requests((to - from) as u64),
        false,
        make,
    );
    match load.first_error {
        Some(e) => Err(format!(
            "registering {prefix}-{from}..{to}: {} errors, first: {e}",
            load.errors
        )),
        None => Ok(()),
    }
}

/// A process under load: a controller or the baseline endpoint.
struct Target {
    url: String,
    tls: Arc<ClientConfig>,
    child: Option<Child>,
}

impl Target {
    fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn cpu_seconds(&self) -> Option<f64> {
        self.pid().and_then(process_cpu_seconds)
    }

    fn peak_rss_mb(&self) -> Option<f64> {
        self.pid()
            .and_then(|pid| proc_status_kb(pid, "VmHWM:"))
            .map(|kb| kb / 1024.0)
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// CPU time a process has used, in seconds: the sum over its threads of
/// `/proc/<pid>/task/*/schedstat`, which counts nanoseconds (`/proc/<pid>/stat`
/// counts 10 ms ticks, too coarse for an idle worker). Threads that exited are
/// not counted, so the processes measured avoid short-lived threads (the idle
/// worker reaches its controller by IP: no DNS lookup thread).
fn process_cpu_seconds(pid: u32) -> Option<f64> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut nanos: Option<u64> = None;
    for task in tasks.flatten() {
        let stat = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
        if let Some(n) = stat
            .split_whitespace()
            .next()
            .and_then(|n| n.parse::<u64>().ok())
        {
            *nanos.get_or_insert(0) += n;
        }
    }
    nanos.map(|n| n as f64 / 1e9)
}

fn proc_status_kb(pid: u32, key: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

/// Starts `crank <args>` and waits until `GET /health` answers.
fn start_target(
    args: &[String],
    port: u16,
    tls: Arc<ClientConfig>,
    log: &Path,
) -> Result<Target, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let log_file = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let child = Command::new(exe)
        .args(args)
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
        )
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().map_err(|e| e.to_string())?)
        .stderr(log_file)
        .spawn()
        .map_err(|e| format!("cannot start {args:?}: {e}"))?;
    let target = Target {
        url: format!("https://localhost:{port}"),
        tls,
        child: Some(child),
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let url = format!("{}/health", target.url);
    let tls = target.tls.clone();
    let ready = actix_rt::System::new().block_on(async move {
        let client = client(tls, 1);
        while Instant::now() < deadline {
            if let Ok(response) = client.get(&url).send().await {
                if response.status().is_success() {
                    return true;
                }
            }
            actix_rt::time::sleep(Duration::from_millis(50)).await;
        }
        false
    });
    if ready {
        Ok(target)
    } else {
        Err(format!(
            "{args:?} did not answer within 20 s; see {}",
            log.display()
        ))
    }
}

/// Where the load goes: certificates, and controllers started on demand.
struct Bench {
    flags: BenchFlags,
    cert_dir: PathBuf,
    /// The temporary certificates and logs, removed on success.
    _temp: Option<tempfile::TempDir>,
    tls: Arc<ClientConfig>,
}

impl Bench {
    fn new(flags: BenchFlags) -> Result<Self, String> {
        let (cert_dir, temp) = match &flags.cert_dir {
            Some(dir) => (dir.clone(), None),
            None if flags.controller_url.is_some() => (PathBuf::from("certs"), None),
            None => {
                let temp = tempfile::tempdir().map_err(|e| e.to_string())?;
                let dir = temp.path().join("certs");
                crank_services::certs::init(&dir, false).map_err(|e| e.to_string())?;
                (dir, Some(temp))
            }
        };
        let tls = client_config(&TlsFiles::in_dir(&cert_dir, "admin"))
            .map_err(|e| format!("{e} (the bench acts as admin)"))?;
        Ok(Bench {
            flags,
            cert_dir,
            _temp: temp,
            tls: Arc::new(tls),
        })
    }

    fn log_path(&self, name: &str) -> PathBuf {
        self.cert_dir
            .parent()
            .unwrap_or(Path::new("."))
            .join(format!("bench-{name}.log"))
    }

    /// A fresh controller with `crank controller`'s defaults, or the one named.
    fn controller(&self) -> Result<Target, String> {
        if let Some(url) = &self.flags.controller_url {
            return Ok(Target {
                url: url.trim_end_matches('/').to_owned(),
                tls: self.tls.clone(),
                child: None,
            });
        }
        let port = free_port()?;
        let args = [
            "controller",
            "--port",
            &port.to_string(),
            "--cert-dir",
            &self.cert_dir.to_string_lossy(),
        ]
        .map(String::from);
        start_target(&args, port, self.tls.clone(), &self.log_path("controller"))
    }

    fn baseline_endpoint(&self) -> Result<Target, String> {
        let port = free_port()?;
        let args = [
            "bench-baseline",
            "--port",
            &port.to_string(),
            "--cert-dir",
            &self.cert_dir.to_string_lossy(),
        ]
        .map(String::from);
        start_target(&args, port, self.tls.clone(), &self.log_path("baseline"))
    }

    fn load(&self, target: &Target, until: Until, make: MakeCall) -> Load {
        run_load(
            &target.url,
            target.tls.clone(),
            self.flags.connections,
            self.flags.threads,
            until,
            false,
            make,
        )
    }
}

/// One scenario's row.
struct Row {
    scenario: &'static str,
    load: Load,
    cpu_s: Option<f64>,
    rss_mb: Option<f64>,
    extra: Map<String, Value>,
}

/// Heartbeats cycling over workers `prefix-0 .. prefix-(workers-1)`.
fn heartbeat_calls(prefix: &str, workers: usize) -> MakeCall {
    let bodies: Arc<Vec<Bytes>> = Arc::new(
        (0..workers.max(1))
            .map(|i| heartbeat(&format!("{prefix}-{i}")))
            .collect(),
    );
    Arc::new(move |n| {
        Call::Post(
            "/heartbeat".into(),
            bodies[n as usize % bodies.len()].clone(),
        )
    })
}

fn route_calls(capabilities: usize) -> MakeCall {
    let bodies: Arc<Vec<Bytes>> = Arc::new((0..capabilities.max(1)).map(route).collect());
    Arc::new(move |n| Call::Post("/route".into(), bodies[n as usize % bodies.len()].clone()))
}

fn mixed_calls(workers: usize, capabilities: usize) -> MakeCall {
    let heartbeats = heartbeat_calls("bench", workers);
    let routes = route_calls(capabilities);
    Arc::new(move |n| match n % 100 {
        // Churn: the n-th hundred registers churn-k, the next one deregisters it.
        0 => {
            let k = n / 200;
            if (n / 100) % 2 == 0 {
                Call::Post(
                    "/register".into(),
                    registration(&format!("churn-{k}"), &[0]),
                )
            } else {
                Call::Delete(format!("/deregister/churn-{k}"))
            }
        }
        1..=9 => routes(n),
        _ => heartbeats(n),
    })
}

fn measured<T>(
    target: &Target,
    run: impl FnOnce() -> Result<T, String>,
) -> Result<(T, Option<f64>), String> {
    let before = target.cpu_seconds();
    let value = run()?;
    let cpu = target
        .cpu_seconds()
        .zip(before)
        .map(|(after, before)| after - before);
    Ok((value, cpu))
}

fn run_scenario(bench: &Bench, scenario: Scenario) -> Result<Row, String> {
    let flags = &bench.flags;
    let until = Until::Elapsed(flags.duration);
    let row = |load, target: &Target, cpu, extra| Row {
        scenario: scenario.name(),
        load,
        cpu_s: cpu,
        rss_mb: target.peak_rss_mb(),
        extra,
    };
    match scenario {
        Scenario::Baseline => {
            let target = bench.baseline_endpoint()?;
            let (load, cpu) = measured(&target, || {
                Ok(bench.load(&target, until, heartbeat_calls("bench", flags.workers)))
            })?;
            Ok(row(load, &target, cpu, Map::new()))
        }
        Scenario::Heartbeat | Scenario::Route | Scenario::Mixed => {
            let target = bench.controller()?;
            register_workers(
                &target,
                flags,
                "bench",
                (0, flags.workers),
                (1, flags.capabilities),
            )?;
            let make = match scenario {
                Scenario::Heartbeat => heartbeat_calls("bench", flags.workers),
                Scenario::Route => route_calls(flags.capabilities),
                _ => mixed_calls(flags.workers, flags.capabilities),
            };
            let (load, cpu) = measured(&target, || Ok(bench.load(&target, until, make)))?;
            let mut extra = Map::new();
            extra.insert("workers".into(), json!(flags.workers));
            Ok(row(load, &target, cpu, extra))
        }
        Scenario::RegisterStorm => {
            let target = bench.controller()?;
            let workers = flags.workers;
            let make: MakeCall = Arc::new(move |n| {
                Call::Post(
                    "/register".into(),
                    registration(&format!("storm-{n}"), &[0]),
                )
            });
            let (load, cpu) = measured(&target, || {
                Ok(run_load(
                    &target.url,
                    target.tls.clone(),
                    flags.connections,
                    flags.threads,
                    Until::Requests(workers as u64),
                    true,
                    make,
                ))
            })?;
            let stats = controller_stats(&target)?;
            let mut extra = Map::new();
            extra.insert("workers".into(), json!(workers));
            extra.insert("registered".into(), stats["workers"].clone());
            extra.insert(
                "time_to_register_all_s".into(),
                json!(load.elapsed.as_secs_f64()),
            );
            Ok(row(load, &target, cpu, extra))
        }
        Scenario::Scale => scale(bench),
        Scenario::IdleWorker => idle_worker(bench),
    }
}

fn controller_stats(target: &Target) -> Result<Value, String> {
    let url = format!("{}/stats", target.url);
    let tls = target.tls.clone();
    actix_rt::System::new().block_on(async move {
        let mut response = client(tls, 1)
            .get(&url)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        response.json::<Value>().await.map_err(|e| e.to_string())
    })
}

/// Waits for the sweeper to run at least once more, and returns the stats after it.
fn after_next_sweep(target: &Target) -> Result<Value, String> {
    let before = controller_stats(target)?["sweeps"].as_u64().unwrap_or(0);
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let stats = controller_stats(target)?;
        if stats["sweeps"].as_u64().unwrap_or(0) > before {
            return Ok(stats);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Err("the controller did not sweep within 30 s".into())
}

fn scale(bench: &Bench) -> Result<Row, String> {
    let flags = &bench.flags;
    let target = bench.controller()?;
    let small = 1_000.min(flags.scale_workers);
    let until = Until::Elapsed(flags.duration);
    let capabilities = flags.capabilities.max(2);
    register_workers(&target, flags, "scale", (0, small), (2, capabilities))?;
    let at_small = bench.load(&target, until, route_calls(capabilities));
    let (_, cpu) = measured(&target, || {
        register_workers(
            &target,
            flags,
            "scale",
            (small, flags.scale_workers),
            (2, capabilities),
        )
    })?;
    let stats = after_next_sweep(&target)?;
    let (at_scale, route_cpu) = measured(&target, || {
        Ok(bench.load(&target, until, route_calls(capabilities)))
    })?;
    // Heartbeats while sweeps run: the longest wait is the worst stall.
    let beats = bench.load(
        &target,
        until,
        heartbeat_calls("scale", flags.scale_workers),
    );
    let stats_after = controller_stats(&target)?;
    let mut extra = Map::new();
    extra.insert("workers".into(), stats["workers"].clone());
    extra.insert("sweep_ms".into(), stats["last_sweep_ms"].clone());
    extra.insert("max_sweep_ms".into(), stats_after["max_sweep_ms"].clone());
    extra.insert(
        "route_p99_ms_at_1000".into(),
        json!(at_small.percentile_ms(0.99)),
    );
    extra.insert(
        "route_p99_ms_at_scale".into(),
        json!(at_scale.percentile_ms(0.99)),
    );
    extra.insert(
        "route_p99_ratio".into(),
        json!(at_scale.percentile_ms(0.99) / at_small.percentile_ms(0.99).max(1e-9)),
    );
    extra.insert(
        "heartbeat_max_ms_at_scale".into(),
        json!(beats.percentile_ms(1.0)),
    );
    extra.insert(
        "heartbeat_throughput_at_scale".into(),
        json!(beats.throughput()),
    );
    extra.insert("registration_cpu_s".into(), json!(cpu));
    Ok(Row {
        scenario: "scale",
        cpu_s: route_cpu,
        rss_mb: target.peak_rss_mb(),
        load: at_scale,
        extra,
    })
}

fn idle_worker(bench: &Bench) -> Result<Row, String> {
    // Two idle workers side by side: one standalone, one heartbeating every 6 s
    // (longer than nothing, shorter than the default so the window sees several
    // beats). The difference in CPU is what the registration and heartbeat
    // loop costs; the rest (actix's timers) an idle worker pays anyway.
    const INTERVAL_S: f64 = 6.0;
    let controller = bench.controller()?;
    let controller_ip_url = controller.url.replace("://localhost:", "://127.0.0.1:");
    let cert_dir = bench.cert_dir.to_string_lossy().into_owned();
    let (port, alone_port) = (free_port()?, free_port()?);
    // Both serve with hello-world-1's certificate; a client checks that it
    // reaches that worker, not merely someone of the fleet.
    let worker_tls = Arc::new(
        client_config_for(
            &TlsFiles::in_dir(&bench.cert_dir, "admin"),
            ExpectedPeer::Worker("hello-world-1".into()),
        )
        .map_err(|e| e.to_string())?,
    );
    let registered = start_target(
        &[
            "worker",
            "--port",
            &port.to_string(),
            "--cert-dir",
            &cert_dir,
            "--controller-url",
            &controller_ip_url,
            "--heartbeat-interval",
            "6s",
        ]
        .map(String::from),
        port,
        worker_tls.clone(),
        &bench.log_path("worker"),
    )?;
    let standalone = start_target(
        &[
            "worker",
            "--port",
            &alone_port.to_string(),
            "--cert-dir",
            &cert_dir,
            "--worker-id",
            "standalone",
            "--cert",
            "hello-world-1",
        ]
        .map(String::from),
        alone_port,
        worker_tls.clone(),
        &bench.log_path("standalone-worker"),
    )?;
    std::thread::sleep(Duration::from_secs(1));
    let cpu = |target: &Target| {
        target
            .cpu_seconds()
            .ok_or("cannot read a worker's CPU time")
    };
    let (before, alone_before) = (cpu(&registered)?, cpu(&standalone)?);
    let controller_before = controller.cpu_seconds();
    let window = bench.flags.duration * 3;
    std::thread::sleep(window);
    let used = cpu(&registered)? - before;
    let alone = cpu(&standalone)? - alone_before;
    let beats = window.as_secs_f64() / INTERVAL_S;
    let per_beat_ms = ((used - alone) * 1000.0 / beats).max(0.0);
    let mut extra = Map::new();
    extra.insert("window_s".into(), json!(window.as_secs_f64()));
    extra.insert("heartbeat_interval_s".into(), json!(INTERVAL_S));
    extra.insert(
        "worker_rss_mb".into(),
        json!(registered
            .pid()
            .and_then(|p| proc_status_kb(p, "VmRSS:"))
            .map(|kb| kb / 1024.0)),
    );
    extra.insert("worker_peak_rss_mb".into(), json!(registered.peak_rss_mb()));
    extra.insert(
        "worker_cpu_ms_per_minute".into(),
        json!(used * 1000.0 * 60.0 / window.as_secs_f64()),
    );
    extra.insert(
        "standalone_worker_cpu_ms_per_minute".into(),
        json!(alone * 1000.0 * 60.0 / window.as_secs_f64()),
    );
    extra.insert("heartbeat_cpu_ms_per_beat".into(), json!(per_beat_ms));
    extra.insert(
        "heartbeat_loop_cpu_ms_per_minute_at_30s".into(),
        json!(per_beat_ms * 2.0),
    );
    Ok(Row {
        scenario: "idle-worker",
        load: Load::default(),
        cpu_s: controller
            .cpu_seconds()
            .zip(controller_before)
            .map(|(after, before)| after - before),
        rss_mb: controller.peak_rss_mb(),
        extra,
    })
}

fn row_json(row: &Row, baseline: Option<f64>) -> Value {
    let mut value = json!({
        "scenario": row.scenario,
        "requests": row.load.requests,
        "errors": row.load.errors,
        "throughput": row.load.throughput(),
        "p50_ms": row.load.percentile_ms(0.50),
        "p99_ms": row.load.percentile_ms(0.99),
        "p999_ms": row.load.percentile_ms(0.999),
        "ratio_to_baseline": baseline.map(|b| row.load.throughput() / b),
        "controller_cpu_s": row.cpu_s,
        "controller_rss_mb": row.rss_mb,
    });
    if let Some(error) = &row.load.first_error {
        value["first_error"] = json!(error);
    }
    for (key, extra) in &row.extra {
        value[key] = extra.clone();
    }
    value
}

/// The round whose ratio to its own baseline (else throughput) is the median.
fn median_round(mut rounds: Vec<Value>) -> Value {
    let key = |row: &Value| {
        row["ratio_to_baseline"]
            .as_f64()
            .or_else(|| row["throughput"].as_f64())
            .unwrap_or(0.0)
    };
    rounds.sort_by(|a, b| key(a).total_cmp(&key(b)));
    let count = rounds.len();
    let mut chosen = rounds.swap_remove(count / 2);
    if count > 1 {
        chosen["rounds"] = json!(count);
    }
    chosen
}

fn fmt_opt(value: Option<f64>, digits: usize) -> String {
    value
        .map(|v| format!("{v:.digits$}"))
        .unwrap_or_else(|| "-".into())
}

fn table(rows: &[Value]) -> String {
    let mut out = String::from(
        "| scenario | requests | errors | throughput/s | p50 ms | p99 ms | p99.9 ms | × baseline | ctl CPU s | ctl RSS MB |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for row in rows {
        out.push_str(&format!(
            "| {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {} | {} | {} |\n",
            row["scenario"].as_str().unwrap_or("?"),
            row["requests"],
            row["errors"],
            row["throughput"].as_f64().unwrap_or(0.0),
            row["p50_ms"].as_f64().unwrap_or(0.0),
            row["p99_ms"].as_f64().unwrap_or(0.0),
            row["p999_ms"].as_f64().unwrap_or(0.0),
            fmt_opt(row["ratio_to_baseline"].as_f64(), 2),
            fmt_opt(row["controller_cpu_s"].as_f64(), 2),
            fmt_opt(row["controller_rss_mb"].as_f64(), 1),
        ));
    }
    out
}

/// The keys every row has (`row_json`); anything else is a scenario's extra.
const STANDARD_KEYS: [&str; 10] = [
    "scenario",
    "requests",
    "errors",
    "throughput",
    "p50_ms",
    "p99_ms",
    "p999_ms",
    "ratio_to_baseline",
    "controller_cpu_s",
    "controller_rss_mb",
];

fn extras(rows: &[Value]) -> String {
    let mut out = String::new();
    for row in rows {
        let details: Vec<String> = row
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, _)| !STANDARD_KEYS.contains(&k.as_str()))
            .map(|(k, v)| match v.as_f64() {
                Some(f) if v.is_f64() => format!("{k} = {f:.3}"),
                _ => format!("{k} = {v}"),
            })
            .collect();
        if !details.is_empty() {
            out.push_str(&format!(
                "- **{}**: {}\n",
                row["scenario"].as_str().unwrap_or("?"),
                details.join(", ")
            ));
        }
    }
    out
}

/// The targets of the benchmark issue, checked against this run's rows.
fn targets(rows: &[Value]) -> String {
    let find = |name: &str| rows.iter().find(|r| r["scenario"] == name);
    let number = |row: Option<&Value>, key: &str| row.and_then(|r| r[key].as_f64());
    // Against the baseline of the row's own round where it has one.
    let baseline_p99 = |row: Option<&Value>| {
        number(row, "round_baseline_p99_ms").or_else(|| number(find("baseline"), "p99_ms"))
    };
    let mut lines = Vec::new();
    let mut check = |what: String, measured: Option<f64>, ok: fn(f64) -> bool, unit: &str| {
        let line = match measured {
            Some(value) => format!(
                "- {} {what}: {value:.2}{unit}",
                if ok(value) { "met:" } else { "MISSED:" }
            ),
            None => format!("- not measured in this run: {what}"),
        };
        lines.push(line);
    };
    for name in ["heartbeat", "route"] {
        check(
            format!("{name} throughput ≥ 0.9 × baseline"),
            number(find(name), "ratio_to_baseline"),
            |r| r >= 0.9,
            "×",
        );
        check(
            format!("{name} p99 ≤ 1.5 × baseline's"),
            number(find(name), "p99_ms")
                .zip(baseline_p99(find(name)))
                .map(|(p, b)| p / b),
            |r| r <= 1.5,
            "×",
        );
    }
    check(
        "mixed throughput ≥ 0.85 × baseline".into(),
        number(find("mixed"), "ratio_to_baseline"),
        |r| r >= 0.85,
        "×",
    );
    check(
        "scale: controller RSS ≤ 150 MB".into(),
        number(find("scale"), "controller_rss_mb"),
        |m| m <= 150.0,
        " MB",
    );
    check(
        "scale: longest sweep (the longest stall) ≤ 20 ms".into(),
        number(find("scale"), "max_sweep_ms"),
        |m| m <= 20.0,
        " ms",
    );
    check(
        "scale: route p99 at scale ≤ 1.2 × at 1,000".into(),
        number(find("scale"), "route_p99_ratio"),
        |r| r <= 1.2,
        "×",
    );
    let storm = find("register-storm");
    check(
        "register-storm: every worker registered, zero errors (unregistered + errors)".into(),
        storm.map(|r| {
            let missing =
                r["workers"].as_f64().unwrap_or(0.0) - r["registered"].as_f64().unwrap_or(0.0);
            missing + r["errors"].as_f64().unwrap_or(0.0)
        }),
        |n| n == 0.0,
        "",
    );
    check(
        "idle worker RSS ≤ 20 MB".into(),
        number(find("idle-worker"), "worker_rss_mb"),
        |m| m <= 20.0,
        " MB",
    );
    check(
        "idle worker heartbeat loop < 1 ms CPU per minute at 30 s".into(),
        number(
            find("idle-worker"),
            "heartbeat_loop_cpu_ms_per_minute_at_30s",
        ),
        |m| m < 1.0,
        " ms",
    );
    lines.join("\n") + "\n"
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let memory = proc_meminfo_gib()
        .map(|g| format!("{g:.0} GiB"))
        .unwrap_or_else(|| "? GiB".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{cores} cores ({cpu}), {memory} RAM, Linux {}",
        kernel.trim()
    )
}

fn proc_meminfo_gib() -> Option<f64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kb: f64 = info
        .lines()
        .find(|l| l.starts_with("MemTotal:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb / 1024.0 / 1024.0)
}

pub fn bench(mut flags: BenchFlags) -> Result<(), String> {
    if flags.scenarios.is_empty() {
        flags.scenarios = vec![
            Scenario::Baseline,
            Scenario::Heartbeat,
            Scenario::Route,
            Scenario::Mixed,
        ];
    }
    if flags.connections == 0 || flags.workers == 0 || flags.scale_workers == 0 {
        return Err("--connections, --workers and --scale-workers must be at least 1".into());
    }
    let report = flags.report.clone();
    let json_output = flags.json;
    let scenarios = flags.scenarios.clone();
    let mut bench = Bench::new(flags)?;
    let rounds = bench.flags.repeat.max(1);
    let mut measured: Vec<Vec<Value>> = vec![Vec::new(); scenarios.len()];
    for round in 1..=rounds {
        let mut baseline = None;
        for (k, scenario) in scenarios.iter().copied().enumerate() {
            if !json_output {
                eprintln!("round {round}/{rounds}: running {} …", scenario.name());
            }
            let row = match run_scenario(&bench, scenario) {
                Ok(row) => row,
                Err(e) => {
                    // Keep the children's logs that the error points at.
                    if let Some(temp) = bench._temp.take() {
                        let _ = temp.keep();
                    }
                    return Err(format!("{}: {e}", scenario.name()));
                }
            };
            if scenario == Scenario::Baseline {
                baseline = Some((row.load.throughput(), row.load.percentile_ms(0.99)));
            }
            let ratio_base = baseline.map(|(t, _)| t).filter(|_| row.load.requests > 0);
            let mut value = row_json(&row, ratio_base);
            // Rows of different rounds are shown together: each carries the
            // baseline it is compared with.
            if let (Some((throughput, p99)), true) = (baseline, scenario != Scenario::Baseline) {
                value["round_baseline_throughput"] = json!(throughput);
                value["round_baseline_p99_ms"] = json!(p99);
            }
            measured[k].push(value);
        }
    }
    let rows: Vec<Value> = measured.into_iter().map(median_round).collect();
    if json_output {
        for row in &rows {
            println!("{row}");
        }
    }
    if !json_output {
        print!("{}", table(&rows));
        print!("{}", extras(&rows));
    }
    if let Some(path) = report {
        let command: Vec<String> = std::env::args().collect();
        let text = format!(
            "# crank benchmarks\n\nRegenerated, every word and figure, by:\n\n```sh\ncargo build --release && target/release/crank bench baseline heartbeat route mixed register-storm scale idle-worker --repeat 3 --report BENCHMARKS.md\n```\n\n- machine: {}\n- date: {}\n- command: `{}`\n- load: {} keep-alive mTLS connections from {} client threads on the same machine, {:?} per phase; {} workers, {} capabilities; scale: {} workers with 2 capabilities each\n\n{}\n{}\n## Targets\n\n{}\n## How to read this\n\n- Client and server share the two cores, so every figure includes the load generator's own cost; `baseline` is a bare endpoint on the same TLS stack (`crank bench-baseline`) that parses the same heartbeat JSON and answers `{{}}`, and each ratio compares against the baseline of its own round. Run to run, `baseline` itself varies by about ±10 % here, so the list runs three times and each row is the round with the median ratio; ratios a little above 1 are still noise, not a registry faster than its transport.\n- `register-storm` pays a full TLS handshake per request (`Connection: close`), so its ratio to the keep-alive baseline is not a target; its time to register every worker is.\n- `scale` registers 1,000 workers and measures routes, grows to the full size and measures routes again, then runs heartbeats while the sweeper runs; `max_sweep_ms` is the longest sweep the controller timed itself (`GET /stats`), which is the longest it can hold back a heartbeat.\n- `idle-worker` runs a standalone worker beside one heartbeating every 6 s for three phase durations; the difference in their CPU is the registration and heartbeat loop's cost, scaled to the default 30 s interval. Both also pay about 25 ms a minute for actix-http's 500 ms date-header timer, which is not part of the loop.\n",
            machine(),
            chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
            command.join(" "),
            bench.flags.connections,
            bench.flags.threads,
            bench.flags.duration,
            bench.flags.workers,
            bench.flags.capabilities,
            bench.flags.scale_workers,
            table(&rows),
            extras(&rows),
            targets(&rows),
        );
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

/// `crank bench-baseline`: the bare endpoint `baseline` loads. Same TLS stack as
/// the controller, parses the same heartbeat JSON, answers `{}`.
pub async fn serve_baseline(port: u16, cert_dir: PathBuf) -> Result<(), String> {
    use actix_web::{web, App, HttpResponse};
    use crank_actors::wire::HeartbeatRequest;
    use crank_services::body::ApiJson;
    use crank_services::error::ApiError;
    use crank_services::server::{mtls_server, ServerLimits};

    async fn heartbeat(
        ApiJson(request): ApiJson<HeartbeatRequest>,
    ) -> Result<HttpResponse, ApiError> {
        crank_actors::domain::WorkerId::parse("worker_id", &request.worker_id)?;
        Ok(HttpResponse::Ok().json(json!({})))
    }
    async fn health() -> HttpResponse {
        HttpResponse::Ok().json(json!({"status": "healthy", "service": "crank-bench-baseline"}))
    }

    let tls = crank_services::tls::server_config(&TlsFiles::in_dir(&cert_dir, "controller"))
        .map_err(|e| e.to_string())?;
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    let server = mtls_server(
        "crank-bench-baseline",
        listener,
        tls,
        ServerLimits::default(),
        true,
        || {
            App::new()
                .route("/heartbeat", web::post().to(heartbeat))
                .route("/health", web::get().to(health))
        },
    )
    .map_err(|e| e.to_string())?;
    server.await.map_err(|e| e.to_string())
}
