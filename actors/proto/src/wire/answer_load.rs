//! The `crank-load` response header: a worker's load as it stood when it
//! answered a call, sent with every answer of a worker-library capability
//! (as ORCA's per-response load reports are), and passed back by the client
//! library in its `POST /report` ([`ReportRequest::load`](super::ReportRequest::load)).
//!
//! Syntax: `in_flight=<count>; capacity=<count>; service_ms=<milliseconds>`,
//! for example `crank-load: in_flight=3; capacity=8; service_ms=12.40`:
//!
//! - `in_flight`: calls of the capability in flight besides this answer;
//! - `capacity`: how many it serves at once (its `max_concurrency`);
//! - `service_ms`: a moving average of its service time.
//!
//! Fields are separated by `;`, optional white space around them; fields of
//! other names are ignored, so the header can grow.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The header's name.
pub const CRANK_LOAD_HEADER: &str = "crank-load";

/// The fields of a `crank-load` header, as sent (unchecked: see
/// [`ObservedLoad`](crate::domain::load::ObservedLoad)).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AnswerLoad {
    pub in_flight: u32,
    pub capacity: u32,
    pub service_ms: f64,
}

impl fmt::Display for AnswerLoad {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "in_flight={}; capacity={}; service_ms={:.2}",
            self.in_flight, self.capacity, self.service_ms
        )
    }
}

impl AnswerLoad {
    /// The header's value read, or `None` when a field is missing or is not
    /// a number.
    pub fn parse_header(value: &str) -> Option<Self> {
        let (mut in_flight, mut capacity, mut service_ms) = (None, None, None);
        for field in value.split(';') {
            let Some((name, number)) = field.split_once('=') else {
                continue;
            };
            let number = number.trim();
            match name.trim() {
                "in_flight" => in_flight = number.parse().ok(),
                "capacity" => capacity = number.parse().ok(),
                "service_ms" => service_ms = number.parse().ok(),
                _ => {}
            }
        }
        Some(AnswerLoad {
            in_flight: in_flight?,
            capacity: capacity?,
            service_ms: service_ms?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_reads_back_what_it_writes() {
        let load = AnswerLoad {
            in_flight: 3,
            capacity: 8,
            service_ms: 12.4,
        };
        assert_eq!(
            load.to_string(),
            "in_flight=3; capacity=8; service_ms=12.40"
        );
        assert_eq!(AnswerLoad::parse_header(&load.to_string()), Some(load));
    }

    #[test]
    fn unknown_fields_are_ignored_and_a_missing_or_bad_one_is_no_load() {
        assert!(AnswerLoad::parse_header(" capacity=8 ;x=1; in_flight=0;service_ms=1").is_some());
        assert_eq!(AnswerLoad::parse_header("in_flight=1; capacity=8"), None);
        assert_eq!(
            AnswerLoad::parse_header("in_flight=-1; capacity=8; service_ms=1"),
            None
        );
    }
}
