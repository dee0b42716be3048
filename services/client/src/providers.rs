//! [`Providers`]: what a client balancing on its own knows of the fleet, and
//! how it chooses: the live set from the controller's `GET /watch` (snapshot,
//! then changes), and per provider what its own calls measured.
//!
//! The choice is the controller's rule ([`crank_balance`]): power of two
//! choices by expected wait, the provider due in rotation order against one
//! drawn at random. Here the in-flight count is exact (this client's own
//! calls, or what the provider's last `crank-load` header said, whichever is
//! more) and the latency is the Peak-EWMA of this client's successful calls.
//! A provider that fails [`EJECT_AFTER_FAILURES`] calls in a row is left out
//! for an ejection that doubles each time, as the controller does.
//!
//! Plain state with synchronous methods; the client's watcher task feeds it.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use crank_balance::ejection::{ejection_length, EJECT_AFTER_FAILURES};
use crank_balance::{better, expected_wait, PeakEwma};
use crank_proto::domain::ObservedLoad;
use crank_proto::wire::{WatchEvent, WatchKind, WatchSnapshot};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use super::RoutedWorker;

/// How long a provider's `crank-load` figures stand for its in-flight count.
const OBSERVED_MAX_AGE: Duration = Duration::from_secs(1);

/// One provider as this client knows it.
#[derive(Debug)]
struct Provider {
    url: String,
    capabilities: Vec<String>,
    live: bool,
    /// The stream said it is draining: out until it registers again.
    draining: bool,
    latency: PeakEwma,
    in_flight: u32,
    observed: Option<(ObservedLoad, Instant)>,
    failures: u16,
    ejections: u16,
    ejected_until: Option<Instant>,
}

impl Provider {
    fn new(url: String, capabilities: Vec<String>, live: bool) -> Self {
        Provider {
            url,
            capabilities,
            live,
            draining: false,
            latency: PeakEwma::default(),
            in_flight: 0,
            observed: None,
            failures: 0,
            ejections: 0,
            ejected_until: None,
        }
    }

    /// Expected wait of a new call at `now`; `None` while no call measured it.
    fn wait(&self, now: Instant) -> Option<f64> {
        let observed = self.observed(now);
        let latency = self
            .latency
            .estimate_ms(now)
            .or_else(|| observed.map(|load| load.service_time.as_secs_f64() * 1000.0))?;
        let in_flight = self
            .in_flight
            .max(observed.map_or(0, |load| load.in_flight));
        let capacity = observed.map(|load| f64::from(load.capacity));
        Some(expected_wait(latency, f64::from(in_flight), capacity))
    }

    /// The figures of its last `crank-load` header, while they stand.
    fn observed(&self, now: Instant) -> Option<ObservedLoad> {
        self.observed
            .filter(|(_, at)| now.saturating_duration_since(*at) <= OBSERVED_MAX_AGE)
            .map(|(load, _)| load)
    }

    /// Whether its capacity is taken, by its own last word and the calls
    /// this client has sent it since.
    fn full(&self, now: Instant) -> bool {
        self.observed(now)
            .is_some_and(|load| self.in_flight.max(load.in_flight) >= load.capacity)
    }

    /// Room first, then the lesser expected wait (fewer calls in flight
    /// while either is unmeasured); never on a tie.
    fn prefers_over(&self, other: &Provider, now: Instant) -> bool {
        let (ours_full, theirs_full) = (self.full(now), other.full(now));
        if ours_full != theirs_full {
            return theirs_full;
        }
        match (self.wait(now), other.wait(now)) {
            (Some(ours), Some(theirs)) => better(ours, theirs),
            _ => self.in_flight < other.in_flight,
        }
    }
}

/// The fleet as a local-mode client sees it.
#[derive(Debug)]
pub struct Providers {
    workers: BTreeMap<String, Provider>,
    /// Per capability, the rotation position due next.
    due: HashMap<String, usize>,
    last_event_id: Option<u64>,
    rng: SmallRng,
}

impl Default for Providers {
    fn default() -> Self {
        Providers {
            workers: BTreeMap::new(),
            due: HashMap::new(),
            last_event_id: None,
            rng: SmallRng::from_os_rng(),
        }
    }
}

impl Providers {
    /// Whether a snapshot has arrived.
    pub fn loaded(&self) -> bool {
        self.last_event_id.is_some()
    }

    /// The id to resume the stream after (`Last-Event-ID`).
    pub fn last_event_id(&self) -> Option<u64> {
        self.last_event_id
    }

    /// Providers known.
    pub fn len(&self) -> usize {
        self.workers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.workers.is_empty()
    }

    /// The fleet replaced by `snapshot`; what calls measured of providers
    /// still in it is kept.
    pub fn apply_snapshot(&mut self, snapshot: &WatchSnapshot) {
        let mut previous = std::mem::take(&mut self.workers);
        for worker in &snapshot.workers {
            let mut provider = previous
                .remove(&worker.worker_id)
                .unwrap_or_else(|| Provider::new(worker.worker_url.clone(), Vec::new(), false));
            provider.url.clone_from(&worker.worker_url);
            provider.capabilities.clone_from(&worker.capabilities);
            provider.live = worker.is_healthy;
            self.workers.insert(worker.worker_id.clone(), provider);
        }
        self.last_event_id = Some(snapshot.last_event_id);
    }

