//! `crank bench`: load over real mTLS with keep-alive connections (`register-storm`:
//! a new connection and full handshake per request, counted by the server),
//! against a controller it starts itself (the same binary and settings as `crank
//! controller`) or one named by `--controller-url`. It prints a table, or one
//! JSON object per scenario with `--json`, and can write BENCHMARKS.md.
//!
//! Every scenario's throughput is also given as a ratio to `baseline`: the same
//! load against a bare endpoint on the same TLS stack that parses the same JSON
//! and answers `{}`, measured in the same invocation, so the figures say what the
//! registry costs on top of its transport on this machine.
//!
//! | question | file |
//! |---|---|
//! | What can it be asked to do? [`BenchFlags`], [`Scenario`](flags::Scenario) | [`flags`] |
//! | How is it run: rounds, baselines, medians, output? [`bench()`] | [`run`] |
//! | What does each scenario start, load and measure? | [`scenario`], [`observe`] for `metrics-scrape` and `watch`, [`routing`] for `heterogeneous` and `failing-worker`, [`balancing`] for `equal-capacity`, `saturated`, `local-mode` and `controller-outage`, [`protection`] for `policy-cost`, `fairness` and `shedding`, [`rolling`] for `rolling-restart` |
//! | How are `GET /watch` streams held and checked? [`watchers::Watchers`] | [`watchers`] |
//! | What requests does a scenario send? | [`calls`] |
//! | How is load generated and tallied? [`load::run_load`], [`load::Load`] | [`load`] |
//! | Which processes are loaded, and how are they started? [`target::Bench`], [`target::Target`] | [`target`] |
//! | How much CPU and memory did a process use? | [`probe`] |
//! | What is one scenario's result? [`Row`](row::Row), [`row::median_round`] | [`row`] |
//! | How is it shown: table, details, targets, BENCHMARKS.md (`report.md`)? | [`report`] |
//! | What is the `baseline` endpoint? [`serve_baseline`] | [`baseline`] |
//!
//! Child processes are [`crank_fleet::child::Child`]ren, as everywhere in crank.

mod balancing;
mod baseline;
mod calls;
mod cluster;
mod flags;
mod load;
mod observe;
mod probe;
mod protection;
mod report;
mod restart;
mod rolling;
mod routing;
mod row;
mod run;
mod scenario;
mod target;
mod watchers;

pub use baseline::serve_baseline;
pub use flags::BenchFlags;
pub use run::bench;
