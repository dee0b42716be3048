//! A smoke test of `crank bench`: every scenario for a fraction of a second, with
//! well-formed, error-free JSON output. Not a performance test: no figure is
//! asserted beyond "it measured something".

mod common;

use common::run_cli;
use serde_json::Value;

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
    let rows: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let names: Vec<&str> = rows
        .iter()
        .map(|r| r["scenario"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "baseline",
            "heartbeat",
            "route",
            "mixed",
            "register-storm",
            "scale",
            "idle-worker"
        ]
    );
    for row in &rows {
        for key in [
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
        ] {
            assert!(row.get(key).is_some(), "{key} missing from {row}");
        }
        assert_eq!(row["errors"], 0, "{row}");
        assert!(row["controller_rss_mb"].as_f64().unwrap() > 0.0, "{row}");
    }
    for row in &rows[..5] {
        assert!(row["requests"].as_u64().unwrap() > 0, "{row}");
        assert!(row["throughput"].as_f64().unwrap() > 0.0, "{row}");
        assert!(
            row["p50_ms"].as_f64().unwrap() <= row["p99_ms"].as_f64().unwrap(),
            "{row}"
        );
        assert!(row["ratio_to_baseline"].as_f64().unwrap() > 0.0, "{row}");
    }
    assert_eq!(
        rows[4]["registered"], 200,
        "register-storm registered everyone: {}",
        rows[4]
    );
    assert_eq!(
        rows[5]["workers"], 2000,
        "scale registered everyone: {}",
        rows[5]
    );
    assert!(rows[5]["sweep_ms"].as_f64().is_some(), "{}", rows[5]);
    assert!(
        rows[6]["worker_cpu_ms_per_minute"]
            .as_f64()
            .is_some_and(|ms| ms > 0.0),
        "{}",
        rows[6]
    );
    assert!(
        rows[6]["worker_rss_mb"].as_f64().is_some_and(|mb| mb > 0.0),
        "{}",
        rows[6]
    );
}
