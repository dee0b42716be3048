//! `crank call`: a generic client on the client library, as `grpcurl` and
//! `hey` are for gRPC and HTTP. One call prints the answer and who gave it;
//! `--count N --concurrency C` prints a latency summary, calls per second,
//! calls per worker and failures.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, ValueEnum};
use crank_client::{Balance, Constraints, CrankClient, Request};
use crank_trace::settings::{otlp_endpoint, OTLP_ENDPOINT};
use serde::Serialize;

use crate::client::{json_line, Client, ClientFlags};
use crate::error::flat;

/// How `crank call` chooses the worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BalanceFlag {
    /// Ask the controller for each call (POST /route).
    Controller,
    /// Choose locally from the controller's watch stream.
    Local,
}

#[derive(Debug, Args)]
pub struct CallFlags {
    /// The capability, as VERB:NAME (e.g. invoke:hello.greet).
    pub capability: String,
    /// The path on the worker (e.g. /greet).
    pub path: String,
    /// A JSON body: the call is a POST with it (a GET without).
    #[arg(long)]
    pub data: Option<String>,
    #[arg(long, value_enum, default_value = "controller")]
    pub balance: BalanceFlag,
    /// least_loaded, round_robin or cheapest (controller mode; local mode
    /// knows round_robin and its own least-wait rule).
    #[arg(long)]
    pub strategy: Option<String>,
    /// low, normal or high: while the capability breaches its SLO, the
    /// controller sheds low routes.
    #[arg(long)]
    pub priority: Option<String>,
    /// Calls to make; more than one prints a summary instead of answers.
    #[arg(long, default_value_t = 1)]
    pub count: u32,
    /// Calls in flight at once, with --count.
    #[arg(long, default_value_t = 1)]
    pub concurrency: u32,
    #[arg(long = OTLP_ENDPOINT.flag, env = OTLP_ENDPOINT.env, value_name = OTLP_ENDPOINT.value_name, help = OTLP_ENDPOINT.help)]
    pub otlp_endpoint: Option<String>,
    #[command(flatten)]
    pub client: ClientFlags,
}

/// The `--count … --json` summary.
#[derive(Debug, Serialize)]
struct Summary {
    calls: u32,
    failed: u32,
    calls_per_s: f64,
    per_worker: BTreeMap<String, u32>,
    latency_ms: Percentiles,
    /// The first failure of each kind, with how many calls failed so.
    failures: BTreeMap<String, u32>,
}

#[derive(Debug, Serialize)]
struct Percentiles {
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
}

