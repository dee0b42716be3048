//! [`RateLimits`]: token buckets per caller identity, one set for each of
//! `/route`, `/register` and `/report`, checked before a request reaches the
//! registry. A caller past its rate is answered `429 rate_limit_exceeded`
//! with `Retry-After`, so one identity cannot fill the registry's mailbox
//! and raise every other caller's latency.
//!
//! The buckets are [`governor`]'s (GCRA: a token bucket without a timer).
//! The controller's rates (`--route-rate` …) apply to every identity, each
//! its own bucket; a policy file's `[[limit]]` entries override them for the
//! identities they name.

use std::num::NonZeroU32;
use std::time::Duration;

use crank_net::identity::PeerIdentity;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::policy::IdentityPattern;

/// The endpoints with rates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    Route,
    Register,
    Report,
}

impl Endpoint {
    pub const ALL: [Endpoint; 3] = [Endpoint::Route, Endpoint::Register, Endpoint::Report];

    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::Route => "/route",
            Endpoint::Register => "/register",
            Endpoint::Report => "/report",
        }
    }
}

/// `N/s` or `N/m`: requests a second or a minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: NonZeroU32,
    pub per: Duration,
}

impl Rate {
    pub fn parse(text: &str) -> Result<Rate, String> {
        let wrong = || format!("{text:?} is not a rate such as 100/s or 30/m");
        let (count, unit) = text.trim().split_once('/').ok_or_else(wrong)?;
        let count: u32 = count.trim().parse().map_err(|_| wrong())?;
        let count = NonZeroU32::new(count).ok_or_else(|| {
            format!("{text:?}: a rate of 0 refuses everything; leave it unset for no limit")
        })?;
        let per = match unit.trim() {
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            _ => return Err(wrong()),
        };
        Ok(Rate { count, per })
    }

    /// The quota: `count` per `per`, bursting up to `burst` (at least 1;
    /// `None`: `count`).
    fn quota(self, burst: Option<NonZeroU32>) -> Quota {
        let base = if self.per == Duration::from_secs(60) {
            Quota::per_minute(self.count)
        } else {
            Quota::per_second(self.count)
        };
        base.allow_burst(burst.unwrap_or(self.count))
    }
}

/// A rate for each endpoint, or none (no limit).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EndpointRates {
    pub route: Option<Rate>,
    pub register: Option<Rate>,
    pub report: Option<Rate>,
}

impl EndpointRates {
    fn of(&self, endpoint: Endpoint) -> Option<Rate> {
        match endpoint {
            Endpoint::Route => self.route,
            Endpoint::Register => self.register,
            Endpoint::Report => self.report,
        }
    }
}

/// One set of keyed buckets: per endpoint with a rate.
struct Buckets {
    limiters: [Option<DefaultKeyedRateLimiter<PeerIdentity>>; 3],
}

impl Buckets {
    fn new(rates: &EndpointRates, burst: Option<NonZeroU32>) -> Self {
        let make = |endpoint| {
            rates
                .of(endpoint)
                .map(|rate| RateLimiter::keyed(rate.quota(burst)))
        };
        Buckets {
            limiters: [
                make(Endpoint::Route),
                make(Endpoint::Register),
                make(Endpoint::Report),
            ],
        }
    }

    fn limiter(&self, endpoint: Endpoint) -> Option<&DefaultKeyedRateLimiter<PeerIdentity>> {
        let index = match endpoint {
            Endpoint::Route => 0,
            Endpoint::Register => 1,
            Endpoint::Report => 2,
        };
        self.limiters.get(index).and_then(Option::as_ref)
    }
}

/// Every identity's buckets.
pub struct RateLimits {
    default: Buckets,
    overrides: Vec<(IdentityPattern, Buckets)>,
    clock: DefaultClock,
}

