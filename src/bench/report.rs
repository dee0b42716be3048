//! The prose: the table and the details under it (printed, and in the report),
//! the benchmark issue's targets checked against the rows, and BENCHMARKS.md
//! itself, which is `report.md` with its `{placeholders}` filled.

use serde_json::{Map, Value};

use super::flags::BenchFlags;
use super::probe::machine;
use super::row::Row;

/// BENCHMARKS.md with a `{name}` for each figure [`report`] fills in.
const TEMPLATE: &str = include_str!("report.md");

fn fmt_opt(value: Option<f64>, digits: usize) -> String {
    value
        .map(|v| format!("{v:.digits$}"))
        .unwrap_or_else(|| "-".into())
}

/// The rows' columns as a Markdown table.
pub fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| scenario | requests | errors | throughput/s | p50 ms | p99 ms | p99.9 ms | × baseline | ctl CPU s | ctl RSS MB |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for row in rows {
        out.push_str(&format!(
            "| {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {} | {} | {} |\n",
            row.scenario,
            row.requests,
            row.errors,
            row.throughput,
            row.p50_ms,
            row.p99_ms,
            row.p999_ms,
            fmt_opt(row.ratio_to_baseline, 2),
            fmt_opt(row.controller_cpu_s, 2),
            fmt_opt(row.controller_rss_mb, 1),
        ));
    }
    out
}

/// `row` as a JSON object, keys sorted.
fn fields(row: &Row) -> Map<String, Value> {
    match serde_json::to_value(row) {
        Ok(Value::Object(fields)) => fields,
        _ => unreachable!("a Row serializes to an object"),
    }
}

/// A line per row with details: every field beyond the table's columns, by
/// name, fractions to three places.
pub fn details(rows: &[Row]) -> String {
    // A row without details serializes to the columns alone (see `Row`).
    let columns = fields(&Row::default());
    let mut out = String::new();
    for row in rows {
        let details: Vec<String> = fields(row)
            .into_iter()
            .filter(|(name, _)| !columns.contains_key(name))
            .map(|(name, value)| match value.as_f64() {
                Some(f) if value.is_f64() => format!("{name} = {f:.3}"),
                _ => format!("{name} = {value}"),
            })
            .collect();
        if !details.is_empty() {
            out.push_str(&format!("- **{}**: {}\n", row.scenario, details.join(", ")));
        }
    }
    out
}

