//! Deterministic simulation of the registry core, as FoundationDB and
//! TigerBeetle test theirs: a seeded generator writes a random history of
//! registrations (new instances among them), heartbeats with random and
//! hostile loads, deregistrations, drains, routes of every strategy and constraint,
//! reports, sweep steps, pauses and clock jumps; [`execute`] plays it against
//! a [`Registry`] and, after every step, checks the invariants below against
//! the registry's state and against a [`Model`] the simulator keeps from
//! what it was told. A failing history is shrunk to the shortest step list
//! that still fails, and printed with its seed.
//!
//! Invariants, every step:
//! - no panic (peer values go through the same parsing as the HTTP edge);
//! - a route never hands out a worker that is unknown, marked stale, silent
//!   for `stale_after` outside a grace period, excluded, ejected or draining;
//! - a round-robin route with no constraints finds a provider whenever the
//!   model knows one that is certainly routable (no phantom misses);
//! - the capability index and the records agree both ways, with no
//!   duplicate in a rotation;
//! - the registered ids are the model's (registrations, deregistrations and
//!   the evictions the sweeps reported), and capability counts, `/stats` and
//!   the stale and ejected counts equal a recount;
//! - every live record that this controller judges has exactly one queued
//!   deadline.
//!
//! `CRANK_SIM_SEEDS=N` runs N seeds (default 32), `CRANK_SIM_SEED=S` replays
//! one, `CRANK_SIM_STEPS` sets the history length (default 300).
mod cluster;
mod history;
mod invariants;
mod model;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use actix::clock::Instant;

use super::core::Registry;
use super::liveness::GraceReason;
use super::messages::{DeregisterOutcome, RegistryError};
use super::RegistrySettings;
use crank_proto::domain::{CallReport, Registration, RouteQuery, Strategy, WorkerLoad};
use crank_proto::wire::{
    Capability, Outcome, RegisterRequest, ReportRequest, RouteRequest, SloConstraints,
};
use history::{history, instance_id, settings_for, worker_id, Op, CAPABILITIES};
use invariants::check;
use model::{Clock, Model, ModelWorker};

/// Plays `ops`; the first broken invariant, with the step it broke at.
fn execute(settings: RegistrySettings, ops: &[Op]) -> Result<(), (usize, String)> {
    let mut registry = Registry::new(settings);
    let mut model = Model::default();
    let mut clock = Clock {
        start: Instant::now(),
        elapsed: Duration::ZERO,
        wall_skew_ms: 0,
    };
    for (step, op) in ops.iter().enumerate() {
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            apply(&mut registry, &mut model, &mut clock, op)?;
            check(&mut registry, &model, clock.now())
        }));
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(problem)) => return Err((step, problem)),
            Err(panic) => {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default();
                return Err((step, format!("panicked: {message}")));
            }
        }
    }
    Ok(())
}

