//! The router: which of a capability's providers a route hands out.
//!
//! Every strategy first **filters**: a provider is skipped if the caller
//! excluded it, it is stale, it is ejected for failing, it serves no matching
//! version, or it misses a constraint (`requires_gpu`, the capability's
//! `constraints`, `budget_tokens`, the reported p95 latency). The load-aware
//! strategies also skip a provider that **reported** itself at capacity, and,
//! for a route bidding less than its capability's announced `slo_bid`, one
//! whose estimated load is into the reserve (the last [`RESERVE_SHARE`] of its
//! capacity) kept for routes bidding at least that.
//!
//! Then it **chooses**:
//!
//! - `least_loaded` (default): power of two choices by **expected wait**. The
//!   provider due in round-robin order is compared with one other drawn at
//!   random, and the one a new call is expected to wait less at wins
//!   ([`crank_balance::expected_wait`]: its latency estimate times the rounds
//!   of its capacity already in flight), the due one on a tie. The latency is
//!   the Peak-EWMA of what callers report (`POST /report`'s `latency_ms`, of
//!   successes only), else the service time the worker's answers or
//!   heartbeats state. While either's latency is unknown, the one with more
//!   estimated free capacity wins; while both loads are unknown too, the due
//!   one (a fleet that reports nothing is routed round-robin at round-robin's
//!   cost: the second draw is skipped). When a filter rejects both draws, or
//!   the winner has no free capacity left by the estimate, all providers are
//!   scanned for the least expected wait: a provider full by the estimate is
//!   never chosen while another has room.
//! - `round_robin`: the first provider in rotation order that passes the
//!   filters, load not looked at.
//! - `cheapest`: every provider is scanned; providers with room by the
//!   estimate come first, then the lowest `cost_tokens_per_invocation` wins
//!   (none announced ranks last), then the most free capacity, then rotation
//!   order.
//!
//! **Estimated load.** A provider's free capacity is its capacity (the
//! worker's reported `capacity`, and the capability's `max_concurrency` if
//! announced, whichever leaves less) minus what is in flight: the last
//! reported `in_flight` (the capability's own when the worker reports it per
//! capability) plus the routes this controller handed it since that report
//! and not yet reported back. Those routes are the controller's estimate
//! between reports, so a burst does not all land on the worker that looked
//! idle; each counts as in flight until a caller reports the call, or for
//! about the capability's reported median latency when none does (the count
//! decays with that time constant, [`DEFAULT_SERVICE_TIME`] when none is
//! reported: by Little's law it settles at rate × latency). A heartbeat with
//! a load resets it, and so does a report carrying the load the worker's
//! answer stated (its `crank-load` header, which then stands for the
//! worker's figures until the next heartbeat). A load older than half of
//! `stale_after` (two advised heartbeats) is ignored as unknown.
//!
//! The estimate **ranks, it never refuses** a provider as full: only the
//! worker's own report does (the one refusal it makes is a low bid's, out of
//! a reserve). The estimate is a guess (before a worker's first report
//! its latency is [`DEFAULT_SERVICE_TIME`], and at a thousand routes a second
//! that guess alone would count hundreds in flight), while the worker knows:
//! past its `max_concurrency` it answers 503 `at_capacity`, and the client
//! library retries on another provider.
//!
//! **Idempotency keys.** A route carrying `idempotency_key` skips the
//! strategy: the providers that pass the filters are ranked by rendezvous
//! hashing of the key and their id, and the highest wins, so every route of
//! one key reaches the same worker while it lives (the one that kept the
//! answer), and a provider leaving moves only the keys it held.
//!
//! **Ejection.** [`EJECT_AFTER_FAILURES`] failures reported in a row
//! (`POST /report`) eject a provider from routing for [`FIRST_EJECTION`],
//! doubling with each ejection up to [`MAX_EJECTION`], as Envoy's outlier
//! detection does. A reported success lifts it (and resets the doubling); so
//! does the first heartbeat once the interval has passed, or, for a worker
//! another controller owns (its heartbeats go there), the first sweep after
//! the interval while that owner still publishes it live.

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::time::Duration;