/// The targets of the benchmark issue, checked against this run's rows.
pub fn targets(rows: &[Row]) -> String {
    let find = |name: &str| rows.iter().find(|r| r.scenario == name);
    // Against the baseline of the row's own round where it has one.
    let baseline_p99 = |row: &Row| {
        row.round_baseline_p99_ms
            .or_else(|| find("baseline").map(|b| b.p99_ms))
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
        let row = find(name);
        check(
            format!("{name} throughput ≥ 0.9 × baseline"),
            row.and_then(|r| r.ratio_to_baseline),
            |r| r >= 0.9,
            "×",
        );
        check(
            format!("{name} p99 ≤ 1.5 × baseline's"),
            row.and_then(|r| Some(r.p99_ms / baseline_p99(r)?)),
            |r| r <= 1.5,
            "×",
        );
    }
    let scale = find("scale");
    let idle = find("idle-worker");
    check(
        "mixed throughput ≥ 0.85 × baseline".into(),
        find("mixed").and_then(|r| r.ratio_to_baseline),
        |r| r >= 0.85,
        "×",
    );
    check(
        "scale: controller RSS ≤ 150 MB".into(),
        scale.and_then(|r| r.controller_rss_mb),
        |m| m <= 150.0,
        " MB",
    );
    check(
        "scale: longest sweep (the longest stall) ≤ 20 ms".into(),
        scale.and_then(|r| r.max_sweep_ms),
        |m| m <= 20.0,
        " ms",
    );
    check(
        "scale: route p99 at scale ≤ 1.2 × at 1,000".into(),
        scale.and_then(|r| r.route_p99_ratio),
        |r| r <= 1.2,
        "×",
    );
    let storm = find("register-storm");
    check(
        "register-storm: every worker re-registering after a controller restart registered, zero errors (unregistered + errors)".into(),
        storm.map(|r| {
            let missing = r.workers.unwrap_or(0) as f64 - r.registered.unwrap_or(0) as f64;
            missing + r.errors as f64
        }),
        |n| n == 0.0,
        "",
    );
    check(
        "register-storm: one full TLS handshake per registration, as the controller counted them (full handshakes per registration)".into(),
        storm.and_then(|r| {
            let resumed = r.resumed_handshakes? as f64 / r.workers?.max(1) as f64;
            Some(r.handshakes_per_registration? - resumed)
        }),
        |n| (n - 1.0).abs() < 0.01,
        "",
    );
    check(
        "register-storm: registrations/s ≥ 0.8 × the transport's full-handshake rate in the same run".into(),
        storm.and_then(|r| r.ratio_to_transport_handshakes),
        |r| r >= 0.8,
        "×",
    );
    check(
        "idle worker RSS ≤ 20 MB".into(),
        idle.and_then(|r| r.worker_rss_mb),
        |m| m <= 20.0,
        " MB",
    );
    check(
        "idle worker heartbeat loop < 1 ms CPU per minute at 30 s".into(),
        idle.and_then(|r| r.heartbeat_loop_cpu_ms_per_minute_at_30s),
        |m| m < 1.0,
        " ms",
    );
    let scrape = find("metrics-scrape");
    check(
        "metrics-scrape: a scrape answers in < 50 ms (slowest)".into(),
        scrape.and_then(|r| r.scrape_max_ms),
        |m| m < 50.0,
        " ms",
    );
    check(
        "metrics-scrape: a scrape holds the registry ≤ 5 ms (longest)".into(),
        scrape.and_then(|r| r.scrape_hold_max_ms),
        |m| m <= 5.0,
        " ms",
    );
    let watch = find("watch");
    check(
        "watch: every watcher saw every change in order (watchers that did not)".into(),
        watch.and_then(|r| Some(r.watchers? as f64 - r.watchers_complete? as f64)),
        |n| n == 0.0,
        "",
    );
    check(
        "watch: heartbeat throughput with the watchers ≥ 0.9 × without".into(),
        watch.and_then(|r| r.heartbeat_ratio_with_watchers),
        |r| r >= 0.9,
        "×",
    );
    check(
        "route: the default strategy's throughput ≥ 0.95 × round-robin's".into(),
        find("route").and_then(|r| r.route_ratio_to_round_robin),
        |r| r >= 0.95,
        "×",
    );
    let heterogeneous = find("heterogeneous");
    check(
        "heterogeneous: the default strategy's p99 ≤ 1/3 × round-robin's".into(),
        heterogeneous.and_then(|r| r.p99_ratio_to_round_robin),
        |r| r <= 1.0 / 3.0,
        "×",
    );
    check(
        "heterogeneous: the default strategy's throughput ≥ round-robin's".into(),
        heterogeneous.and_then(|r| r.throughput_ratio_to_round_robin),
        |r| r >= 1.0,
        "×",
    );
    check(
        "failing-worker: with reports, under 1 % of attempts hit the failing worker within 5 s (from second)".into(),
        find("failing-worker").and_then(|r| r.failing_under_1pct_after_s),
        |s| s <= 5.0,
        " s",
    );
    let equal = find("equal-capacity");
    check(
        "equal-capacity: the default strategy's p99 ≤ 1/3 × round-robin's".into(),
        equal.and_then(|r| r.p99_ratio_to_round_robin),
        |r| r <= 1.0 / 3.0,
        "×",
    );
    check(
        "equal-capacity: the default strategy's p50 ≤ 1.1 × round-robin's".into(),
        equal.and_then(|r| r.p50_ratio_to_round_robin),
        |r| r <= 1.1,
        "×",
    );
    check(
        "equal-capacity: the default strategy's throughput ≥ round-robin's".into(),
        equal.and_then(|r| r.throughput_ratio_to_round_robin),
        |r| r >= 1.0,
        "×",
    );
    check(
        "equal-capacity: local mode's p99 ≤ 1/3 × round-robin's".into(),
        equal.and_then(|r| r.local_p99_ratio_to_round_robin),
        |r| r <= 1.0 / 3.0,
        "×",
    );
    check(
        "equal-capacity: local mode's p50 ≤ 1.1 × round-robin's".into(),
        equal.and_then(|r| r.local_p50_ratio_to_round_robin),
        |r| r <= 1.1,
        "×",
    );
    check(
        "equal-capacity: local mode's throughput ≥ round-robin's".into(),
        equal.and_then(|r| r.local_throughput_ratio_to_round_robin),
        |r| r >= 1.0,
        "×",
    );
    let saturated = find("saturated");
    check(
        "saturated: the default strategy's throughput ≥ round-robin's".into(),
        saturated.and_then(|r| r.throughput_ratio_to_round_robin),
        |r| r >= 1.0,
        "×",
    );
    check(
        "saturated: local mode's throughput ≥ round-robin's".into(),
        saturated.and_then(|r| r.local_throughput_ratio_to_round_robin),
        |r| r >= 1.0,
        "×",
    );
    check(
        "local-mode: calls per second ≥ 1.5 × through the controller".into(),
        find("local-mode").and_then(|r| r.local_throughput_ratio_to_controller),
        |r| r >= 1.5,
        "×",
    );
    check(
        "controller-outage: no call to a live worker failed while the controller was down".into(),
        find("controller-outage").and_then(|r| r.failed_calls_during_outage.map(|n| n as f64)),
        |n| n == 0.0,
        "",
    );
    check(
        "rolling-restart: no call failed while every worker was replaced, with drain".into(),
        find("rolling-restart").map(|r| r.errors as f64),
        |n| n == 0.0,
        "",
    );
    check(
        "policy-cost: route throughput with a 1,000-rule policy enforcing ≥ 0.95 × with it off"
            .into(),
        find("policy-cost").and_then(|r| r.route_ratio_enforce_to_off),
        |r| r >= 0.95,
        "×",
    );
    check(
        "fairness: the steady caller's p99 beside a flood, limits on, ≤ 2 × its p99 alone".into(),
        find("fairness").and_then(|r| r.steady_p99_ratio_with_limits),
        |r| r <= 2.0,
        "×",
    );
    check(
        "shedding: the normal callers' p99 lower with shedding than without (with / without)"
            .into(),
        find("shedding").and_then(|r| {
            Some(r.normal_p99_ms_with_shedding? / r.normal_p99_ms_without_shedding?.max(1e-9))
        }),
        |r| r < 1.0,
        "×",
    );
    lines.join("\n") + "\n"
}