fn apply(
    registry: &mut Registry,
    model: &mut Model,
    clock: &mut Clock,
    op: &Op,
) -> Result<(), String> {
    let stale_after = registry.settings().stale_after;
    let now = clock.now();
    match op {
        Op::Register {
            worker,
            instance,
            capabilities,
        } => {
            let request = RegisterRequest {
                worker_id: worker_id(*worker),
                worker_url: format!("https://{}.local:8500", worker_id(*worker)),
                capabilities: capabilities
                    .iter()
                    .map(|(c, major, max, cost, bid)| {
                        let (verb, name) = CAPABILITIES[*c];
                        Capability {
                            max_concurrency: *max,
                            cost_tokens_per_invocation: *cost,
                            slo_bid: *bid,
                            ..Capability::new(verb, name, &format!("{major}.0.0"))
                        }
                    })
                    .collect(),
                instance: instance.map(instance_id),
                health_check: None,
            };
            // The HTTP edge: what does not parse never reaches the core.
            let Ok(registration) = Registration::try_from(request) else {
                return Ok(());
            };
            let keys = registration
                .capabilities
                .iter()
                .map(|c| c.key.to_string())
                .collect();
            registry.register(registration, "admin/sim", now);
            model.workers.insert(
                worker_id(*worker),
                ModelWorker {
                    instance: instance.map(instance_id),
                    keys,
                    last_beat: now.mono,
                    marked_stale: false,
                    ejected_until: None,
                    draining: false,
                },
            );
        }
        Op::Heartbeat {
            worker,
            instance,
            load,
        } => {
            let load = match load.as_ref().map(WorkerLoad::try_from).transpose() {
                Ok(load) => load,
                Err(_) => return Ok(()),
            };
            let id = worker_id(*worker);
            let instance = instance.map(instance_id);
            let answer = registry.heartbeat(&id, instance.as_deref(), load, now);
            let known = model.workers.get_mut(&id);
            match (answer, known) {
                (Ok(_), Some(known)) => {
                    if instance.is_some() && known.instance != instance {
                        return Err(format!("a beat of {id} from a replaced instance counted"));
                    }
                    known.last_beat = now.mono;
                    known.marked_stale = false;
                    if known.ejected_until.is_some_and(|until| until <= now.mono) {
                        known.ejected_until = None;
                    }
                }
                (Err(RegistryError::UnknownWorker(_)), None) => {}
                (Err(RegistryError::Superseded { .. }), Some(known))
                    if instance.is_some() && known.instance != instance => {}
                (answer, known) => {
                    return Err(format!(
                        "heartbeat of {id} answered {answer:?}, the model knows {known:?}"
                    ))
                }
            }
        }
        Op::Deregister { worker, instance } => {
            let id = worker_id(*worker);
            let instance = instance.map(instance_id);
            let outcome = registry.deregister(&id, instance.as_deref());
            let expected = match model.workers.get(&id) {
                None => DeregisterOutcome::Unknown,
                Some(known) if instance.is_some() && known.instance != instance => {
                    DeregisterOutcome::Superseded
                }
                Some(_) => DeregisterOutcome::Removed,
            };
            if outcome != expected {
                return Err(format!(
                    "deregister of {id}: {outcome:?}, expected {expected:?}"
                ));
            }
            if outcome == DeregisterOutcome::Removed {
                model.workers.remove(&id);
            }
        }
        Op::Drain { worker, instance } => {
            let id = worker_id(*worker);
            let instance = instance.map(instance_id);
            let answer = registry.drain(&id, instance.as_deref(), now);
            match (answer, model.workers.get_mut(&id)) {
                (Ok(()), Some(known)) if instance.is_none() || known.instance == instance => {
                    known.draining = true;
                }
                (Err(RegistryError::UnknownWorker(_)), None) => {}
                (Err(RegistryError::Superseded { .. }), Some(known))
                    if instance.is_some() && known.instance != instance => {}
                (answer, known) => {
                    return Err(format!(
                        "drain of {id} answered {answer:?}, the model knows {known:?}"
                    ))
                }
            }
        }
        Op::Route {
            capability,
            version,
            strategy,
            exclude,
            budget,
            bid,
            p95_bound,
            requires_gpu,
        } => {
            let (verb, name) = CAPABILITIES[*capability];
            let mut request = RouteRequest::new(verb, name);
            request.version = version.map(str::to_owned);
            request.strategy = strategy.map(|s| s.as_str().to_owned());
            request.exclude = exclude.iter().map(|w| worker_id(*w)).collect();
            request.budget_tokens = *budget;
            request.slo_bid = *bid;
            if p95_bound.is_some() || *requires_gpu {
                request.slo_constraints = Some(SloConstraints {
                    latency_p95_ms: *p95_bound,
                    requires_gpu: requires_gpu.then_some(true),
                    ..SloConstraints::default()
                });
            }
            let Ok(query) = RouteQuery::try_from(&request) else {
                return Ok(());
            };
            let key = query.key.to_string();
            match registry.route(&query, now) {
                Ok(choice) => {
                    let Some(known) = model.workers.get(&choice.worker_id) else {
                        return Err(format!(
                            "routed {key} to unknown worker {}",
                            choice.worker_id
                        ));
                    };
                    if !known.keys.contains(&key) {
                        return Err(format!(
                            "routed {key} to {}, which does not serve it",
                            choice.worker_id
                        ));
                    }
                    if request.exclude.contains(&choice.worker_id) {
                        return Err(format!("routed {key} to excluded {}", choice.worker_id));
                    }
                    if !model.may_route(known, now.mono, stale_after) {
                        return Err(format!(
                            "routed {key} to {}, which is stale or ejected: {known:?}",
                            choice.worker_id
                        ));
                    }
                }
                Err(_) => {
                    let plain = query.version.is_none()
                        && query.exclude.is_empty()
                        && query.budget_tokens.is_none()
                        && query.slo_bid.is_none()
                        && query.constraints == Default::default()
                        && query
                            .strategy
                            .unwrap_or(registry.settings().default_strategy)
                            == Strategy::RoundRobin;
                    let routable = model.workers.iter().find(|(_, w)| {
                        w.keys.contains(&key) && Model::surely_routable(w, now.mono, stale_after)
                    });
                    if let (true, Some((id, _))) = (plain, routable) {
                        return Err(format!("no route to {key} while {id} is routable"));
                    }
                }
            }
        }
        Op::Report {
            worker,
            success,
            latency_ms,
        } => {
            let request = ReportRequest {
                worker_id: worker_id(*worker),
                outcome: if *success {
                    Outcome::Success
                } else {
                    Outcome::Failure
                },
                latency_ms: *latency_ms,
                load: None,
                capability: None,
            };
            let Ok(report) = CallReport::try_from(&request) else {
                return Ok(());
            };
            let answer = registry.report(&report, now);
            match (answer, model.workers.get_mut(&request.worker_id)) {
                (Ok(ack), Some(known)) => {
                    if *success {
                        known.ejected_until = None;
                    }
                    if let Some(length) = ack.ejected_for {
                        if *success || known.ejected_until.is_some() {
                            return Err(format!(
                                "{} ejected by a success or twice",
                                request.worker_id
                            ));
                        }
                        known.ejected_until = Some(now.mono + length);
                    }
                }
                (Err(RegistryError::UnknownWorker(_)), None) => {}
                (answer, known) => {
                    return Err(format!(
                        "report answered {answer:?}, the model knows {known:?}"
                    ))
                }
            }
        }
        Op::Sweep { budget } => {
            let step = registry.sweep_step(now, *budget);
            if step.protected.is_some() {
                model.grace = Some((now.mono, now.mono + stale_after / 2));
            }
            for (id, _) in &step.newly_stale {
                let Some(known) = model.workers.get_mut(&**id) else {
                    return Err(format!("sweep marked unknown {id} stale"));
                };
                if now.mono.saturating_duration_since(known.last_beat) < stale_after {
                    return Err(format!("sweep marked {id} stale though it beat in time"));
                }
                known.marked_stale = true;
            }
            for (id, ..) in &step.evicted {
                match model.workers.remove(&**id) {
                    Some(known) if known.marked_stale => {}
                    other => {
                        return Err(format!("sweep evicted {id}, not marked stale: {other:?}"))
                    }
                }
            }
        }
        Op::Advance(ms) => clock.elapsed += Duration::from_millis(*ms),
        Op::Pause(ms) => {
            clock.elapsed += Duration::from_millis(*ms);
            let now = clock.now();
            let unseen_for = Duration::from_millis(*ms);
            let until = registry.begin_grace(now, GraceReason::Paused { unseen_for });
            model.grace = Some((now.mono, until));
        }
        Op::WallJump(ms) => clock.wall_skew_ms += ms,
    }
    Ok(())
}

