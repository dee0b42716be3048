//! How a setting's text becomes a value: the parsers handed to
//! [`Layers::value`](super::Layers::value), one per kind of value.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// Parses `500ms`, `2s`, `2m`, `1h 30m`, or a plain number of seconds (`120`, `0.5`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let value = match text.parse::<f64>() {
        Ok(seconds) => Duration::try_from_secs_f64(seconds)
            .map_err(|_| format!("{text:?} is not a non-negative number of seconds"))?,
        Err(_) => humantime::parse_duration(text)
            .map_err(|e| format!("{text:?} is not a duration like 500ms, 2s, 2m or 120 ({e})"))?,
    };
    // Timers add settings to the clock: bounded, the sum cannot overflow.
    if value > MAX_SETTING_DURATION {
        return Err(format!(
            "{text:?} is longer than {} days, the longest duration a setting takes",
            MAX_SETTING_DURATION.as_secs() / 86_400
        ));
    }
    Ok(value)
}

/// The longest duration any setting takes: ten years.
pub const MAX_SETTING_DURATION: Duration = Duration::from_secs(10 * 365 * 86_400);

/// A duration where zero would spin a timer or make every worker stale.
pub fn positive_duration(text: &str) -> Result<Duration, String> {
    let value = parse_duration(text)?;
    if value.is_zero() {
        return Err("must be longer than zero".into());
    }
    Ok(value)
}

/// A duration of at least `min`, naming the minimum and why when it is shorter.
pub fn duration_at_least(
    min: Duration,
    why: &'static str,
) -> impl Fn(&str) -> Result<Duration, String> {
    move |text| {
        let value = parse_duration(text)?;
        if value < min {
            return Err(format!("must be at least {min:?}: {why}"));
        }
        Ok(value)
    }
}

/// A share: a number above 0 and at most 1.
pub fn share(text: &str) -> Result<f64, String> {
    let value: f64 = number(text)?;
    if !(value > 0.0 && value <= 1.0) {
        return Err(format!("{value} is not a share above 0 and at most 1"));
    }
    Ok(value)
}

/// A number, such as a port or a thread count.
pub fn number<T: FromStr>(text: &str) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    text.trim().parse::<T>().map_err(|e| e.to_string())
}

/// A count of at least 1, such as a buffer size.
pub fn at_least_one(text: &str) -> Result<usize, String> {
    match number::<usize>(text)? {
        0 => Err("must be at least 1".into()),
        value => Ok(value),
    }
}

/// Text without surrounding whitespace.
pub fn text(text: &str) -> Result<String, String> {
    Ok(text.trim().to_owned())
}

/// A path, as written.
pub fn path(text: &str) -> Result<PathBuf, String> {
    Ok(PathBuf::from(text))
}

/// Text where empty means unset.
pub fn optional_text(text: &str) -> Result<Option<String>, String> {
    let text = text.trim();
    Ok((!text.is_empty()).then(|| text.to_owned()))
}

/// A URL where empty means unset; a trailing `/` is dropped.
pub fn optional_url(text: &str) -> Result<Option<String>, String> {
    Ok(optional_text(text)?.map(|url| url.trim_end_matches('/').to_owned()))
}