use actix::clock::Instant;
use rand::rngs::SmallRng;
use rand::Rng;

use super::liveness::Liveness;
use super::record::{StoredCapability, WorkerRecord};
pub use super::tally::{Tally, EJECT_AFTER_FAILURES, FIRST_EJECTION, MAX_EJECTION};
use crank_proto::domain::{MeasuredCapability, ObservedLoad, WorkerLoad};
use crank_proto::domain::{RouteQuery, Strategy};

/// Share of a provider's capacity kept for routes that bid at least its
/// capability's `slo_bid`.
pub const RESERVE_SHARE: f64 = 0.2;
/// How long a route counts as in flight when the provider reports no latency.
pub const DEFAULT_SERVICE_TIME: Duration = Duration::from_secs(1);

pub use super::rejection::{NoRoute, Rejection};

/// Splits a route's capability constraints into those some provider of
/// `providers` declares (kept: a requirement) and the others (ignored, named
/// back to the caller). The v1 contract let callers send free-form
/// `slo_constraints` that the original controller ignored; crank keeps those
/// callers routed by requiring only what it defines itself
/// (`latency_p95_ms`, `requires_gpu`) or what a provider announces.
pub fn declared_constraints(
    query: &RouteQuery,
    providers: &[Rc<str>],
    workers: &HashMap<Rc<str>, Box<WorkerRecord>>,
) -> Option<(RouteQuery, Vec<String>)> {
    if query.constraints.other.is_empty() {
        return None;
    }
    let key = query.key.as_str();
    let declared = |name: &str| {
        providers
            .iter()
            .filter_map(|id| workers.get(id))
            .any(|record| {
                record.capabilities.capabilities.iter().any(|c| {
                    &*c.key == key
                        && c.announced()
                            .and_then(|a| a.constraints.as_ref())
                            .is_some_and(|m| m.contains_key(name))
                })
            })
    };
    let (kept, ignored): (Vec<_>, Vec<_>) = query
        .constraints
        .other
        .iter()
        .cloned()
        .partition(|(name, _)| declared(name));
    if ignored.is_empty() {
        return None;
    }
    let mut narrowed = query.clone();
    narrowed.constraints.other = kept;
    Some((
        narrowed,
        ignored.into_iter().map(|(name, _)| name).collect(),
    ))
}

/// One limit on a provider: what it reported in flight, the routes handed
/// out since (the estimate), and the capacity.
#[derive(Debug, Clone, Copy)]
struct Occupancy {
    reported: f64,
    routed: f64,
    capacity: f64,
}

impl Occupancy {
    /// Estimated free slots; below zero when the estimate overshoots.
    fn free(self) -> f64 {
        self.capacity - self.reported - self.routed
    }
}

/// A provider that passed the filters.
pub struct Accepted<'a> {
    pub capability: &'a StoredCapability,
    /// Estimated free slots (below zero when the estimate overshoots);
    /// `None` when its capacity is unknown.
    pub free: Option<f64>,
    /// The expected wait of a call to it, in milliseconds
    /// ([`crank_balance::expected_wait`]); `None` while its latency is unknown.
    pub wait: Option<f64>,
}

/// What the router reads besides the candidate itself.
pub struct Judge<'a> {
    pub query: &'a RouteQuery,
    pub liveness: &'a Liveness,
    pub now: Instant,
    /// Load reports older than this are unknown.
    pub load_max_age: Duration,
    /// Whether load counts (not for `round_robin`).
    pub by_load: bool,
}

/// The capability's reported figures in `load`, if it reports per capability.
fn capability_load<'l>(load: &'l WorkerLoad, key: &str) -> Option<&'l MeasuredCapability> {
    load.capability(key)
}

/// How long a route to `record` for `key` is counted in flight.
pub fn service_time(record: &WorkerRecord, key: &str) -> Duration {
    record
        .load
        .as_ref()
        .and_then(|load| capability_load(load, key))
        .and_then(|c| c.p50)
        .filter(|p50| !p50.is_zero())
        .unwrap_or(DEFAULT_SERVICE_TIME)
}