/// The shortest sub-history of `ops` that still `fails`, by removing chunks
/// while the failure persists (delta debugging, greedy).
fn shrink<T: Clone>(mut ops: Vec<T>, fails: impl Fn(&[T]) -> bool) -> Vec<T> {
    let mut chunk = ops.len() / 2;
    while chunk >= 1 {
        let mut start = 0;
        while start < ops.len() {
            let mut candidate = ops.clone();
            candidate.drain(start..(start + chunk).min(ops.len()));
            if fails(&candidate) {
                ops = candidate;
            } else {
                start += chunk;
            }
        }
        chunk /= 2;
    }
    ops
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// The seeds to run and the steps of each, from the environment.
fn seeds_and_steps() -> (Vec<u64>, usize) {
    let steps = env_number("CRANK_SIM_STEPS").unwrap_or(300) as usize;
    let seeds = match env_number("CRANK_SIM_SEED") {
        Some(seed) => vec![seed],
        None => (0..env_number("CRANK_SIM_SEEDS").unwrap_or(32)).collect(),
    };
    (seeds, steps)
}

/// The failure report: seed, problem, the shortest failing history, replay.
fn report<T: std::fmt::Debug>(seed: u64, steps: usize, problem: &str, shortest: &[T]) -> String {
    format!(
        "seed {seed}: {problem}\n\
         shortest failing history ({} steps):\n{}\n\
         replay with CRANK_SIM_SEED={seed} CRANK_SIM_STEPS={steps}",
        shortest.len(),
        shortest
            .iter()
            .enumerate()
            .map(|(i, op)| format!("  {i}: {op:?}"))
            .collect::<Vec<_>>()
            .join("\n")
    )
}

fn rate(what: &str, seeds: usize, steps: usize, started: std::time::Instant) {
    let elapsed = started.elapsed().as_secs_f64();
    eprintln!(
        "{what}: {seeds} seeds × {steps} steps in {elapsed:.2} s ({:.0} steps/s)",
        (seeds * steps) as f64 / elapsed.max(1e-9)
    );
}

#[test]
fn simulation_of_the_registry_core_keeps_its_invariants() {
    let (seeds, steps) = seeds_and_steps();
    let started = std::time::Instant::now();
    for &seed in &seeds {
        let settings = settings_for(seed);
        let ops = history(seed, steps);
        if let Err((step, problem)) = execute(settings, &ops) {
            let shortest = shrink(ops[..=step].to_vec(), |ops| execute(settings, ops).is_err());
            let problem = format!(
                "step {step}: {problem} (settings {settings:?}); shortened: {:?}",
                execute(settings, &shortest).err()
            );
            panic!("{}", report(seed, steps, &problem, &shortest));
        }
    }
    rate("simulation", seeds.len(), steps, started);
}

#[test]
fn simulation_of_a_cluster_converges_once_the_store_heals() {
    let (seeds, steps) = seeds_and_steps();
    let started = std::time::Instant::now();
    for &seed in &seeds {
        let ops = cluster::cluster_history(seed, steps);
        if let Err(problem) = cluster::execute_cluster(seed, &ops) {
            let shortest = shrink(ops, |ops| cluster::execute_cluster(seed, ops).is_err());
            let problem = format!(
                "{problem}; shortened: {:?}",
                cluster::execute_cluster(seed, &shortest).err()
            );
            panic!("{}", report(seed, steps, &problem, &shortest));
        }
    }
    rate("cluster simulation", seeds.len(), steps, started);
}
