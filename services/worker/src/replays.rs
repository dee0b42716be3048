//! [`Replays`]: the answers a worker keeps per (caller identity,
//! `Idempotency-Key`), so a retried call is answered again without running
//! its handler twice (the original crank's ADR-0026; the header is the IETF
//! httpapi draft's).
//!
//! A key is first *in flight* (a second request with it is `409`), then
//! *done* with the answer's status, content type and body, kept for a TTL
//! (1 h), and bounded in entries and bytes: past either, the oldest go
//! first. The same key with a different request (method, path or body) is
//! `422`. Plain data and synchronous methods, tested here; the middleware is
//! [`idempotency`](super::idempotency).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use actix_web::web::Bytes;

/// How long a completed answer is kept.
pub const DEFAULT_TTL: Duration = Duration::from_secs(3600);
/// Keys kept at most.
pub const MAX_ENTRIES: usize = 10_000;
/// Bytes of kept answers at most.
pub const MAX_BYTES: usize = 64 * 1024 * 1024;

/// A completed answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Bytes,
}

#[derive(Debug)]
enum Entry {
    InFlight {
        fingerprint: u64,
    },
    Done {
        fingerprint: u64,
        answer: Kept,
        at: Instant,
    },
}

/// What a request with a key finds.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup {
    /// New: it is now in flight; run the handler and [`Replays::finish`].
    Run,
    /// Already answered: this answer, without running the handler.
    Replay(Kept),
    /// Still being answered.
    InFlight,
    /// Used before for a different request.
    Mismatch,
}

type Key = (String, String);

/// See the [module](self) docs.
#[derive(Debug)]
pub struct Replays {
    ttl: Duration,
    max_entries: usize,
    max_bytes: usize,
    entries: HashMap<Key, Entry>,
    /// Keys in the order they completed, for eviction.
    order: VecDeque<Key>,
    bytes: usize,
    pub replayed: u64,
    pub evicted: u64,
}

impl Default for Replays {
    fn default() -> Self {
        Replays::new(DEFAULT_TTL, MAX_ENTRIES, MAX_BYTES)
    }
}

impl Replays {
    pub fn new(ttl: Duration, max_entries: usize, max_bytes: usize) -> Self {
        Replays {
            ttl,
            max_entries,
            max_bytes,
            entries: HashMap::new(),
            order: VecDeque::new(),
            bytes: 0,
            replayed: 0,
            evicted: 0,
        }
    }

    /// Bytes of the answers kept now (their bodies), bounded by the byte
    /// bound.
    pub fn kept_bytes(&self) -> usize {
        self.bytes
    }

    /// `caller`'s request with `key`, whose method, path and body hash to
    /// `fingerprint`, arriving at `now`.
    pub fn begin(&mut self, caller: &str, key: &str, fingerprint: u64, now: Instant) -> Lookup {
        self.expire(now);
        let id = (caller.to_owned(), key.to_owned());
        match self.entries.get(&id) {
            None => {
                self.entries.insert(id, Entry::InFlight { fingerprint });
                Lookup::Run
            }
            Some(Entry::InFlight { fingerprint: f } | Entry::Done { fingerprint: f, .. })
                if *f != fingerprint =>
            {
                Lookup::Mismatch
            }
            Some(Entry::InFlight { .. }) => Lookup::InFlight,
            Some(Entry::Done { answer, .. }) => {
                self.replayed += 1;
                Lookup::Replay(answer.clone())
            }
        }
    }

    /// The handler answered `answer` (`None`: it failed, or its answer is not
    /// kept, such as a stream or a 5xx): kept for replays, or forgotten so a
    /// retry runs it again.
    pub fn finish(&mut self, caller: &str, key: &str, answer: Option<Kept>, now: Instant) {
        let id = (caller.to_owned(), key.to_owned());
        let Some(Entry::InFlight { fingerprint }) = self.entries.remove(&id) else {
            return;
        };
        let Some(answer) = answer else {
            return;
        };
        self.bytes += answer.body.len();
        self.order.push_back(id.clone());
        self.entries.insert(
            id,
            Entry::Done {
                fingerprint,
                answer,
                at: now,
            },
        );
        while self.order.len() > self.max_entries || self.bytes > self.max_bytes {
            if !self.evict_oldest() {
                break;
            }
            self.evicted += 1;
        }
    }

    /// Answers kept now.
    pub fn kept(&self) -> usize {
        self.order.len()
    }

    fn evict_oldest(&mut self) -> bool {
        let Some(id) = self.order.pop_front() else {
            return false;
        };
        if let Some(Entry::Done { answer, .. }) = self.entries.remove(&id) {
            self.bytes = self.bytes.saturating_sub(answer.body.len());
        }
        true
    }

    fn expire(&mut self, now: Instant) {
        while let Some(id) = self.order.front() {
            let expired = matches!(
                self.entries.get(id),
                Some(Entry::Done { at, .. }) if now.saturating_duration_since(*at) >= self.ttl
            );
            if !expired {
                break;
            }
            self.evict_oldest();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(body: &str) -> Kept {
        Kept {
            status: 200,
            content_type: Some("application/json".into()),
            body: Bytes::from(body.to_owned()),
        }
    }

    #[test]
    fn a_key_runs_once_then_replays_and_a_different_request_is_refused() {
        let mut replays = Replays::default();
        let now = Instant::now();
        assert_eq!(replays.begin("client/a", "k1", 7, now), Lookup::Run);
        assert_eq!(replays.begin("client/a", "k1", 7, now), Lookup::InFlight);
        replays.finish("client/a", "k1", Some(answer("{}")), now);
        assert_eq!(
            replays.begin("client/a", "k1", 7, now),
            Lookup::Replay(answer("{}"))
        );
        assert_eq!(replays.begin("client/a", "k1", 8, now), Lookup::Mismatch);
        // Keys are the caller's own.
        assert_eq!(replays.begin("client/b", "k1", 7, now), Lookup::Run);
        assert_eq!(replays.replayed, 1);
    }

    #[test]
    fn a_failed_answer_is_forgotten_so_a_retry_runs_again() {
        let mut replays = Replays::default();
        let now = Instant::now();
        assert_eq!(replays.begin("c", "k", 1, now), Lookup::Run);
        replays.finish("c", "k", None, now);
        assert_eq!(replays.begin("c", "k", 1, now), Lookup::Run);
    }

    #[test]
    fn answers_expire_and_the_oldest_go_first_past_the_bounds() {
        let mut replays = Replays::new(Duration::from_secs(60), 2, 10);
        let now = Instant::now();
        for key in ["a", "b", "c"] {
            replays.begin("c", key, 1, now);
            replays.finish("c", key, Some(answer("xx")), now);
        }
        assert_eq!((replays.kept(), replays.evicted), (2, 1));
        assert_eq!(
            replays.begin("c", "a", 1, now),
            Lookup::Run,
            "evicted: runs again"
        );
        // Bytes: one answer of 9 bytes pushes the others out.
        replays.finish("c", "a", Some(answer("123456789")), now);
        assert!(replays.kept() <= 2 && replays.bytes <= 10);
        let later = now + Duration::from_secs(61);
        assert_eq!(replays.begin("c", "a", 1, later), Lookup::Run, "expired");
    }
}
