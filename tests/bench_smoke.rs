//! A smoke test of `crank bench`: every scenario for a fraction of a second, with
//! well-formed, error-free JSON output. Not a performance test: no figure is
//! asserted beyond "it measured something". Each line must read as the bench's
//! own [`Row`](row::Row), with no key it does not declare.

mod common;

/// The bench's own row type, included by path (the root package is a binary,
/// so the test cannot import it): `deny_unknown_fields` makes a key the bench
/// prints but the struct does not declare a failure here.
#[path = "../src/bench/row.rs"]
#[allow(dead_code)]
mod row;

use common::run_cli;
use row::Row;

#[test]
fn every_scenario_runs_and_reports_well_formed_error_free_json() {
    let (ok, out, err) = run_cli(&[
        "bench",
        "baseline",
        "heartbeat",
        "route",
        "mixed",
        "register-storm",
        "scale",
        "idle-worker",
        "metrics-scrape",
        "watch",
        "heterogeneous",
        "failing-worker",
        "restart",
        "equal-capacity",
        "saturated",
        "local-mode",
        "controller-outage",
        "rolling-restart",
        "policy-cost",
        "fairness",
        "shedding",
        "--outage",
        "300ms",
        "--watchers",
        "10",
        "--scrapes",
        "5",
        "--duration",
        "300ms",
        "--workers",
        "200",
        "--scale-workers",
        "2000",
        "--connections",
        "8",
        "--json",
    ]);
    assert!(ok, "crank bench failed: {err}\n{out}");
    let rows: Vec<Row> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let names: Vec<&str> = rows.iter().map(|r| r.scenario.as_str()).collect();
    assert_eq!(
        names,
        [
            "baseline",
            "heartbeat",
            "route",
            "mixed",
            "register-storm",
            "scale",
            "idle-worker",
            "metrics-scrape",
            "watch",
            "heterogeneous",
            "failing-worker",
            "restart",
            "equal-capacity",
            "saturated",
            "local-mode",
            "controller-outage",
            "rolling-restart",
            "policy-cost",
            "fairness",
            "shedding"
        ]
    );
    for row in &rows {
        if row.scenario == "saturated" || row.scenario == "shedding" {
            // More callers than the workers have room for: a call both of
            // whose providers are full is refused, by design.
            continue;
        }
        assert_eq!(row.errors, 0, "{row:?}");
        assert_eq!(row.first_error, None, "{row:?}");
        assert!(row.controller_rss_mb.is_some_and(|mb| mb > 0.0), "{row:?}");
    }
    for row in &rows[..5] {
        assert!(row.requests > 0, "{row:?}");
        assert!(row.throughput > 0.0, "{row:?}");
        assert!(row.p50_ms <= row.p99_ms, "{row:?}");
        assert!(row.ratio_to_baseline.is_some_and(|r| r > 0.0), "{row:?}");
    }
    for row in &rows[1..] {
        assert_eq!(
            row.round_baseline_throughput,
            Some(rows[0].throughput),
            "each row carries its round's baseline: {row:?}"
        );
    }
    let rolled = rows
        .iter()
        .find(|r| r.scenario == "rolling-restart")
        .unwrap();
    assert_eq!(rolled.restarts, Some(4), "{rolled:?}");
    assert_eq!(rolled.no_drain_restarts, Some(4), "{rolled:?}");
    assert!(rolled.no_drain_failed_calls.is_some(), "{rolled:?}");
    let (storm, scale, idle) = (&rows[4], &rows[5], &rows[6]);
    assert_eq!(
        storm.registered,
        Some(200),
        "register-storm registered everyone: {storm:?}"
    );
    // Counted by the controller, not assumed: one full handshake per registration.
    assert_eq!(storm.handshakes_per_registration, Some(1.0), "{storm:?}");
    assert_eq!(storm.resumed_handshakes, Some(0), "{storm:?}");
    assert_eq!(
        storm.transport_handshakes_per_request,
        Some(1.0),
        "{storm:?}"
    );
    assert!(
        storm.transport_handshakes_per_s.is_some_and(|r| r > 0.0)
            && storm
                .controller_cpu_us_per_registration
                .is_some_and(|us| us > 0.0),
        "{storm:?}"
    );
    assert_eq!(
        scale.workers,
        Some(2000),
        "scale registered everyone: {scale:?}"
    );
    assert!(scale.sweep_ms.is_some(), "{scale:?}");
    // Measured, if not above zero: in a short window an idle worker may wake
    // up not once (no heartbeat due, no timer without a connection).
    assert!(
        idle.worker_cpu_ms_per_minute.is_some_and(|ms| ms >= 0.0),
        "{idle:?}"
    );
    assert!(idle.worker_rss_mb.is_some_and(|mb| mb > 0.0), "{idle:?}");
    let (scrape, watch) = (&rows[7], &rows[8]);
    assert_eq!(scrape.scrapes, Some(5), "{scrape:?}");
    assert!(scrape.scrape_bytes.is_some_and(|b| b > 0), "{scrape:?}");
    assert_eq!(
        watch.watchers_complete,
        Some(10),
        "every watcher saw every change: {watch:?}"
    );
    assert_eq!(watch.watch_out_of_order, Some(0), "{watch:?}");
    assert!(watch.heartbeat_ratio_with_watchers.is_some(), "{watch:?}");
    assert!(
        rows[2].route_ratio_to_round_robin.is_some_and(|r| r > 0.0),
        "route compares the default strategy with round-robin: {:?}",
        rows[2]
    );
    let (mixed_fleet, failing) = (&rows[9], &rows[10]);
    for row in [mixed_fleet, failing] {
        assert!(
            row.requests > 0 && row.p50_ms <= row.p99_ms,
            "real calls were made: {row:?}"
        );
    }
    assert!(
        mixed_fleet.round_robin_p99_ms.is_some() && mixed_fleet.slow_worker_share.is_some(),
        "{mixed_fleet:?}"
    );
    assert!(
        failing.failing_share_without_reports.is_some()
            && failing.failing_hits_with_reports.is_some(),
        "{failing:?}"
    );
    let (equal, saturated, local, outage) = (&rows[12], &rows[13], &rows[14], &rows[15]);
    for row in [equal, saturated] {
        assert!(
            row.p50_ratio_to_round_robin.is_some()
                && row.local_p99_ratio_to_round_robin.is_some()
                && row.slow_worker_share_local.is_some(),
            "three phases compared: {row:?}"
        );
    }
    assert!(
        local.requests > 0
            && local.controller_mode_throughput.is_some_and(|t| t > 0.0)
            && local.controller_cpu_us_per_call.is_some(),
        "{local:?}"
    );
    assert!(
        outage.calls_during_outage.is_some_and(|n| n > 0)
            && outage.failed_calls_during_outage == Some(0),
        "calls went on while the controller was down: {outage:?}"
    );
    let (policy, fairness, shedding) = (&rows[17], &rows[18], &rows[19]);
    assert!(
        policy.policy_rules == Some(1000)
            && policy.route_ratio_enforce_to_off.is_some_and(|r| r > 0.0),
        "{policy:?}"
    );
    assert!(
        fairness.steady_p99_ms_alone.is_some()
            && fairness.flood_refused_with_limits.is_some_and(|n| n > 0),
        "the flood met its limit: {fairness:?}"
    );
    assert!(
        shedding.normal_p99_ms_without_shedding.is_some() && shedding.low_shed_share.is_some(),
        "{shedding:?}"
    );
}
