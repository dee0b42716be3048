//! [`CapabilityMeter`]: one capability's load as its middleware
//! ([`Measure`](super::measure::Measure)) sees it: the requests in flight now
//! (never more than its limit, the capability's `max_concurrency`), and over a
//! window (the time since the last heartbeat) how many were
//! answered, how fast, and how many failed.
//!
//! Latencies go into a fixed histogram of atomic counters, so recording one
//! takes no lock and no allocation whatever the load, and a window costs the
//! same memory at one request a minute as at a hundred thousand a second.
//! Buckets are exact below 16 µs and then 8 per power of two, so a percentile
//! is within 1/16 (about 6 %) of the true value.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crank_proto::wire::CapabilityLoad;

/// Latencies below this many microseconds have a bucket each.
const EXACT: u64 = 16;
/// Buckets per power of two above [`EXACT`].
const PER_OCTAVE: u64 = 8;
/// The largest power of two with buckets of its own (2^31 µs, about 36
/// minutes); slower answers are counted in the last bucket.
const MAX_EXPONENT: u32 = 31;
/// Buckets in a histogram.
const BUCKETS: usize = (EXACT + (MAX_EXPONENT as u64 - 3) * PER_OCTAVE) as usize;

/// The bucket of a latency of `micros`.
fn bucket(micros: u64) -> usize {
    if micros < EXACT {
        return micros as usize;
    }
    let exponent = 63 - micros.leading_zeros();
    if exponent > MAX_EXPONENT {
        return BUCKETS - 1;
    }
    let step = (micros >> (exponent - 3)) & (PER_OCTAVE - 1);
    (EXACT + u64::from(exponent - 4) * PER_OCTAVE + step) as usize
}

/// The middle of bucket `index`, in microseconds.
fn midpoint(index: usize) -> f64 {
    let index = index as u64;
    if index < EXACT {
        return index as f64;
    }
    let exponent = (index - EXACT) / PER_OCTAVE + 4;
    let step = (index - EXACT) % PER_OCTAVE;
    let width = 1u64 << (exponent - 3);
    ((PER_OCTAVE + step) * width) as f64 + (width - 1) as f64 / 2.0
}

/// The `quantile` (0 to 1) of the latencies counted in `counts`, in
/// milliseconds; `None` if there are none.
fn percentile_ms(counts: &[u32], quantile: f64) -> Option<f64> {
    let total: u64 = counts.iter().map(|&c| u64::from(c)).sum();
    if total == 0 {
        return None;
    }
    let rank = ((quantile * total as f64).ceil() as u64).clamp(1, total);
    let mut seen = 0;
    counts.iter().enumerate().find_map(|(index, &count)| {
        seen += u64::from(count);
        (seen >= rank).then(|| midpoint(index) / 1000.0)
    })
}

/// One capability's load, shared by the worker's HTTP threads (which
/// record into it) and its heartbeat (which reads and resets the window).
#[derive(Debug)]
pub struct CapabilityMeter {
    capability: String,
    limit: u32,
    in_flight: AtomicU32,
    /// Requests admitted since the start: a draining worker watches it to
    /// see calls still arriving.
    admitted: AtomicU64,
    failures: AtomicU64,
    latencies: Box<[AtomicU32]>,
    window_started: Mutex<Instant>,
    /// The moving average of its service time, in microseconds (an `f64`'s
    /// bits; 0 before the first answer), for the `crank-load` header.
    service_micros: AtomicU64,
}

/// The weight of each new answer in [`CapabilityMeter::service_time_ms`]:
/// about the last twenty answers count.
const SERVICE_WEIGHT: f64 = 0.05;

impl CapabilityMeter {
    /// A meter for the capability `<verb>:<name>` admitting `limit` requests
    /// at once, its window starting now.
    pub fn new(capability: impl Into<String>, limit: u32) -> Self {
        CapabilityMeter {
            capability: capability.into(),
            limit,
            in_flight: AtomicU32::new(0),
            admitted: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            latencies: (0..BUCKETS).map(|_| AtomicU32::new(0)).collect(),
            window_started: Mutex::new(Instant::now()),
            service_micros: AtomicU64::new(0f64.to_bits()),
        }
    }

    /// The moving average of its service time, in milliseconds (0 before
    /// the first answer).
    pub fn service_time_ms(&self) -> f64 {
        f64::from_bits(self.service_micros.load(Ordering::Relaxed)) / 1000.0
    }

    /// What the `crank-load` header of an answer says now: the requests in
    /// flight besides the one answered.
    pub fn answer_load(&self) -> crank_proto::wire::AnswerLoad {
        crank_proto::wire::AnswerLoad {
            in_flight: self.in_flight().saturating_sub(1),
            capacity: self.limit,
            service_ms: self.service_time_ms(),
        }
    }

    /// `<verb>:<name>`.
    pub fn capability(&self) -> &str {
        &self.capability
    }