/// BENCHMARKS.md for `rows`, measured with `flags` by the command line `command`.
pub fn report(flags: &BenchFlags, rows: &[Row], command: &str) -> String {
    fill(
        TEMPLATE,
        &[
            ("machine", machine()),
            (
                "date",
                chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
            ),
            ("command", command.to_owned()),
            ("connections", flags.connections.to_string()),
            ("threads", flags.threads.to_string()),
            ("duration", format!("{:?}", flags.duration)),
            ("workers", flags.workers.to_string()),
            ("capabilities", flags.capabilities.to_string()),
            ("scale_workers", flags.scale_workers.to_string()),
            ("table", table(rows)),
            ("details", details(rows)),
            ("targets", targets(rows)),
        ],
    )
}

/// `template` with each `{name}` of `values` replaced by its value, in one pass
/// (so a value is never searched for placeholders); braces around anything
/// else, such as the report's literal `{}`, are kept.
fn fill(template: &str, values: &[(&str, String)]) -> String {
    let mut out = String::with_capacity(template.len() * 2);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let filled = after.find('}').and_then(|close| {
            let value = values.iter().find(|(name, _)| *name == &after[..close])?;
            Some((&value.1, close))
        });
        match filled {
            Some((value, close)) => {
                out.push_str(value);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `{name}`s of `text` whose name is a Rust identifier.
    fn placeholders(text: &str) -> Vec<&str> {
        text.split('{')
            .skip(1)
            .filter_map(|s| s.split_once('}').map(|(name, _)| name))
            .filter(|name| {
                !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c == '_')
            })
            .collect()
    }

    #[test]
    fn the_template_names_every_figure_once_and_nothing_else() {
        let flags = <BenchFlags as clap::FromArgMatches>::from_arg_matches(
            &<BenchFlags as clap::Args>::augment_args(clap::Command::new("bench"))
                .get_matches_from(["bench"]),
        )
        .unwrap();
        let text = report(&flags, &[], "crank bench");
        assert!(
            placeholders(&text).is_empty(),
            "unfilled: {:?}",
            placeholders(&text)
        );
        let mut names = placeholders(TEMPLATE);
        names.sort_unstable();
        let count = names.len();
        names.dedup();
        assert_eq!(names.len(), count, "a placeholder twice: {names:?}");
        assert_eq!(names.len(), 12, "{names:?}");
        assert!(text.contains("answers `{}`"), "the literal braces stay");
    }

    #[test]
    fn fill_does_not_look_into_values() {
        let out = fill("{a} and {b}", &[("a", "{b}".into()), ("b", "B".into())]);
        assert_eq!(out, "{b} and B");
        assert_eq!(fill("{} {x} {", &[]), "{} {x} {");
    }

    fn row(scenario: &str) -> Row {
        Row {
            scenario: scenario.into(),
            requests: 10,
            throughput: 100.0,
            ..Row::default()
        }
    }

    #[test]
    fn details_list_the_fields_beyond_the_columns_by_name() {
        let rows = [
            row("baseline"),
            Row {
                workers: Some(10_000),
                round_baseline_throughput: Some(34272.8641),
                rounds: Some(3),
                first_error: Some("HTTP 500".into()),
                ..row("heartbeat")
            },
        ];
        assert_eq!(
            details(&rows),
            "- **heartbeat**: first_error = \"HTTP 500\", round_baseline_throughput = 34272.864, rounds = 3, workers = 10000\n"
        );
    }

    #[test]
    fn the_table_shows_absent_figures_as_a_dash() {
        let table = table(&[Row {
            ratio_to_baseline: Some(0.966),
            controller_rss_mb: Some(26.23),
            ..row("route")
        }]);
        assert!(
            table.ends_with("| route | 10 | 0 | 100 | 0.00 | 0.00 | 0.00 | 0.97 | - | 26.2 |\n"),
            "{table}"
        );
    }

    #[test]
    fn the_storm_is_held_to_full_handshakes_and_the_transports_handshake_rate() {
        let storm = |handshakes: f64, ratio: f64| Row {
            workers: Some(10_000),
            registered: Some(10_000),
            handshakes_per_registration: Some(handshakes),
            resumed_handshakes: Some(0),
            ratio_to_transport_handshakes: Some(ratio),
            ..row("register-storm")
        };
        let honest = targets(&[storm(1.0, 0.9)]);
        assert!(
            honest.contains("- met: register-storm: one full TLS handshake per registration")
                && honest.contains("- met: register-storm: registrations/s ≥ 0.8 × the transport's full-handshake rate in the same run: 0.90×"),
            "{honest}"
        );
        // 64 keep-alive connections carrying 10,000 registrations.
        let reused = targets(&[storm(0.0064, 0.9)]);
        assert!(
            reused.contains("- MISSED: register-storm: one full TLS handshake per registration"),
            "{reused}"
        );
    }

    #[test]
    fn targets_compare_each_row_with_its_own_rounds_baseline() {
        let rows = [
            Row {
                p99_ms: 10.0,
                ..row("baseline")
            },
            Row {
                p99_ms: 8.0,
                round_baseline_p99_ms: Some(4.0),
                ratio_to_baseline: Some(0.95),
                ..row("heartbeat")
            },
        ];
        let targets = targets(&rows);
        assert!(
            targets.contains("- met: heartbeat throughput ≥ 0.9 × baseline: 0.95×"),
            "{targets}"
        );
        // 8 / 4 of its own round, not 8 / 10 of the baseline row shown.
        assert!(
            targets.contains("- MISSED: heartbeat p99 ≤ 1.5 × baseline's: 2.00×"),
            "{targets}"
        );
        assert!(
            targets.contains("- not measured in this run: route throughput"),
            "{targets}"
        );
    }
}
