//! When a failing provider is taken out of a choice and for how long: the
//! controller's router and a local-mode client eject by the same rule, as
//! Envoy's outlier detection does.

use std::time::Duration;

/// Failures reported in a row that eject a provider.
pub const EJECT_AFTER_FAILURES: u16 = 3;
/// The first ejection's length; each further one doubles it.
pub const FIRST_EJECTION: Duration = Duration::from_secs(5);
/// The longest ejection.
pub const MAX_EJECTION: Duration = Duration::from_secs(300);

/// The length of an ejection after `ejections` earlier ones without a
/// success between.
pub fn ejection_length(ejections: u16) -> Duration {
    FIRST_EJECTION
        .saturating_mul(1u32 << ejections.min(16))
        .min(MAX_EJECTION)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ejections_double_up_to_the_longest() {
        assert_eq!(ejection_length(0), FIRST_EJECTION);
        assert_eq!(ejection_length(1), FIRST_EJECTION * 2);
        assert_eq!(ejection_length(40), MAX_EJECTION);
    }
}
