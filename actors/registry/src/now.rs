//! [`Now`]: the clock as the registry reads it, once per message.

use std::time::Duration;

use actix::clock::Instant;
use chrono::{DateTime, Utc};

/// The clock, read once per message: monotonic time judges liveness, wall time
/// is for people.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    pub mono: Instant,
    pub wall: DateTime<Utc>,
}

impl Now {
    pub fn read() -> Self {
        Now {
            mono: Instant::now(),
            wall: Utc::now(),
        }
    }

    /// The wall-clock time of the monotonic instant `at`, taking this reading
    /// as the anchor between the two clocks.
    pub fn wall_of(&self, at: Instant) -> DateTime<Utc> {
        let delta = |d: Duration| chrono::Duration::from_std(d).unwrap_or(chrono::TimeDelta::MAX);
        if at >= self.mono {
            self.wall + delta(at - self.mono)
        } else {
            self.wall - delta(self.mono - at)
        }
    }
}