fn percentile(sorted: &[f64], quantile: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((quantile * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted.get(rank - 1).copied().unwrap_or_default()
}

struct Target {
    verb: String,
    name: String,
    request: Request,
    constraints: Constraints,
}

fn target(flags: &CallFlags) -> Result<Target> {
    let (verb, name) = flags.capability.split_once(':').ok_or_else(|| {
        anyhow!(
            "{:?} is not VERB:NAME (e.g. invoke:hello.greet)",
            flags.capability
        )
    })?;
    let request = match &flags.data {
        Some(data) => {
            let body: serde_json::Value =
                serde_json::from_str(data).context("--data is not JSON")?;
            Request::post(&flags.path, &body).map_err(flat)?
        }
        None => Request::get(&flags.path),
    };
    Ok(Target {
        verb: verb.to_owned(),
        name: name.to_owned(),
        request,
        constraints: Constraints {
            strategy: flags.strategy.clone(),
            priority: flags.priority.clone(),
            ..Constraints::any()
        },
    })
}

/// Runs `crank call`; its output.
pub async fn call(flags: CallFlags) -> Result<String> {
    if flags.count == 0 || flags.concurrency == 0 {
        bail!("--count and --concurrency must be at least 1");
    }
    let endpoint = otlp_endpoint(flags.otlp_endpoint.as_deref().unwrap_or_default())
        .map_err(|problem| anyhow!("--{}: {problem}", OTLP_ENDPOINT.flag))?;
    // Dropped when the calls are done: the spans are sent before the exit.
    let _exporter = crank_trace::export::install_or_warn("crank-call", None, endpoint.as_ref())?;
    let target = Rc::new(target(&flags)?);
    let balance = match flags.balance {
        BalanceFlag::Controller => Balance::Controller,
        BalanceFlag::Local => Balance::Local,
    };
    let client = Client::new(&flags.client)?;
    let json = client.json;
    let fleet = Rc::new(client.fleet.with_balance(balance));
    let output = if flags.count == 1 {
        once(&fleet, &target, json).await
    } else {
        summary(fleet.clone(), target, flags.count, flags.concurrency, json).await
    };
    // The last calls' outcome reports are still on their way; they are
    // lost with the process unless it waits for them.
    fleet.flush_reports(REPORTS_FLUSH).await;
    output
}

/// How long `crank call` waits for its outcome reports before it exits.
const REPORTS_FLUSH: Duration = Duration::from_secs(2);

async fn once(fleet: &CrankClient, target: &Target, json: bool) -> Result<String> {
    let started = Instant::now();
    let reply = fleet
        .call(
            &target.verb,
            &target.name,
            &target.constraints,
            &target.request,
        )
        .await
        .map_err(flat)?;
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    let (worker, status) = (reply.worker.worker_id.clone(), reply.status);
    let body = reply.bytes().await.map_err(flat)?;
    let text = String::from_utf8_lossy(&body).into_owned();
    if json {
        let body = serde_json::from_slice::<serde_json::Value>(&body)
            .unwrap_or(serde_json::Value::String(text));
        return json_line(&serde_json::json!({
            "worker_id": worker,
            "status": status,
            "latency_ms": latency_ms,
            "body": body,
        }));
    }
    Ok(format!(
        "{text}\n(answered by {worker}, HTTP {status}, {latency_ms:.1} ms)"
    ))
}

/// What one caller task saw.
#[derive(Default)]
struct Tally {
    latencies: Vec<f64>,
    per_worker: BTreeMap<String, u32>,
    failures: BTreeMap<String, u32>,
}

async fn summary(
    fleet: Rc<CrankClient>,
    target: Rc<Target>,
    count: u32,
    concurrency: u32,
    json: bool,
) -> Result<String> {
    let next = Rc::new(std::cell::Cell::new(0u32));
    let started = Instant::now();
    let callers = (0..concurrency.min(count)).map(|_| {
        let (fleet, target, next) = (fleet.clone(), target.clone(), next.clone());
        async move {
            let mut tally = Tally::default();
            while next.get() < count {
                next.set(next.get() + 1);
                let began = Instant::now();
                let result = fleet
                    .call(
                        &target.verb,
                        &target.name,
                        &target.constraints,
                        &target.request,
                    )
                    .await;
                let answered = match result {
                    Ok(reply) => {
                        let worker = reply.worker.worker_id.clone();
                        reply.bytes().await.map(|_| worker)
                    }
                    Err(error) => Err(error),
                };
                match answered {
                    Ok(worker) => {
                        tally.latencies.push(began.elapsed().as_secs_f64() * 1000.0);
                        *tally.per_worker.entry(worker).or_default() += 1;
                    }
                    Err(error) => *tally.failures.entry(error.to_string()).or_default() += 1,
                }
            }
            tally
        }
    });
    let tallies = futures_util::future::join_all(callers).await;
    let elapsed = started.elapsed().max(Duration::from_micros(1));
    let mut total = Tally::default();
    for tally in tallies {
        total.latencies.extend(tally.latencies);
        for (worker, n) in tally.per_worker {
            *total.per_worker.entry(worker).or_default() += n;
        }
        for (failure, n) in tally.failures {
            *total.failures.entry(failure).or_default() += n;
        }
    }
    total.latencies.sort_by(f64::total_cmp);
    let sorted = &total.latencies;
    let summary = Summary {
        calls: count,
        failed: total.failures.values().sum(),
        calls_per_s: f64::from(count) / elapsed.as_secs_f64(),
        per_worker: total.per_worker,
        latency_ms: Percentiles {
            p50: percentile(sorted, 0.50),
            p90: percentile(sorted, 0.90),
            p99: percentile(sorted, 0.99),
            max: sorted.last().copied().unwrap_or_default(),
        },
        failures: total.failures,
    };
    if json {
        return json_line(&summary);
    }
    Ok(table(&summary))
}

fn table(summary: &Summary) -> String {
    let latency = &summary.latency_ms;
    let mut lines = vec![
        format!(
            "{} calls, {} failed, {:.0} calls/s",
            summary.calls, summary.failed, summary.calls_per_s
        ),
        format!(
            "latency ms: p50 {:.1}  p90 {:.1}  p99 {:.1}  max {:.1}",
            latency.p50, latency.p90, latency.p99, latency.max
        ),
        "WORKER                 CALLS  SHARE".to_owned(),
    ];
    let answered: u32 = summary.per_worker.values().sum();
    for (worker, calls) in &summary.per_worker {
        let share = f64::from(*calls) * 100.0 / f64::from(answered.max(1));
        lines.push(format!("{worker:<22} {calls:>5}  {share:>4.1} %"));
    }
    for (failure, calls) in &summary.failures {
        lines.push(format!("failed {calls}×: {failure}"));
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let sorted: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&sorted, 0.5), 50.0);
        assert_eq!(percentile(&sorted, 0.99), 99.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
        assert_eq!(percentile(&[3.0], 0.9), 3.0);
    }
}