impl RateLimits {
    /// `rates` for every identity, `overrides` for those they name (the
    /// first that names a caller wins), each bursting up to `burst`.
    pub fn new(
        rates: &EndpointRates,
        overrides: &[(IdentityPattern, EndpointRates)],
        burst: Option<NonZeroU32>,
    ) -> Self {
        RateLimits {
            default: Buckets::new(rates, burst),
            overrides: overrides
                .iter()
                .map(|(identity, rates)| (identity.clone(), Buckets::new(rates, burst)))
                .collect(),
            clock: DefaultClock::default(),
        }
    }

    /// Takes a token of `caller`'s bucket for `endpoint`; when there is none,
    /// how long until there is.
    pub fn check(&self, caller: &PeerIdentity, endpoint: Endpoint) -> Result<(), Duration> {
        let buckets = self
            .overrides
            .iter()
            .find(|(identity, _)| identity.matches(caller))
            .map_or(&self.default, |(_, buckets)| buckets);
        let Some(limiter) = buckets.limiter(endpoint) else {
            return Ok(());
        };
        limiter
            .check_key(caller)
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Forgets buckets that are full again (a caller idle long enough), so
    /// the memory stays with the callers of the last moments.
    pub fn forget_idle(&self) {
        let all = std::iter::once(&self.default).chain(self.overrides.iter().map(|(_, b)| b));
        for buckets in all {
            for limiter in buckets.limiters.iter().flatten() {
                limiter.retain_recent();
                limiter.shrink_to_fit();
            }
        }
    }
}

/// `Retry-After` in whole seconds: at least 1, rounded up.
pub fn retry_after_seconds(wait: Duration) -> u64 {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    seconds.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crank_net::identity::Role;

    fn rates(route: &str) -> EndpointRates {
        EndpointRates {
            route: Some(Rate::parse(route).unwrap()),
            ..EndpointRates::default()
        }
    }

    #[test]
    fn rates_read_per_second_and_per_minute_and_refuse_nonsense() {
        assert_eq!(Rate::parse("100/s").unwrap().count.get(), 100);
        assert_eq!(Rate::parse(" 30/m").unwrap().per, Duration::from_secs(60));
        for bad in ["0/s", "10", "10/h", "-1/s", "x/s"] {
            assert!(Rate::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_caller_past_its_burst_waits_and_others_do_not() {
        // One a minute: the second request within the test's lifetime is
        // refused for most of a minute, whatever the machine's speed.
        let limits = RateLimits::new(&rates("1/m"), &[], None);
        let flooder = PeerIdentity::new(Role::Client, "flood");
        let steady = PeerIdentity::new(Role::Client, "steady");
        assert_eq!(limits.check(&flooder, Endpoint::Route), Ok(()));
        let wait = limits.check(&flooder, Endpoint::Route).unwrap_err();
        assert!(wait > Duration::from_secs(50), "{wait:?}");
        assert_eq!(retry_after_seconds(wait), wait.as_secs() + 1);
        assert_eq!(limits.check(&steady, Endpoint::Route), Ok(()));
        // No rate for /report: never limited.
        for _ in 0..10 {
            assert_eq!(limits.check(&flooder, Endpoint::Report), Ok(()));
        }
    }

    #[test]
    fn an_override_names_its_callers_and_bursts_apply() {
        let batch = IdentityPattern::parse("client/batch").unwrap();
        let limits = RateLimits::new(&rates("1/m"), &[(batch, rates("3/m"))], NonZeroU32::new(2));
        let batch = PeerIdentity::new(Role::Client, "batch");
        let other = PeerIdentity::new(Role::Client, "other");
        // Burst 2 for both: the override's rate, the same burst.
        for caller in [&batch, &other] {
            assert!(limits.check(caller, Endpoint::Route).is_ok());
            assert!(limits.check(caller, Endpoint::Route).is_ok());
            assert!(limits.check(caller, Endpoint::Route).is_err());
        }
        assert_eq!(retry_after_seconds(Duration::from_millis(1)), 1);
    }
}