impl Judge<'_> {
    /// The load the worker's last reported answer carried, if recent enough.
    fn fresh_observed(&self, record: &WorkerRecord) -> Option<ObservedLoad> {
        let (load, at) = record.tally.observed?;
        (self.now.saturating_duration_since(at) <= self.load_max_age).then_some(load)
    }

    /// The latency a call to `record` for `key` is expected to take, in
    /// milliseconds: what callers report (Peak-EWMA), else what the worker
    /// says of its service time (its last answer's, then its heartbeat's).
    fn latency_ms(&self, record: &WorkerRecord, key: &str) -> Option<f64> {
        let reported = record.tally.latency.estimate_ms(self.now);
        reported
            .or_else(|| {
                self.fresh_observed(record)
                    .map(|load| load.service_time.as_secs_f64() * 1000.0)
            })
            .or_else(|| {
                self.fresh_load(record)
                    .and_then(|load| capability_load(load, key))
                    .and_then(|c| c.p50)
                    .map(|p50| p50.as_secs_f64() * 1000.0)
            })
    }

    /// The record's load if it is recent enough to go by.
    fn fresh_load<'r>(&self, record: &'r WorkerRecord) -> Option<&'r WorkerLoad> {
        let at = record.tally.load_at?;
        (self.now.saturating_duration_since(at) <= self.load_max_age)
            .then_some(record.load.as_ref())
            .flatten()
    }

    /// The tighter of the limits known (the worker's capacity, the
    /// capability's `max_concurrency`), if any.
    fn occupancy(&self, record: &WorkerRecord, capability: &StoredCapability) -> Option<Occupancy> {
        let key = &*capability.key;
        let routed_since =
            |record: &WorkerRecord| record.tally.routed(self.now, service_time(record, key));
        if let Some(observed) = self.fresh_observed(record) {
            // The worker's word with its last reported answer: newer than
            // any heartbeat (a heartbeat with a load clears it).
            return Some(Occupancy {
                reported: f64::from(observed.in_flight),
                routed: routed_since(record),
                capacity: f64::from(observed.capacity),
            });
        }
        let load = self.fresh_load(record);
        let max_concurrency = capability.announced().and_then(|c| c.max_concurrency);
        if load.is_none() && max_concurrency.is_none() {
            // No limit known: the estimate has nothing to count against.
            return None;
        }
        let routed = routed_since(record);
        let mut tightest: Option<Occupancy> = None;
        let mut consider = |reported: u32, capacity: u32| {
            let limit = Occupancy {
                reported: f64::from(reported),
                routed,
                capacity: f64::from(capacity),
            };
            if capacity > 0 && tightest.is_none_or(|t| limit.free() < t.free()) {
                tightest = Some(limit);
            }
        };
        if let Some(load) = load {
            consider(load.in_flight, load.capacity);
        }
        if let Some(max) = max_concurrency {
            let in_flight = load.map_or(0, |load| {
                capability_load(load, key).map_or(load.in_flight, |c| c.in_flight)
            });
            consider(in_flight, max);
        }
        tightest
    }

    /// Whether `record` may serve this route, and its free capacity.
    pub fn judge<'r>(&self, record: &'r WorkerRecord) -> Result<Accepted<'r>, Rejection> {
        let query = self.query;
        if query.exclude.iter().any(|id| **id == *record.id) {
            return Err(Rejection::Excluded);
        }
        if record.draining {
            return Err(Rejection::Draining);
        }
        if !self.liveness.is_routable(record, self.now) {
            return Err(Rejection::Stale);
        }
        if record.tally.is_ejected() {
            return Err(Rejection::Ejected);
        }
        let capability = record
            .capabilities
            .matching(query.key.as_str(), query.version.as_ref())
            .ok_or(Rejection::NoMatchingVersion)?;
        let announced = capability.announced();
        let constraints = &query.constraints;
        if constraints.requires_gpu && announced.and_then(|c| c.requires_gpu) != Some(true) {
            return Err(Rejection::NoGpu);
        }
        for (key, requirement) in &constraints.other {
            let value = announced
                .and_then(|c| c.constraints.as_ref())
                .and_then(|c| c.get(key));
            if !requirement.is_met_by(value) {
                return Err(Rejection::Constraint(key.clone(), requirement.clone()));
            }
        }
        if let (Some(budget), Some(cost)) = (
            query.budget_tokens,
            announced.and_then(|c| c.cost_tokens_per_invocation),
        ) {
            if cost > budget {
                return Err(Rejection::OverBudget { cost, budget });
            }
        }
        if let Some(bound_ms) = constraints.latency_p95_ms {
            let p95 = self
                .fresh_load(record)
                .and_then(|load| capability_load(load, &capability.key))
                .and_then(MeasuredCapability::p95_ms);
            if let Some(p95_ms) = p95.filter(|p95| *p95 > bound_ms) {
                return Err(Rejection::Slow { p95_ms, bound_ms });
            }
        }
        if !self.by_load {
            return Ok(Accepted {
                capability,
                free: None,
                wait: None,
            });
        }
        let occupancy = self.occupancy(record, capability);
        if let Some(limit) = occupancy {
            // The worker's word, not the estimate: see the module's notes.
            if limit.reported >= limit.capacity {
                return Err(Rejection::AtCapacity);
            }
            // The reserve is a priority, not a limit: the estimate may keep
            // a low bid out of it (a high bid, or none asked, is never
            // refused on a guess).
            let provider_bid = announced.and_then(|c| c.slo_bid).unwrap_or(0.0);
            if provider_bid > 0.0
                && query.slo_bid.unwrap_or(0.0) < provider_bid
                && limit.capacity - limit.free() >= limit.capacity * (1.0 - RESERVE_SHARE)
            {
                return Err(Rejection::Reserved { bid: provider_bid });
            }
        }
        let wait = self.latency_ms(record, &capability.key).map(|latency| {
            let (in_flight, capacity) = match occupancy {
                Some(limit) => (limit.reported + limit.routed, Some(limit.capacity)),
                None => (
                    record
                        .tally
                        .routed(self.now, service_time(record, &capability.key)),
                    None,
                ),
            };
            crank_balance::expected_wait(latency, in_flight, capacity)
        });
        Ok(Accepted {
            capability,
            free: occupancy.map(|limit| limit.free()),
            wait,
        })
    }
}

