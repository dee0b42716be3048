//! RFC 3339 UTC timestamps with milliseconds (`2026-11-27T10:32:41.123Z`), the
//! format of every time crank writes. They are for people; liveness is never
//! judged by comparing them.
//!
//! Readers are lenient: the original controller writes Python's
//! `datetime.isoformat()` of a naive UTC time, `2026-12-03T10:00:49.755937`,
//! with no zone. A time without a zone is read as UTC.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serializer};

pub fn serialize<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&at.to_rfc3339_opts(SecondsFormat::Millis, true))
}

pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<DateTime<Utc>, D::Error> {
    let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
    parse(&text).map_err(serde::de::Error::custom)
}

/// An RFC 3339 time, or one without a zone (read as UTC), with `T` or a space
/// between date and time.
pub fn parse(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(naive) = chrono::NaiveDateTime::parse_from_str(text, format) {
            return Ok(naive.and_utc());
        }
    }
    Err(format!(
        "{text:?} is not a time like 2026-12-03T10:00:49.755Z (or without a zone, read as UTC)"
    ))
}

/// The same for an optional time, absent when `None`.
pub mod optional {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(
        at: &Option<DateTime<Utc>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match at {
            Some(at) => super::serialize(at, serializer),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<DateTime<Utc>>, D::Error> {
        #[derive(Deserialize)]
        struct At(#[serde(with = "super")] DateTime<Utc>);
        Ok(Option::<At>::deserialize(deserializer)?.map(|At(at)| at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_with_or_without_a_zone_are_read_as_utc() {
        let original = parse("2026-12-03T10:00:49.755937").unwrap();
        assert_eq!(original, parse("2026-12-03T10:00:49.755937Z").unwrap());
        assert_eq!(original, parse("2026-12-03T11:00:49.755937+01:00").unwrap());
        assert_eq!(original, parse("2026-12-03 10:00:49.755937").unwrap());
        assert!(parse("yesterday").is_err());
    }
}
