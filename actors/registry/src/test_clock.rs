//! [`TestClock`]: a clock for the core's ordinary tests, which starts now and
//! moves only when told.

use std::time::Duration;

use actix::clock::Instant;
use chrono::Utc;

use super::core::Now;

pub struct TestClock {
    start: Now,
}

impl TestClock {
    pub fn new() -> Self {
        TestClock {
            start: Now {
                mono: Instant::now(),
                wall: Utc::now(),
            },
        }
    }

    /// The time `seconds` after the start, on both clocks.
    pub fn at(&self, seconds: impl Into<f64>) -> Now {
        let d = Duration::from_secs_f64(seconds.into());
        Now {
            mono: self.start.mono + d,
            wall: self.start.wall + chrono::Duration::from_std(d).unwrap(),
        }
    }
}
