//! Durations as fail2ban writes them: `600`, `10m`, `1h30m`, `1d 2h`, `0.5h`, `-1`.
//!
//! Units follow fail2ban's `MyTime.str2seconds`: s/ss/sec/second(s), m/mm/min/minute(s),
//! h/hh/hour(s), d/dd/da/day(s), w/ww/wee/week(s), mo/mon/month(s) (a quarter of 3×365+366
//! days / 12 = 30.4375 days), y/yy/yea/year(s) (365.25 days). A bare number is seconds; parts
//! are summed.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {input:?}: {reason}")]
pub struct DurationError {
    pub input: String,
    pub reason: String,
}

const DAY: f64 = 86400.0;
/// fail2ban's year: (365 * 3 + 366) / 4 days.
const YEAR: f64 = 365.25 * DAY;

/// Parses a duration into whole seconds (may be negative: `-1` means "forever" for bantime).
pub fn parse_secs(input: &str) -> Result<i64, DurationError> {
    let err = |reason: &str| DurationError { input: input.to_string(), reason: reason.to_string() };
    let s = input.trim();
    if s.is_empty() {
        return Err(err("empty"));
    }
    let b = s.as_bytes();
    let mut i = 0;
    let mut total = 0f64;
    let mut parts = 0;
    while i < b.len() {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i == b.len() {
            break;
        }
        let start = i;
        if b[i] == b'-' || b[i] == b'+' {
            i += 1;
        }
        let digits = i;
        while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
            i += 1;
        }
        if i == digits {
            return Err(err("expected a number"));
        }
        let num: f64 = s[start..i].parse().map_err(|_| err("bad number"))?;
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let ustart = i;
        while i < b.len() && b[i].is_ascii_alphabetic() {
            i += 1;
        }
        let unit = s[ustart..i].to_ascii_lowercase();
        let mult = match unit.as_str() {
            "" | "s" | "ss" | "sec" | "secs" | "second" | "seconds" => 1.0,
            "m" | "mm" | "mi" | "min" | "mins" | "minute" | "minutes" => 60.0,
            "h" | "hh" | "hour" | "hours" => 3600.0,
            "d" | "dd" | "da" | "day" | "days" => DAY,
            "w" | "ww" | "wee" | "week" | "weeks" => 7.0 * DAY,
            "mo" | "mon" | "month" | "months" => YEAR / 12.0,
            "y" | "yy" | "yea" | "year" | "years" => YEAR,
            _ => return Err(err(&format!("unknown unit {unit:?}"))),
        };
        total += num * mult;
        parts += 1;
    }
    if parts == 0 || !total.is_finite() || total.abs() > 1e15 {
        return Err(err("out of range"));
    }
    Ok(total.round() as i64)
}

/// Renders seconds like Python's `timedelta` does in fail2ban's logs (`1:00:00`, `2 days, 0:00:00`).
pub struct Hms(pub i64);

impl fmt::Display for Hms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 < 0 {
            return f.write_str("permanent");
        }
        let days = self.0 / 86400;
        let rest = self.0 % 86400;
        if days > 0 {
            write!(f, "{days} day{}, ", if days == 1 { "" } else { "s" })?;
        }
        write!(f, "{}:{:02}:{:02}", rest / 3600, rest % 3600 / 60, rest % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail2ban_forms() {
        assert_eq!(parse_secs("600").unwrap(), 600);
        assert_eq!(parse_secs("10m").unwrap(), 600);
        assert_eq!(parse_secs("1h").unwrap(), 3600);
        assert_eq!(parse_secs("1d").unwrap(), 86400);
        assert_eq!(parse_secs("1w").unwrap(), 604800);
        assert_eq!(parse_secs("1h30m").unwrap(), 5400);
        assert_eq!(parse_secs("1d 2h").unwrap(), 93600);
        assert_eq!(parse_secs("0.5h").unwrap(), 1800);
        assert_eq!(parse_secs("2 minutes").unwrap(), 120);
        // fail2ban: a month is 30.4375 days, a year 365.25 days.
        assert_eq!(parse_secs("1mo").unwrap(), 2_629_800);
        assert_eq!(parse_secs("2 months").unwrap(), 5_259_600);
        assert_eq!(parse_secs("1mon").unwrap(), 2_629_800);
        assert_eq!(parse_secs("1y").unwrap(), 31_557_600);
        assert_eq!(parse_secs("10y").unwrap(), 315_576_000);
        assert_eq!(parse_secs("1yea").unwrap(), 31_557_600);
        assert_eq!(parse_secs("3da").unwrap(), 3 * 86400);
        assert_eq!(parse_secs("2wee").unwrap(), 14 * 86400);
        assert_eq!(parse_secs("5mm").unwrap(), 300);
        assert_eq!(parse_secs("-1").unwrap(), -1);
        assert_eq!(parse_secs(" 3600 ").unwrap(), 3600);
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["", "10x", "five", "1h x", "m", "--1", "1.2.3"] {
            assert!(parse_secs(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn renders_like_timedelta() {
        assert_eq!(Hms(3600).to_string(), "1:00:00");
        assert_eq!(Hms(90061).to_string(), "1 day, 1:01:01");
        assert_eq!(Hms(-1).to_string(), "permanent");
    }
}
