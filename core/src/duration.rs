//! Human durations as written in manifests: `47d`, `1y`, `24h`, `1h30m`, `90s`.
//!
//! A year is 365 days and a day 24 hours: certificate lifetimes are counted in seconds,
//! never in calendar months.

use std::fmt;
use std::time::Duration;

const UNITS: [(char, u64); 6] =
    [('y', 365 * 86_400), ('w', 7 * 86_400), ('d', 86_400), ('h', 3_600), ('m', 60), ('s', 1)];

/// Parses a duration such as `47d`, `1y`, `1h30m` or `90s`.
pub fn parse_duration(input: &str) -> Result<Duration, String> {
    let s = input.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    let mut seen_unit = false;
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let Some(&(_, secs)) = UNITS.iter().find(|(u, _)| *u == c) else {
            return Err(format!("`{input}`: unknown unit `{c}` (use y, w, d, h, m or s)"));
        };
        if digits.is_empty() {
            return Err(format!("`{input}`: unit `{c}` without a number"));
        }
        let n: u64 = digits.parse().map_err(|_| format!("`{input}`: number too large"))?;
        total = n
            .checked_mul(secs)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("`{input}`: duration too large"))?;
        digits.clear();
        seen_unit = true;
    }
    if !digits.is_empty() || !seen_unit {
        return Err(format!("`{input}`: a number needs a unit (e.g. 47d, 24h, 90s)"));
    }
    Ok(Duration::from_secs(total))
}

/// Formats a duration in the largest whole units, e.g. `47d`, `1y`, `1h30m`.
pub fn format_duration(d: Duration) -> String {
    let mut secs = d.as_secs();
    if secs == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in UNITS {
        if unit == 'w' {
            continue; // weeks read worse than days in certificate lifetimes
        }
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

/// A duration that (de)serialises as the human form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HumanDuration(pub Duration);

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_duration(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_lifetimes() {
        assert_eq!(parse_duration("47d").unwrap(), Duration::from_secs(47 * 86_400));
        assert_eq!(parse_duration("1y").unwrap(), Duration::from_secs(365 * 86_400));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5_400));
        assert_eq!(parse_duration(" 90s ").unwrap(), Duration::from_secs(90));
    }

    #[test]
    fn rejects_malformed() {
        for bad in ["", "47", "d", "1x", "-1d", "1.5d", "99999999999999999999y"] {
            assert!(parse_duration(bad).is_err(), "{bad} should not parse");
        }
    }

    #[test]
    fn formats_round_trip() {
        for s in ["47d", "1y", "1h30m", "20y", "5m", "1y1d"] {
            assert_eq!(format_duration(parse_duration(s).unwrap()), s);
        }
    }
}
