//! Event times as RFC 3339 UTC, on jiff (the daemon's local-time log stamps use jiff too).

use std::{cell::RefCell, fmt};

use jiff::Timestamp;

/// "2026-11-24T13:22:29.123456789Z" for nanoseconds since the epoch.
pub(crate) fn rfc3339(ns: u64) -> Rfc3339 {
    Rfc3339(ns)
}

pub(crate) struct Rfc3339(u64);

thread_local! {
    /// The last second formatted: events come in bursts within one second, and jiff's
    /// strftime per event was a visible share of `trace --format json` under perf.
    static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

impl fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (secs, mut nanos) = (self.0 / 1_000_000_000, self.0 % 1_000_000_000);
        SECOND.with(|c| {
            let mut c = c.borrow_mut();
            if c.0 != secs {
                // Every u64 of nanoseconds (up to year 2554) is in jiff's range.
                let t = Timestamp::from_second(secs as i64).unwrap_or(Timestamp::MAX);
                *c = (secs, t.strftime("%Y-%m-%dT%H:%M:%S").to_string());
            }
            f.write_str(&c.1)
        })?;
        let mut digits = *b".000000000Z";
        for d in digits[1..10].iter_mut().rev() {
            *d = b'0' + (nanos % 10) as u8;
            nanos /= 10;
        }
        // ASCII digits only.
        f.write_str(std::str::from_utf8(&digits).unwrap_or_default())
    }
}

/// Inverse of `rfc3339` for reading recorded events back: UTC (`Z`) only, as written.
pub(crate) fn parse_rfc3339(s: &str) -> Option<u64> {
    if !s.ends_with('Z') {
        return None;
    }
    u64::try_from(s.parse::<Timestamp>().ok()?.as_nanosecond()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(rfc3339(0).to_string(), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(rfc3339(1_795_958_549_123_456_789).to_string(), "2026-11-29T13:22:29.123456789Z");
        assert_eq!(rfc3339(951_782_400_000_000_000).to_string(), "2000-02-29T00:00:00.000000000Z");
        assert_eq!(rfc3339(u64::MAX).to_string(), "2554-07-21T23:34:33.709551615Z");
        for ns in [0, 1_795_958_549_123_456_789, 951_782_400_000_000_001] {
            assert_eq!(parse_rfc3339(&rfc3339(ns).to_string()), Some(ns));
        }
        assert_eq!(parse_rfc3339("2026-11-24T13:22:29Z"), Some(1_795_958_549_000_000_000 - 5 * 86400 * 1_000_000_000));
        assert_eq!(parse_rfc3339("garbage"), None);
        assert_eq!(parse_rfc3339("1969-12-31T23:59:59Z"), None, "before the epoch");
        assert_eq!(parse_rfc3339("2026-11-24T13:22:29+01:00"), None, "UTC only");
    }
}
