//! `report --input sqlite:PATH|postgresql://...`: the database groups the events
//! (tracer-store's `query`), this turns each group into the report's entries, so the
//! report is the one the same events give from a JSON file.

use std::collections::BTreeMap;

use tracer_store::query::{Entry, Filter, Group};

use super::{Reports, Tally};
use crate::{
    bytes::JsonBytes,
    event::{AUID_UNSET, Id, Peer},
};

/// The store's text back to kernel bytes: `\xHH` (HH ≥ 80: bytes that are not UTF-8; 00:
/// NUL, which PostgreSQL text cannot hold, as in an abstract unix socket's name), the only
/// bytes the store escapes, become the byte again.
pub(crate) fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && b.get(i + 1) == Some(&b'x')
            && let Some(v) =
                s.get(i + 2..i + 4).and_then(|h| u8::from_str_radix(h, 16).ok()).filter(|&v| v >= 0x80 || v == 0)
        {
            out.push(v);
            i += 4;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

fn id(auid: Option<i64>) -> Id {
    match auid.and_then(|a| u32::try_from(a).ok()) {
        None => Id::Unknown,
        Some(AUID_UNSET) => Id::Unset,
        Some(n) => Id::Set(n),
    }
}

/// The groups as reports: one for the whole store (key None), or one per host.
pub(crate) fn reports(
    groups: Vec<Group>,
    only: Option<Id>,
    by_host: bool,
) -> Result<BTreeMap<Option<String>, Reports>, String> {
    let mut out: BTreeMap<Option<String>, Reports> = BTreeMap::new();
    if !by_host {
        out.insert(None, Reports::new(only, false));
    }
    for g in groups {
        let key = by_host.then(|| g.hostname.clone());
        let r = out.entry(key).or_insert_with(|| Reports::new(only, false));
        let auid = id(g.auid);
        if !r.wanted(auid) {
            continue;
        }
        let t = Tally { count: u64::try_from(g.count).unwrap_or(0), failed: u64::try_from(g.failed).unwrap_or(0) };
        let u = r.user(auid);
        match g.entry {
            Entry::Exec { argv, filename, root } => {
                let argv: Vec<JsonBytes> =
                    serde_json::from_str(&argv).map_err(|e| format!("bad argv {argv:?}: {e}"))?;
                let argv: Vec<Vec<u8>> = argv.into_iter().map(|a| a.0).collect();
                let key = if argv.is_empty() { vec![unescape(&filename)] } else { argv };
                add(u.commands.entry(key).or_default(), t);
                if root != "/" {
                    add(u.roots.entry(unescape(&root)).or_default(), t);
                }
            }
            Entry::Open { path } => add(u.files.entry(unescape(&path)).or_default(), t),
            Entry::Connect { family, address, port, path } => {
                let peer = match (family.as_str(), address, port, path) {
                    ("unix", _, _, Some(p)) => Peer::Unix { path: unescape(&p) },
                    (_, Some(a), Some(p), _) => Peer::Inet {
                        address: a.parse().map_err(|_| format!("bad address {a:?}"))?,
                        port: u16::try_from(p).map_err(|_| format!("bad port {p}"))?,
                    },
                    (f, ..) => return Err(format!("connect row of family {f:?} without its peer")),
                };
                add(u.connections.entry(peer).or_default(), t);
            }
        }
    }
    Ok(out)
}

fn add(t: &mut Tally, n: Tally) {
    t.count += n.count;
    t.failed += n.failed;
}

/// `--since`/`--until`: RFC 3339 (`2026-11-27T10:00:00Z`) or a UTC date (`2026-11-27`).
pub(crate) fn parse_time(s: &str) -> Result<i64, String> {
    let ts = s
        .parse::<jiff::Timestamp>()
        .or_else(|_| {
            s.parse::<jiff::civil::Date>().and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC).map(|z| z.timestamp()))
        })
        .map_err(|_| format!("'{s}' is not a time (2026-11-27T10:00:00Z or 2026-11-27)"))?;
    i64::try_from(ts.as_nanosecond()).map_err(|_| format!("'{s}' is out of range"))
}

/// The filter of a store report.
pub(crate) fn filter(
    host: Option<String>,
    since: Option<i64>,
    until: Option<i64>,
    auid: Option<u32>,
    uid: Option<u32>,
    comm: Vec<String>,
) -> Filter {
    Filter { host, since_ns: since, until_ns: until, auid: auid.map(i64::from), uid: uid.map(i64::from), comm }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescapes_only_what_the_store_escaped() {
        assert_eq!(unescape("/tmp/\\xff\\x41"), b"/tmp/\xff\\x41");
        assert_eq!(unescape("caf\u{e9}\\x"), "caf\u{e9}\\x".as_bytes());
        // An abstract socket's name, as the sink stored it, comes back whole.
        let name = b"\0abs\0\0\xff";
        assert_eq!(unescape(&crate::sink::store::text(name)), name);
        assert_eq!(unescape("\\x01"), b"\\x01", "a byte the store never escapes stays text");
    }

    #[test]
    fn times() {
        assert_eq!(parse_time("1970-01-02"), Ok(86_400_000_000_000));
        assert_eq!(parse_time("1970-01-01T00:00:01Z"), Ok(1_000_000_000));
        assert!(parse_time("yesterday").is_err());
    }
}