/// A key's score for a provider: the same on every controller and run
/// (FNV-1a, not the std hasher, whose keys are the process's own).
fn rendezvous(key: &str, worker_id: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in key.bytes().chain([0xff]).chain(worker_id.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    // A final mix, so keys differing in the last bytes spread too.
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^ (hash >> 33)
}

/// Whether `theirs` beats `ours` in a power-of-two choice: by expected wait
/// when both are known, else by estimated free capacity; never on a tie.
fn prefers(theirs: &Accepted<'_>, ours: &Accepted<'_>) -> bool {
    match (theirs.wait, ours.wait) {
        (Some(theirs), Some(ours)) => crank_balance::better(theirs, ours),
        _ => theirs
            .free
            .zip(ours.free)
            .is_some_and(|(theirs, ours)| theirs > ours),
    }
}

/// The provider a route hands out: its position in the provider list, and the
/// capability version it serves.
pub struct Chosen<'a> {
    pub slot: usize,
    pub record: &'a WorkerRecord,
    pub capability: &'a StoredCapability,
}

/// Chooses among `providers` (the rotation of one key, `due` the position of
/// the provider due next) by `strategy`.
pub fn choose<'a>(
    providers: &[Rc<str>],
    due: usize,
    workers: &'a HashMap<Rc<str>, Box<WorkerRecord>>,
    judge: &Judge<'_>,
    strategy: Strategy,
    rng: &mut SmallRng,
) -> Result<Chosen<'a>, Vec<(usize, String)>> {
    let count = providers.len();
    let at = |slot: usize| -> Option<(&'a WorkerRecord, Result<Accepted<'a>, Rejection>)> {
        let record: &'a WorkerRecord = workers.get(providers.get(slot)?)?;
        Some((record, judge.judge(record)))
    };
    let chosen = |slot: usize, record: &'a WorkerRecord, accepted: Accepted<'a>| Chosen {
        slot,
        record,
        capability: accepted.capability,
    };
    if count == 0 {
        return Err(Vec::new());
    }
    let due = due % count;
    if let Some(key) = judge.query.idempotency_key.as_deref() {
        // Rendezvous hashing: each key ranks the providers its own way, the
        // highest that passes the filters wins, and a provider leaving moves
        // only its own keys.
        let mut best: Option<(u64, Chosen<'a>)> = None;
        for slot in 0..count {
            let Some((record, Ok(accepted))) = at(slot) else {
                continue;
            };
            let score = rendezvous(key, &record.id);
            if best.as_ref().is_none_or(|(top, _)| score > *top) {
                best = Some((score, chosen(slot, record, accepted)));
            }
        }
        if let Some((_, chosen)) = best {
            return Ok(chosen);
        }
    } else if strategy == Strategy::LeastLoaded {
        let first = at(due);
        if let Some((record, Ok(accepted))) = first {
            if (accepted.free.is_none() && accepted.wait.is_none()) || count == 1 {
                // Unknown load: round-robin order, at round-robin's cost.
                return Ok(chosen(due, record, accepted));
            }
            let other = (due + 1 + rng.random_range(0..count - 1)) % count;
            let winner = match at(other) {
                Some((other_record, Ok(other_accepted))) if prefers(&other_accepted, &accepted) => {
                    (other, other_record, other_accepted)
                }
                _ => (due, record, accepted),
            };
            // Full by the estimate: another may have room (the scan below).
            if winner.2.free.is_none_or(|free| free > 0.0) {
                return Ok(chosen(winner.0, winner.1, winner.2));
            }
        } else if count >= 2 {
            let other = (due + 1 + rng.random_range(0..count - 1)) % count;
            if let Some((record, Ok(accepted))) = at(other) {
                if accepted.free.is_none_or(|free| free > 0.0) {
                    return Ok(chosen(other, record, accepted));
                }
            }
        }
    }
    // A scan in rotation order: the first accepted for round_robin, the best
    // for the others.
    let mut best: Option<(Chosen<'a>, (bool, f64, f64))> = None;
    for step in 0..count {
        let slot = (due + step) % count;
        let Some((record, Ok(accepted))) = at(slot) else {
            continue;
        };
        let free = accepted.free.unwrap_or(f64::NEG_INFINITY);
        let cost = match strategy {
            Strategy::Cheapest => accepted
                .capability
                .announced()
                .and_then(|c| c.cost_tokens_per_invocation)
                .unwrap_or(f64::INFINITY),
            // Unknown latency ranks first: a call measures it.
            _ => accepted.wait.unwrap_or(0.0),
        };
        // Room by the estimate first: full ones only when none has room.
        let full = accepted.free.is_some_and(|free| free <= 0.0);
        let rank = (full, cost, -free);
        if strategy == Strategy::RoundRobin {
            return Ok(chosen(slot, record, accepted));
        }
        if best.as_ref().is_none_or(|(_, b)| rank < *b) {
            best = Some((chosen(slot, record, accepted), rank));
        }
    }
    if let Some((chosen, _)) = best {
        return Ok(chosen);
    }
    // Nothing passed: say why.
    Err(rejections(providers, workers, judge))
}

/// Why providers of the rotation `providers` fail `judge`: the count per
/// reason, the commonest first. What a refusal says, and what a traced route
/// records of the providers it passed over.
pub fn rejections(
    providers: &[Rc<str>],
    workers: &HashMap<Rc<str>, Box<WorkerRecord>>,
    judge: &Judge<'_>,
) -> Vec<(usize, String)> {
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    for record in providers.iter().filter_map(|id| workers.get(id)) {
        if let Err(rejection) = judge.judge(record) {
            *reasons.entry(rejection.to_string()).or_default() += 1;
        }
    }
    let mut reasons: Vec<(usize, String)> = reasons.into_iter().map(|(r, n)| (n, r)).collect();
    reasons.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    reasons
}
