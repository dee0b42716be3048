//! [`Row`]: what one scenario measured, as `crank bench --json` prints it (one
//! object a line) and the report's table and details show it; and
//! [`median_round`], which picks the row shown when the list runs more than once.
//!
//! This file depends on serde alone: `tests/bench_smoke.rs` includes it with
//! `#[path]` to read `--json` output into the same struct.

use serde::{Deserialize, Serialize};

/// One scenario's result.
///
/// The first fields are the table's columns, in every row. The rest are the
/// details listed under the table, each present only in the rows that measure
/// it, so each is an [`Option`] skipped when [`None`]: a row with none of them
/// serializes to the columns alone, which is how the report tells the two apart.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Row {
    /// The scenario's name, e.g. `register-storm`.
    pub scenario: String,
    pub requests: u64,
    /// Requests that failed or were answered with other than 2xx.
    pub errors: u64,
    /// Requests per second.
    pub throughput: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    /// Throughput over the throughput of its round's `baseline` (none if that
    /// did not run, or nothing was requested).
    pub ratio_to_baseline: Option<f64>,
    /// CPU time the controller (or the baseline endpoint) used in the phase.
    pub controller_cpu_s: Option<f64>,
    /// Its peak resident memory.
    pub controller_rss_mb: Option<f64>,

    // Of any row.
    /// The first failure of the phase, if any failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
    /// Its round's `baseline` throughput: rows of different rounds are shown
    /// together, so each carries the baseline it is compared with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub round_baseline_throughput: Option<f64>,
    /// Its round's `baseline` p99.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub round_baseline_p99_ms: Option<f64>,
    /// How many rounds it is the median of, if more than one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rounds: Option<u64>,

    // heartbeat, route, mixed, register-storm, scale.
    /// Workers registered (scale: as the controller counts them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workers: Option<u64>,

    // restart.
    /// Seconds from the restart to its first `/workers` answer listing every worker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_to_full_answer_s: Option<f64>,
    /// Routes answered other than 2xx after the restart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routes_404_after_restart: Option<u64>,
    /// Heartbeats answered other than 2xx (404: a re-registration each) after the restart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeats_404_after_restart: Option<u64>,
    /// Registration throughput with the file store over the memory store's, same run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub register_ratio_file_to_memory: Option<f64>,
    /// fsyncs the file store counted, per registration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fsyncs_per_registration: Option<f64>,
    /// Heartbeat throughput with the file store over the memory store's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_ratio_file_to_memory: Option<f64>,
    /// Bytes the controller's process wrote to disk per heartbeat (`/proc/<pid>/io`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_bytes_per_heartbeat: Option<f64>,
    /// The store's snapshot and log on disk, per registered worker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_bytes_per_worker: Option<f64>,

    // register-storm.
    /// Workers the controller counts once the storm is over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registered: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_to_register_all_s: Option<f64>,
    /// TLS handshakes the controller completed in the storm, per registration,
    /// as it counted them itself (`GET /stats`): what was paid, not what was meant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handshakes_per_registration: Option<f64>,
    /// Of those handshakes, the ones that resumed a TLS session (0: all full).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resumed_handshakes: Option<u64>,
    /// Controller CPU time per registration, in microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller_cpu_us_per_registration: Option<f64>,
    /// The transport's handshake rate, measured in the same run: as many
    /// requests to the bare `baseline` endpoint, from as many connections, each
    /// on a new connection with a full handshake, half just before the storm
    /// and half just after, per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport_handshakes_per_s: Option<f64>,
    /// Handshakes the bare endpoint counted, per request of that phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport_handshakes_per_request: Option<f64>,
    /// The bare endpoint's CPU time per request of that phase, in microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport_cpu_us_per_request: Option<f64>,
    /// Registrations per second over `transport_handshakes_per_s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ratio_to_transport_handshakes: Option<f64>,

    // scale.
    /// The controller's last sweep at full size (`GET /stats`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep_ms: Option<f64>,
    /// Its longest sweep step so far: the longest it held back a heartbeat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_sweep_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_p99_ms_at_1000: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_p99_ms_at_scale: Option<f64>,
    /// `route_p99_ms_at_scale / route_p99_ms_at_1000`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_p99_ratio: Option<f64>,
    /// The slowest heartbeat while sweeps ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_max_ms_at_scale: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_throughput_at_scale: Option<f64>,
    /// Controller CPU time to grow from 1,000 workers to full size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_cpu_s: Option<f64>,

    // idle-worker.
    /// How long the idle workers were watched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_interval_s: Option<f64>,
    /// The heartbeating worker's resident memory at the end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_rss_mb: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_peak_rss_mb: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_cpu_ms_per_minute: Option<f64>,
    /// The same for a worker that never registers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standalone_worker_cpu_ms_per_minute: Option<f64>,
    /// The difference between the two, per heartbeat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_cpu_ms_per_beat: Option<f64>,
    /// That, at the default 30 s interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_loop_cpu_ms_per_minute_at_30s: Option<f64>,
    /// cluster: registrations per second through the etcd store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_registrations_per_s: Option<f64>,
    /// cluster: etcd write transactions (revisions) per registration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etcd_writes_per_registration: Option<f64>,
    /// cluster: etcd's own sequential put rate on this machine, the reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etcd_put_rate_reference: Option<f64>,
    /// cluster: heartbeat throughput on one etcd-store controller over the same on a memory-store one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_ratio_to_memory: Option<f64>,
    /// cluster: route throughput on one etcd-store controller over the same on a memory-store one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_ratio_to_memory: Option<f64>,
    /// cluster: etcd writes per second while every worker heartbeats.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etcd_writes_per_s_while_heartbeating: Option<f64>,
    /// cluster: seconds from kill -9 of a controller to all its workers owned by a survivor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover_owned_after_s: Option<f64>,
    /// cluster: routes that failed through the survivors meanwhile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover_failed_routes: Option<u64>,

    // metrics-scrape.
    /// Scrapes of `GET /metrics`, one after another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrapes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrape_p50_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrape_p99_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrape_max_ms: Option<f64>,
    /// The longest any scrape held the registry (its own gauge).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrape_hold_max_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrape_bytes: Option<u64>,

    // watch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watchers: Option<u64>,
    /// Changes each watcher should see: one per registration of the storm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch_events_expected: Option<u64>,
    /// Watchers that saw every one of them, in order, with no resync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watchers_complete: Option<u64>,
    /// Events that came out of order or with a gap, across all watchers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch_out_of_order: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch_resyncs: Option<u64>,
    /// From the storm's start until every watcher had every event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch_delivery_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_throughput_without_watchers: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_throughput_with_watchers: Option<f64>,
    /// With over without.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_ratio_with_watchers: Option<f64>,

    // route.
    /// Routes per second with `strategy: round_robin`, once every worker has
    /// reported a load (the default strategy's, so measured, is its
    /// throughput times `route_ratio_to_round_robin`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_throughput_round_robin: Option<f64>,
    /// The default strategy's route throughput over round-robin's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_ratio_to_round_robin: Option<f64>,
    /// Controller CPU per route with the default strategy, in microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_cpu_us_default: Option<f64>,
    /// The same with `round_robin`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_cpu_us_round_robin: Option<f64>,

    // heterogeneous (the columns: the default strategy's calls).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub round_robin_p50_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub round_robin_p99_ms: Option<f64>,
    /// Calls per second under `round_robin`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub round_robin_throughput: Option<f64>,
    /// The default strategy's p99 over round-robin's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99_ratio_to_round_robin: Option<f64>,
    /// The default strategy's throughput over round-robin's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughput_ratio_to_round_robin: Option<f64>,
    /// Share of the default strategy's attempts that went to the slow worker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow_worker_share: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow_worker_share_round_robin: Option<f64>,
    /// Attempts a worker failed (at capacity, unreachable), each retried once
    /// on another provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_attempts: Option<u64>,

    // failing-worker (the columns: the calls with reports).
    /// Share of attempts that went to the dead worker, no outcome reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failing_share_without_reports: Option<f64>,
    /// The same with every outcome reported (`POST /report`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failing_share_with_reports: Option<f64>,
    /// Attempts that went to the dead worker, with reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failing_hits_with_reports: Option<u64>,
    /// From which second of the phase with reports on every second sent under
    /// 1 % of its attempts to the dead worker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failing_under_1pct_after_s: Option<f64>,

    // equal-capacity and saturated (the columns: the default strategy
    // through the controller; the round-robin fields above too).
    /// The default strategy's p50 over round-robin's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p50_ratio_to_round_robin: Option<f64>,
    /// Local mode's p50, p99 and throughput over round-robin's (through
    /// the controller), in the same run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_p50_ratio_to_round_robin: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_p99_ratio_to_round_robin: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_throughput_ratio_to_round_robin: Option<f64>,
    /// Share of local mode's attempts that went to the slow worker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow_worker_share_local: Option<f64>,

    // local-mode (the columns: local mode's calls).
    /// Calls per second through the controller (route, then call).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller_mode_throughput: Option<f64>,
    /// Local mode's calls per second over controller mode's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_throughput_ratio_to_controller: Option<f64>,
    /// Controller CPU per call, in microseconds, in each mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller_cpu_us_per_call: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller_cpu_us_per_call_local: Option<f64>,
    /// TLS handshakes the workers completed per call, in each mode, as they
    /// count them: near 0 when callers keep their connections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_handshakes_per_call: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_handshakes_per_call_local: Option<f64>,

    // controller-outage (the columns: the calls made while it was down).
    /// How long every controller was down (SIGKILL to the end of the phase).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outage_s: Option<f64>,
    /// Attempts made while it was down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calls_during_outage: Option<u64>,
    /// policy-cost: rules in the policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_rules: Option<u64>,
    /// policy-cost (the columns: routes under `enforce`): routes per second
    /// with the same policy `off`, the ratio, and controller CPU per route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_throughput_policy_off: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_ratio_enforce_to_off: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_cpu_us_policy_off: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_cpu_us_policy_enforce: Option<f64>,
    /// fairness (the columns: the steady caller beside the flood, limits on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steady_p99_ms_alone: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steady_p99_ms_flooded_without_limits: Option<f64>,
    /// The steady caller's p99 beside the flood with limits on, over alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steady_p99_ratio_with_limits: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flood_routes_per_s_without_limits: Option<f64>,
    /// The flood's requests answered 429 with limits on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flood_refused_with_limits: Option<u64>,
    /// shedding (the columns: the `normal` callers with the SLO).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normal_p99_ms_without_shedding: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normal_p99_ms_with_shedding: Option<f64>,
    /// Share of the `low` callers' calls refused `503 slo_violation`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub low_shed_share: Option<f64>,
    /// Calls that failed in the phase (before and during the outage), every
    /// worker alive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_calls_during_outage: Option<u64>,
    /// rolling-restart (the columns: the calls with the graceful drain):
    /// workers replaced, and how long replacing them all took.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restarts: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolling_restart_s: Option<f64>,
    /// The same restart with `--drain-timeout 0`: calls failed (after the
    /// client's retry), attempts failed, workers replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_drain_failed_calls: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_drain_failed_attempts: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_drain_restarts: Option<u64>,
    /// Attempts no worker answered (connection refused or lost), with the
    /// drain and without: the restarts' own cost, apart from the refusals
    /// at capacity that a loaded fleet also retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unanswered_attempts: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_drain_unanswered_attempts: Option<u64>,
    /// The same four figures for callers that open new connections for
    /// each call (`crank call` in a script), with the drain and without.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fresh_failed_calls: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fresh_unanswered_attempts: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fresh_no_drain_failed_calls: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fresh_no_drain_unanswered_attempts: Option<u64>,
    /// The first failed attempt's reason, with how many failed alike; with
    /// drain and without.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_failed_attempt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_drain_first_failed_attempt: Option<String>,
}

impl Row {
    /// What [`median_round`] ranks rounds by: the ratio to the round's own
    /// yardstick (register-storm: the transport's handshake rate; the others:
    /// the keep-alive baseline), else throughput.
    fn rank(&self) -> f64 {
        self.ratio_to_transport_handshakes
            .or(self.ratio_to_baseline)
            .unwrap_or(self.throughput)
    }
}

/// The round whose ratio to its own yardstick (see `Row::rank`; else
/// throughput) is the median, with [`Row::rounds`] set when there was more
/// than one.
pub fn median_round(mut rounds: Vec<Row>) -> Row {
    rounds.sort_by(|a, b| a.rank().total_cmp(&b.rank()));
    let count = rounds.len();
    let mut chosen = rounds.swap_remove(count / 2);
    if count > 1 {
        chosen.rounds = Some(count as u64);
    }
    chosen
}
