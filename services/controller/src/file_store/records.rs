//! The store's append-only log: one [`Record`] per registry change, framed
//! as `length (u32 LE) | CRC-32 of the body (u32 LE) | body (JSON)`.
//!
//! [`scan`] reads a log back and tells a crash from damage: a last record
//! cut short, or whose checksum fails with nothing after it, is a write the
//! crash interrupted ([`Tail::Torn`]: drop it, keep the rest); a record that
//! fails its checksum with more records after it is damage
//! ([`Tail::Corrupt`]: refuse to start on it).

use crank_proto::wire::ReplicatedWorker;
use serde::{Deserialize, Serialize};

/// Bytes of a record's frame before its body.
pub const HEADER: usize = 8;
/// The longest body a record may have: far past any registration (64 KiB
/// bodies at most reach the controller), short of an absurd allocation.
pub const MAX_BODY: usize = 16 * 1024 * 1024;

/// One change of the registry, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Record {
    /// The worker's record as it now stands (registered, stale, healthy…).
    Put { worker: Box<ReplicatedWorker> },
    /// The worker is gone (deregistered, evicted).
    Delete { worker_id: String },
}

impl Record {
    pub fn worker_id(&self) -> &str {
        match self {
            Record::Put { worker } => &worker.worker_id,
            Record::Delete { worker_id } => worker_id,
        }
    }
}

/// `record`, framed.
pub fn encode(record: &Record, out: &mut Vec<u8>) {
    // A derived Serialize of strings, numbers and maps cannot fail.
    let body = serde_json::to_vec(record).unwrap_or_default();
    let length = u32::try_from(body.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&length.to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    out.extend_from_slice(&body);
}

/// How a scanned log ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tail {
    /// Every byte belongs to a whole, valid record.
    Clean,
    /// The last record starting at `offset` was cut short or half-written.
    Torn { offset: u64 },
    /// The record at `offset` is damaged and more data follows it.
    Corrupt { offset: u64, problem: String },
}

/// What a log holds: its valid records in order, where they end, and how
/// the rest looks.
#[derive(Debug)]
pub struct Scan {
    pub records: Vec<Record>,
    /// Bytes of whole, valid records from the start.
    pub valid_len: u64,
    pub tail: Tail,
}

/// Reads `bytes` as a log.
pub fn scan(bytes: &[u8]) -> Scan {
    let mut records = Vec::new();
    let mut at = 0usize;
    let done = |records, at: usize, tail| Scan {
        records,
        valid_len: at as u64,
        tail,
    };
    while at < bytes.len() {
        let offset = at as u64;
        let Some(header) = bytes.get(at..at + HEADER) else {
            return done(records, at, Tail::Torn { offset });
        };
        let (length, crc) = header.split_at(4);
        let length = u32::from_le_bytes(length.try_into().unwrap_or([0; 4])) as usize;
        let crc = u32::from_le_bytes(crc.try_into().unwrap_or([0; 4]));
        let end = at + HEADER + length;
        let is_last = end >= bytes.len();
        if length > MAX_BODY {
            return done(
                records,
                at,
                damaged(offset, is_last, "an impossible length"),
            );
        }
        let Some(body) = bytes.get(at + HEADER..end) else {
            return done(records, at, Tail::Torn { offset });
        };
        if crc32fast::hash(body) != crc {
            return done(
                records,
                at,
                damaged(offset, is_last, "a checksum that does not match"),
            );
        }
        match serde_json::from_slice::<Record>(body) {
            Ok(record) => records.push(record),
            Err(e) => {
                let problem = format!("a body that is not a record ({e})");
                return done(records, at, damaged(offset, is_last, &problem));
            }
        }
        at = end;
    }
    done(records, at, Tail::Clean)
}

/// A bad record: torn if nothing follows it, corrupt if something does.
fn damaged(offset: u64, is_last: bool, problem: &str) -> Tail {
    if is_last {
        Tail::Torn { offset }
    } else {
        Tail::Corrupt {
            offset,
            problem: problem.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crank_proto::wire::{Capability, WorkerStatus};

    fn put(id: &str) -> Record {
        Record::Put {
            worker: Box::new(ReplicatedWorker {
                worker_id: id.into(),
                worker_url: format!("https://{id}.local:8500"),
                capabilities: vec![Capability::new("invoke", "hello.greet", "1.0.0")],
                instance: None,
                registered_by: "worker/x".into(),
                registered_at: chrono::DateTime::from_timestamp_millis(1_780_000_000_123).unwrap(),
                owner: "local".into(),
                status: WorkerStatus::Healthy,
            }),
        }
    }

    fn log(records: &[Record]) -> Vec<u8> {
        let mut out = Vec::new();
        for record in records {
            encode(record, &mut out);
        }
        out
    }

    #[test]
    fn records_read_back_in_order() {
        let records = [
            put("w1"),
            put("w2"),
            Record::Delete {
                worker_id: "w1".into(),
            },
        ];
        let scan = scan(&log(&records));
        assert_eq!(scan.records, records);
        assert_eq!(scan.tail, Tail::Clean);
    }

    #[test]
    fn a_log_cut_at_any_byte_of_its_last_record_keeps_the_others() {
        let whole = log(&[put("w1"), put("w2"), put("w3")]);
        let last = log(&[put("w1"), put("w2")]).len();
        for cut in last..whole.len() {
            let scan = scan(&whole[..cut]);
            assert_eq!(scan.records.len(), 2, "cut at {cut}");
            assert_eq!(scan.valid_len, last as u64, "cut at {cut}");
            let expected = if cut == last {
                Tail::Clean
            } else {
                Tail::Torn {
                    offset: last as u64,
                }
            };
            assert_eq!(scan.tail, expected, "cut at {cut}");
        }
    }

    #[test]
    fn a_flipped_byte_is_torn_at_the_end_and_corrupt_before_it() {
        let whole = log(&[put("w1"), put("w2"), put("w3")]);
        let second = log(&[put("w1")]).len();
        let third = log(&[put("w1"), put("w2")]).len();
        let mut damaged = whole.clone();
        damaged[second + HEADER + 3] ^= 0xff;
        let scan_middle = scan(&damaged);
        assert_eq!(scan_middle.records.len(), 1);
        assert!(matches!(
            scan_middle.tail,
            Tail::Corrupt { offset, .. } if offset == second as u64
        ));
        let mut damaged = whole;
        damaged[third + HEADER + 3] ^= 0xff;
        let scan_last = scan(&damaged);
        assert_eq!(scan_last.records.len(), 2);
        assert_eq!(
            scan_last.tail,
            Tail::Torn {
                offset: third as u64
            }
        );
    }
}