    /// Requests of this capability being answered now.
    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Requests admitted since the start.
    pub fn admitted(&self) -> u64 {
        self.admitted.load(Ordering::Relaxed)
    }

    /// Requests it admits at once.
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// Counts a request in flight until the returned guard is dropped, unless
    /// [`CapabilityMeter::limit`] requests already are: then `None`.
    pub fn enter(self: &Arc<Self>) -> Option<InFlight> {
        let admitted = self
            .in_flight
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |now| {
                (now < self.limit).then_some(now + 1)
            });
        admitted.ok().map(|_| {
            self.admitted.fetch_add(1, Ordering::Relaxed);
            InFlight(self.clone())
        })
    }

    /// Records an answer given after `latency`; `failed` if it was a server
    /// error or none at all.
    pub fn record(&self, latency: Duration, failed: bool) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.latencies[bucket(micros)].fetch_add(1, Ordering::Relaxed);
        let sample = micros as f64;
        // A lost race drops one sample from the average, never corrupts it.
        let _ = self
            .service_micros
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                let average = f64::from_bits(bits);
                let next = if average == 0.0 {
                    sample
                } else {
                    average + (sample - average) * SERVICE_WEIGHT
                };
                Some(next.to_bits())
            });
        if failed {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The figures of the window so far; a new window starts.
    pub fn take(&self) -> CapabilityLoad {
        let now = Instant::now();
        let started = {
            let mut started = self
                .window_started
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            std::mem::replace(&mut *started, now)
        };
        let counts: Vec<u32> = self
            .latencies
            .iter()
            .map(|count| count.swap(0, Ordering::Relaxed))
            .collect();
        let failures = self.failures.swap(0, Ordering::Relaxed);
        let requests: u64 = counts.iter().map(|&c| u64::from(c)).sum();
        CapabilityLoad {
            capability: self.capability.clone(),
            in_flight: self.in_flight(),
            requests,
            window_s: now.duration_since(started).as_secs_f64(),
            p50_ms: percentile_ms(&counts, 0.50),
            p95_ms: percentile_ms(&counts, 0.95),
            error_rate: (requests > 0).then(|| (failures.min(requests)) as f64 / requests as f64),
        }
    }
}

/// A request counted in flight by its [`CapabilityMeter`] for as long as this lives.
#[derive(Debug)]
pub struct InFlight(Arc<CapabilityMeter>);

impl InFlight {
    /// The meter it counts in.
    pub fn meter(&self) -> &CapabilityMeter {
        &self.0
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_latency_falls_in_a_bucket_whose_middle_is_within_a_sixteenth() {
        let mut last = 0;
        for micros in (0..100_000).chain([1 << 20, (1 << 31) - 1, 1 << 31, u64::MAX]) {
            let index = bucket(micros);
            assert!(index < BUCKETS, "{micros}");
            assert!(index >= last, "buckets grow with the latency: {micros}");
            last = index;
            if micros < 1 << 32 {
                let middle = midpoint(index);
                let error = (middle - micros as f64).abs() / (micros as f64).max(1.0);
                assert!(error <= 1.0 / 16.0, "{micros} µs read as {middle}");
            }
        }
        assert_eq!(bucket(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn a_window_reports_percentiles_and_failures_then_starts_anew() {
        let meter = Arc::new(CapabilityMeter::new("invoke:echo.say", 8));
        for ms in 1..=100 {
            meter.record(Duration::from_millis(ms), ms > 90);
        }
        let guard = meter.enter().unwrap();
        let load = meter.take();
        assert_eq!(load.capability, "invoke:echo.say");
        assert_eq!(load.requests, 100);
        assert_eq!(load.in_flight, 1);
        let near = |found: Option<f64>, wanted: f64| {
            let found = found.unwrap();
            assert!(
                (found - wanted).abs() <= wanted / 16.0,
                "{found} ≠ {wanted}"
            );
        };
        near(load.p50_ms, 50.0);
        near(load.p95_ms, 95.0);
        assert_eq!(load.error_rate, Some(0.1));
        drop(guard);

        let empty = meter.take();
        assert_eq!(empty.requests, 0);
        assert_eq!(empty.in_flight, 0);
        assert_eq!(
            (empty.p50_ms, empty.p95_ms, empty.error_rate),
            (None, None, None)
        );
    }

    #[test]
    fn it_admits_its_limit_at_once_and_one_more_when_one_leaves() {
        let meter = Arc::new(CapabilityMeter::new("invoke:echo.say", 2));
        let first = meter.enter().expect("the first is admitted");
        let _second = meter.enter().expect("the second is admitted");
        assert!(meter.enter().is_none(), "a third is refused at the limit");
        assert_eq!(meter.in_flight(), 2, "a refusal is not counted in flight");
        drop(first);
        assert!(meter.enter().is_some(), "room again once one leaves");
    }
}
