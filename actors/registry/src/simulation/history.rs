//! The simulation's histories: random steps from a seed, hostile values
//! among them.

use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::super::RegistrySettings;
use crank_proto::domain::Strategy;
use crank_proto::wire::{CapabilityLoad, Load};

pub const WORKERS: u8 = 12;
pub const CAPABILITIES: [(&str, &str); 4] = [
    ("invoke", "hello.greet"),
    ("invoke", "num.op"),
    ("invoke", "img.resize"),
    ("stream", "tokens"),
];
/// Numbers a hostile peer sends, beside ordinary ones.
pub const HOSTILE_F64: [f64; 10] = [
    1e300,
    -1e300,
    f64::MAX,
    -1.0,
    0.0,
    1e-300,
    f64::NAN,
    f64::INFINITY,
    86_400_001.0,
    4_294_967_295.0,
];
pub const HOSTILE_U32: [u32; 5] = [u32::MAX, 0, 1_000_001, 4, 1];

/// A capability a simulated worker registers: which of [`CAPABILITIES`], its
/// major version, `max_concurrency`, `cost_tokens_per_invocation`, `slo_bid`.
pub type SimCapability = (usize, u64, Option<u32>, Option<f64>, Option<f64>);

/// One step of a history.
#[derive(Debug, Clone)]
pub enum Op {
    Register {
        worker: u8,
        instance: Option<u8>,
        capabilities: Vec<SimCapability>,
    },
    Heartbeat {
        worker: u8,
        instance: Option<u8>,
        load: Option<Load>,
    },
    Deregister {
        worker: u8,
        instance: Option<u8>,
    },
    /// `POST /drain/{id}`: no new routes until it registers again.
    Drain {
        worker: u8,
        instance: Option<u8>,
    },
    Route {
        capability: usize,
        version: Option<&'static str>,
        strategy: Option<Strategy>,
        exclude: Vec<u8>,
        budget: Option<f64>,
        bid: Option<f64>,
        p95_bound: Option<f64>,
        requires_gpu: bool,
    },
    Report {
        worker: u8,
        success: bool,
        latency_ms: Option<f64>,
    },
    Sweep {
        budget: usize,
    },
    /// The clock moves on by this many milliseconds.
    Advance(u64),
    /// The controller was not running for this many milliseconds.
    Pause(u64),
    /// Wall time jumps (NTP, an operator), monotonic time does not.
    WallJump(i64),
}

pub fn worker_id(worker: u8) -> String {
    format!("w{worker}")
}

pub fn instance_id(instance: u8) -> String {
    format!("i{instance}")
}

fn pick<T: Copy>(rng: &mut SmallRng, items: &[T]) -> T {
    items[rng.random_range(0..items.len())]
}

fn some_f64(rng: &mut SmallRng, ordinary: f64) -> Option<f64> {
    match rng.random_range(0..4) {
        0 => None,
        1 => Some(pick(rng, &HOSTILE_F64)),
        _ => Some(ordinary * rng.random_range(0.0..2.0)),
    }
}

fn random_load(rng: &mut SmallRng) -> Load {
    let mut load = Load::new(rng.random_range(0..10), rng.random_range(0..12));
    if rng.random_bool(0.1) {
        load.capacity = pick(rng, &HOSTILE_U32);
    }
    for _ in 0..rng.random_range(0..3) {
        let (verb, name) = pick(rng, &CAPABILITIES);
        load.capabilities.push(CapabilityLoad {
            capability: format!("{verb}:{name}"),
            in_flight: if rng.random_bool(0.1) {
                pick(rng, &HOSTILE_U32)
            } else {
                rng.random_range(0..8)
            },
            requests: rng.random_range(0..1000),
            window_s: some_f64(rng, 10.0).unwrap_or(10.0),
            p50_ms: some_f64(rng, 20.0),
            p95_ms: some_f64(rng, 80.0),
            error_rate: some_f64(rng, 0.3),
        });
    }
    load
}

fn random_op(rng: &mut SmallRng) -> Op {
    let worker = rng.random_range(0..WORKERS);
    let instance = rng.random_bool(0.6).then(|| rng.random_range(0..3));
    match rng.random_range(0..100) {
        0..=11 => Op::Register {
            worker,
            instance,
            capabilities: (0..rng.random_range(1..=3))
                .map(|_| {
                    (
                        rng.random_range(0..CAPABILITIES.len()),
                        rng.random_range(1..=2),
                        rng.random_bool(0.4).then(|| pick(rng, &HOSTILE_U32)),
                        some_f64(rng, 5.0),
                        some_f64(rng, 1.0),
                    )
                })
                .collect(),
        },
        12..=41 => Op::Heartbeat {
            worker,
            instance,
            load: rng.random_bool(0.7).then(|| random_load(rng)),
        },
        42..=43 => Op::Deregister { worker, instance },
        44..=45 => Op::Drain { worker, instance },
        46..=69 => Op::Route {
            capability: rng.random_range(0..CAPABILITIES.len()),
            version: pick(rng, &[None, None, Some("^1"), Some("^2"), Some(">=1")]),
            strategy: pick(
                rng,
                &[
                    None,
                    Some(Strategy::LeastLoaded),
                    Some(Strategy::RoundRobin),
                    Some(Strategy::Cheapest),
                ],
            ),
            exclude: (0..rng.random_range(0..2))
                .map(|_| rng.random_range(0..WORKERS))
                .collect(),
            budget: rng.random_bool(0.2).then(|| some_f64(rng, 5.0)).flatten(),
            bid: rng.random_bool(0.2).then(|| some_f64(rng, 1.0)).flatten(),
            p95_bound: rng.random_bool(0.1).then(|| some_f64(rng, 50.0)).flatten(),
            requires_gpu: rng.random_bool(0.05),
        },
        70..=79 => Op::Report {
            worker,
            success: rng.random_bool(0.4),
            latency_ms: some_f64(rng, 30.0),
        },
        80..=87 => Op::Sweep {
            budget: pick(rng, &[1, 3, 256]),
        },
        88..=96 => Op::Advance(pick(rng, &[10, 500, 2_000, 10_000, 40_000])),
        97..=98 => Op::Pause(rng.random_range(20_000..400_000)),
        _ => Op::WallJump(rng.random_range(-3_600_000..3_600_000)),
    }
}

pub fn settings_for(seed: u64) -> RegistrySettings {
    let mut rng = SmallRng::seed_from_u64(seed ^ 0x5e77);
    RegistrySettings {
        stale_after: Duration::from_secs(pick(&mut rng, &[2, 10, 30, 120])),
        evict_after: pick(&mut rng, &[None, Some(5), Some(60)]).map(Duration::from_secs),
        protect_threshold: pick(&mut rng, &[0.5, 1.0, 0.2]),
        default_strategy: pick(
            &mut rng,
            &[
                Strategy::LeastLoaded,
                Strategy::RoundRobin,
                Strategy::Cheapest,
            ],
        ),
    }
}

pub fn history(seed: u64, steps: usize) -> Vec<Op> {
    let mut rng = SmallRng::seed_from_u64(seed);
    (0..steps).map(|_| random_op(&mut rng)).collect()
}