    /// One change: a provider that the stream says is stale, deregistered or
    /// evicted is out of the choice at once.
    pub fn apply_event(&mut self, event: &WatchEvent) {
        self.last_event_id = Some(event.id);
        let id = &event.worker_id;
        match event.kind {
            WatchKind::Registered => {
                let Some(url) = event
                    .worker_url
                    .clone()
                    .or_else(|| self.workers.get(id).map(|p| p.url.clone()))
                else {
                    // An older controller's event without a URL: the next
                    // snapshot brings it.
                    return;
                };
                let provider = Provider::new(url, event.capabilities.clone(), true);
                self.workers.insert(id.clone(), provider);
            }
            WatchKind::Draining => {
                if let Some(provider) = self.workers.get_mut(id) {
                    provider.live = false;
                    provider.draining = true;
                }
            }
            WatchKind::Healthy | WatchKind::Stale => {
                if let Some(provider) = self.workers.get_mut(id) {
                    provider.live = event.kind == WatchKind::Healthy && !provider.draining;
                }
            }
            WatchKind::Deregistered | WatchKind::Evicted => {
                self.workers.remove(id);
            }
            WatchKind::Owned => {}
        }
    }

    /// A provider of `capability` (`<verb>:<name>`) not in `exclude`, by
    /// expected wait (or in plain rotation when `round_robin`); `None` when
    /// no live, unejected provider serves it.
    pub fn choose(
        &mut self,
        capability: &str,
        exclude: &[String],
        round_robin: bool,
        now: Instant,
    ) -> Option<RoutedWorker> {
        let candidates: Vec<(&String, &Provider)> = self
            .workers
            .iter()
            .filter(|(id, p)| {
                p.live
                    && p.ejected_until.is_none_or(|until| until <= now)
                    && p.capabilities.iter().any(|c| c == capability)
                    && !exclude.contains(id)
            })
            .collect();
        let count = candidates.len();
        if count == 0 {
            return None;
        }
        let due = self.due.get(capability).copied().unwrap_or(0) % count;
        let mut slot = due;
        if !round_robin && count > 1 {
            let other = (due + 1 + self.rng.random_range(0..count - 1)) % count;
            if let (Some((_, theirs)), Some((_, ours))) =
                (candidates.get(other), candidates.get(due))
            {
                if theirs.prefers_over(ours, now) {
                    slot = other;
                }
            }
        }
        // Full by its own last word: another may have room, as the
        // controller's scan finds (plain rotation skips full ones too).
        if candidates.get(slot).is_some_and(|(_, p)| p.full(now)) {
            let mut best: Option<usize> = None;
            for step in 0..count {
                let at = (due + step) % count;
                let Some((_, candidate)) = candidates.get(at) else {
                    continue;
                };
                if candidate.full(now) {
                    continue;
                }
                let beats = |current: usize| {
                    candidates
                        .get(current)
                        .is_some_and(|(_, b)| candidate.prefers_over(b, now))
                };
                if round_robin || best.is_none_or(beats) {
                    best = Some(at);
                    if round_robin {
                        break;
                    }
                }
            }
            slot = best.unwrap_or(slot);
        }
        let (id, provider) = candidates.get(slot)?;
        let chosen = RoutedWorker {
            worker_id: (*id).clone(),
            worker_url: provider.url.clone(),
            capability: capability.to_owned(),
            version: None,
        };
        self.due.insert(capability.to_owned(), slot + 1);
        Some(chosen)
    }

    /// A call to `worker_id` began.
    pub fn started(&mut self, worker_id: &str) {
        if let Some(provider) = self.workers.get_mut(worker_id) {
            provider.in_flight = provider.in_flight.saturating_add(1);
        }
    }

    /// A call to `worker_id` was refused as at capacity: busy, not failing,
    /// and its quick refusal says nothing of its latency.
    pub fn refused_busy(&mut self, worker_id: &str) {
        if let Some(provider) = self.workers.get_mut(worker_id) {
            provider.in_flight = provider.in_flight.saturating_sub(1);
        }
    }

    /// A call to `worker_id` ended after `latency`: a success feeds the
    /// estimate and ends an ejection, failures in a row begin one. Returns
    /// the length of the ejection it began, if any.
    pub fn finished(
        &mut self,
        worker_id: &str,
        latency: Duration,
        succeeded: bool,
        load: Option<ObservedLoad>,
        now: Instant,
    ) -> Option<Duration> {
        let provider = self.workers.get_mut(worker_id)?;
        provider.in_flight = provider.in_flight.saturating_sub(1);
        if let Some(load) = load {
            provider.observed = Some((load, now));
        }
        if succeeded {
            provider.latency.observe(latency, now);
            provider.failures = 0;
            provider.ejections = 0;
            provider.ejected_until = None;
            return None;
        }
        provider.failures = provider.failures.saturating_add(1);
        let ejected = provider.ejected_until.is_some_and(|until| until > now);
        if provider.failures < EJECT_AFTER_FAILURES || ejected {
            return None;
        }
        let length = ejection_length(provider.ejections);
        provider.ejections = provider.ejections.saturating_add(1);
        provider.failures = 0;
        provider.ejected_until = Some(now + length);
        Some(length)
    }
}

#[cfg(test)]
#[path = "providers_tests.rs"]
mod tests;
