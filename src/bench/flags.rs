//! What `crank bench` is asked to do: [`BenchFlags`], and the [`Scenario`]s it
//! can run.

use std::path::PathBuf;
use std::time::Duration;

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
    /// Workers registering at once, as after a controller restart: each on a new
    /// connection with a full TLS handshake (server-counted), beside the transport's
    /// own handshake rate measured in the same run.
    RegisterStorm,
    /// 100,000 workers: controller RSS, sweep time, route latency at that size.
    Scale,
    /// An idle hello-world worker: its RSS and the CPU its heartbeat loop costs.
    IdleWorker,
    /// Three controllers on a local etcd (needs --features etcd and etcd on
    /// PATH): etcd writes per registration, heartbeat and route throughput
    /// against one memory-store controller, writes at steady state, failover.
    Cluster,
    /// GET /metrics against --scale-workers workers: scrape latency and how long each held the registry.
    MetricsScrape,
    /// --watchers GET /watch streams through a --workers register storm (every event, in order?), and heartbeat throughput with and without them.
    Watch,
    /// Real calls through the client library to four hello-world workers, one 10x slower: end-to-end p50/p99 under round_robin and the default strategy.
    Heterogeneous,
    /// Real calls to four workers, one killed but still registered: the share of attempts that hit it without outcome reports and with them.
    FailingWorker,
    /// Real calls to four workers of the same announced capacity, one 10x slower by its service time alone: p50/p99/throughput under round_robin, the default strategy through the controller, and local mode, in one run.
    EqualCapacity,
    /// Real calls to four workers of the same small capacity, one 10x slower, with more callers than the fast ones have room for: throughput and the load split per strategy and mode.
    Saturated,
    /// Real calls to four fast workers, through the controller and then in local mode: calls per second and controller CPU per call.
    LocalMode,
    /// Local-mode callers while the controller is down (SIGKILL, --outage long): calls that fail while every worker lives.
    ControllerOutage,
    /// Routes as a client under a 1,000-rule access policy, off and then enforcing: throughput and controller CPU per route.
    PolicyCost,
    /// A steady caller at 200 routes/s alone, beside a full-speed flood from another identity, and the same with --route-rate: the steady caller's p99.
    Fairness,
    /// Four workers driven past a 12 ms p95 target by 24 callers, half low priority: the normal callers' p99 without and with the SLO, and the share shed.
    Shedding,
    /// The durable store: --workers registrations and heartbeats against the memory and the file store (fsyncs per registration, disk bytes per heartbeat), then a SIGKILL and a restart: time to a first /workers answer listing all, routes and heartbeats answered 404 after it.
    Restart,
    /// Real calls through the client library while each of four workers is replaced in turn (new process up, old one SIGTERMed): failed calls with the graceful drain, and with --drain-timeout 0 for comparison.
    RollingRestart,
    /// rolling-restart on three controllers sharing a local etcd (needs --features etcd): workers drained at the first controller, callers routing through the last.
    RollingRestartCluster,
}

impl Scenario {
    /// Its name on the command line and in [`Row::scenario`](super::row::Row::scenario).
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Baseline => "baseline",
            Scenario::Heartbeat => "heartbeat",
            Scenario::Route => "route",
            Scenario::Mixed => "mixed",
            Scenario::RegisterStorm => "register-storm",
            Scenario::Scale => "scale",
            Scenario::IdleWorker => "idle-worker",
            Scenario::Cluster => "cluster",
            Scenario::MetricsScrape => "metrics-scrape",
            Scenario::Watch => "watch",
            Scenario::Heterogeneous => "heterogeneous",
            Scenario::FailingWorker => "failing-worker",
            Scenario::Restart => "restart",
            Scenario::EqualCapacity => "equal-capacity",
            Scenario::Saturated => "saturated",
            Scenario::LocalMode => "local-mode",
            Scenario::ControllerOutage => "controller-outage",
            Scenario::RollingRestart => "rolling-restart",
            Scenario::RollingRestartCluster => "rolling-restart-cluster",
            Scenario::PolicyCost => "policy-cost",
            Scenario::Fairness => "fairness",
            Scenario::Shedding => "shedding",
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
    #[arg(long, default_value = "10s", value_parser = crank_net::config::parse_duration)]
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
    /// Concurrent GET /watch streams in the watch scenario.
    #[arg(long, default_value_t = 500)]
    pub watchers: usize,
    /// Scrapes in the metrics-scrape scenario.
    #[arg(long, default_value_t = 200)]
    pub scrapes: usize,
    /// How long the controller stays down in controller-outage.
    #[arg(long, default_value = "30s", value_parser = crank_net::config::parse_duration)]
    pub outage: Duration,
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
