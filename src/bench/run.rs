//! [`bench()`]: the scenarios in order, as many rounds as asked, each row compared
//! with its own round's baseline; then the median rounds printed (and written
//! to the report).

use anyhow::{bail, Context, Result};

use super::flags::{BenchFlags, Scenario};
use super::report::{details, report, table};
use super::row::{median_round, Row};
use super::scenario::run_scenario;
use super::target::Bench;

/// The scenarios run when none is named.
const DEFAULT_SCENARIOS: [Scenario; 4] = [
    Scenario::Baseline,
    Scenario::Heartbeat,
    Scenario::Route,
    Scenario::Mixed,
];

pub fn bench(mut flags: BenchFlags) -> Result<()> {
    if flags.scenarios.is_empty() {
        flags.scenarios = DEFAULT_SCENARIOS.to_vec();
    }
    if flags.connections == 0 || flags.workers == 0 || flags.scale_workers == 0 {
        bail!("--connections, --workers and --scale-workers must be at least 1");
    }
    let report_path = flags.report.clone();
    let json_output = flags.json;
    let scenarios = flags.scenarios.clone();
    let mut bench = Bench::new(flags)?;
    let rounds = bench.flags.repeat.max(1);
    let mut measured: Vec<Vec<Row>> = vec![Vec::new(); scenarios.len()];
    for round in 1..=rounds {
        // This round's baseline: throughput and p99.
        let mut baseline = None;
        for (k, scenario) in scenarios.iter().copied().enumerate() {
            if !json_output {
                eprintln!("round {round}/{rounds}: running {} …", scenario.name());
            }
            let mut row = match run_scenario(&bench, scenario) {
                Ok(row) => row,
                Err(e) => {
                    bench.keep_logs();
                    return Err(e.context(scenario.name()));
                }
            };
            if scenario == Scenario::Baseline {
                baseline = Some((row.throughput, row.p99_ms));
            }
            if row.requests > 0 {
                row.ratio_to_baseline = baseline.map(|(throughput, _)| row.throughput / throughput);
            }
            // Rows of different rounds are shown together: each carries the
            // baseline it is compared with.
            if let (Some((throughput, p99)), true) = (baseline, scenario != Scenario::Baseline) {
                row.round_baseline_throughput = Some(throughput);
                row.round_baseline_p99_ms = Some(p99);
            }
            measured[k].push(row);
        }
    }
    let rows: Vec<Row> = measured.into_iter().map(median_round).collect();
    if json_output {
        for row in &rows {
            println!("{}", serde_json::to_string(row)?);
        }
    } else {
        print!("{}", table(&rows));
        print!("{}", details(&rows));
    }
    if let Some(path) = report_path {
        let command: Vec<String> = std::env::args().collect();
        let text = report(&bench.flags, &rows, &command.join(" "));
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}
