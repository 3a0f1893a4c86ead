//! The database options `trace` shares with whatever else writes to a store, and the
//! opening of `--output sqlite:PATH|postgresql://...` (every failure: exit 2, at start).

use std::path::{Path, PathBuf};

use clap::Args;
use tracer_store::{
    Target,
    spool::OnFull,
    writer::{Options, Writer},
};

use crate::{error::UsageError, sink::store::StoreSink};

#[derive(Args, Clone, Debug)]
pub(crate) struct StoreArgs {
    /// PostgreSQL: keep this many days of events (day partitions are dropped); 0 keeps all.
    #[arg(long, value_name = "DAYS", default_value = "0")]
    pub retention_days: u32,
    /// PostgreSQL: where events wait while the database is down (default
    /// /var/spool/tracer/<database>).
    #[arg(long, value_name = "DIR")]
    pub spool: Option<PathBuf>,
    /// PostgreSQL: the spool's size limit in bytes (suffixes K, M, G).
    #[arg(long, value_name = "BYTES", default_value = "1G", value_parser = parse_size)]
    pub spool_size: u64,
    /// PostgreSQL: when the spool is full, `block` the tracer (the kernel ring then counts
    /// its losses) or `drop-oldest` (counted in the closing line).
    #[arg(long, value_name = "ACTION", default_value = "block")]
    pub spool_full: OnFull,
}

fn parse_size(s: &str) -> Result<u64, String> {
    let (num, mult) = match s.as_bytes().last() {
        Some(b'K' | b'k') => (&s[..s.len() - 1], 1 << 10),
        Some(b'M' | b'm') => (&s[..s.len() - 1], 1 << 20),
        Some(b'G' | b'g') => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("'{s}' is not a size (e.g. 500M, 2G)"))
}

/// The target named by OUTPUT, if it names a database (else OUTPUT is a file). A `scheme:`
/// prefix that names no target (`sqlite3:x.db`, `postgresq://...`) is a usage error, never
/// a file of that name: a misspelled URL must not silently become a local file.
pub(crate) fn target(output: Option<&Path>) -> anyhow::Result<Option<Target>> {
    let Some(s) = output.and_then(Path::to_str) else { return Ok(None) };
    match Target::parse(s) {
        None => {
            if let Some(scheme) = unknown_scheme(s) {
                return Err(UsageError(format!(
                    "{}: unknown scheme '{scheme}:': the targets are sqlite:PATH, postgresql://USER@HOST[:PORT]/DB, \
                     syslog://, syslog+tcp://HOST:PORT, syslog+udp://HOST:PORT (a file whose name has a colon: ./NAME)",
                    tracer_store::pg::redact(s)
                ))
                .into());
            }
            Ok(None)
        }
        Some(t) => Ok(Some(t.map_err(|e| UsageError(e.to_string()))?)),
    }
}

/// The `scheme` of `scheme:rest` when it is none of the targets': letters first, then
/// letters, digits, `+`, `.`, `-`, before the first colon (a path with a `/` before its
/// first colon is a path).
fn unknown_scheme(s: &str) -> Option<&str> {
    let (scheme, _) = s.split_once(':')?;
    let ok = scheme.len() >= 2
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c));
    let known = ["sqlite", "postgresql", "postgres", "syslog", "syslog+tcp", "syslog+udp"];
    (ok && !known.contains(&scheme)).then_some(scheme)
}

/// Where spools live unless told otherwise (one directory per database under it).
pub(crate) const SPOOL_ROOT: &str = "/var/spool/tracer";

/// Opens the store: schema migrated, sequence known, spool picked up.
pub(crate) fn open(target: Target, args: &StoreArgs, key: Option<String>) -> anyhow::Result<StoreSink> {
    let spool_dir = args.spool.clone().unwrap_or_else(|| Path::new(SPOOL_ROOT).join(spool_name(&target)));
    start(Options {
        target,
        retention_days: args.retention_days,
        spool_dir,
        spool_bytes: args.spool_size,
        on_full: args.spool_full,
        key,
    })
}

/// Starts the writer; a database that cannot be used is a usage error (exit 2).
pub(crate) fn start(opts: Options) -> anyhow::Result<StoreSink> {
    let w = Writer::start(opts).map_err(|e| UsageError(format!("cannot use the database: {e}")))?;
    Ok(StoreSink::new(w))
}

/// The database as messages and status name it: its URL without the password.
pub(crate) fn display(t: &Target) -> String {
    match t {
        Target::Postgres(u) => tracer_store::pg::redact(u),
        Target::Sqlite(p) => format!("sqlite:{}", p.display()),
    }
}

/// One spool per database (its URL without the password, hashed: FNV-1a).
pub(crate) fn spool_name(t: &Target) -> String {
    let name = match t {
        Target::Postgres(u) => tracer_store::pg::redact(u),
        Target::Sqlite(p) => p.display().to_string(),
    };
    let h = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    format!("{h:016x}")
}

/// `report --input DATABASE`: the report computed by the database, rendered as the others.
pub(crate) fn report(
    t: Target,
    args: &super::report::ReportArgs,
    only: Option<crate::event::Id>,
) -> anyhow::Result<Vec<u8>> {
    use super::trace::Format;
    use crate::report::{json, store, text};
    if !args.filters.pid.is_empty() {
        return Err(UsageError("--pid does not apply to --input DATABASE (stores keep no process tree)".into()).into());
    }
    let f = &args.filters;
    let filter = store::filter(args.host.clone(), args.since, args.until, f.auid, f.uid, f.comm.clone());
    // The PostgreSQL client runs its own runtime: not on this (async) thread.
    let groups = std::thread::scope(|s| s.spawn(|| tracer_store::query::groups(&t, &filter)).join())
        .map_err(|_| anyhow::anyhow!("the database query panicked"))?
        .map_err(|e| UsageError(format!("cannot use the database: {e}")))?;
    let reports =
        store::reports(groups, only, args.by_host).map_err(|e| UsageError(format!("in the database: {e}")))?;
    let mut doc = Vec::new();
    if args.format == Format::Json && args.by_host {
        doc.push(b'{');
    }
    for (i, (host, r)) in reports.iter().enumerate() {
        match (args.format, host) {
            (Format::Text, Some(h)) => {
                doc.extend_from_slice(format!("{}Host: {h}\n\n", if i > 0 { "\n" } else { "" }).as_bytes());
                doc.extend_from_slice(text::render(r).as_bytes());
            }
            (Format::Text, None) => doc.extend_from_slice(text::render(r).as_bytes()),
            (Format::Json, Some(h)) => {
                if i > 0 {
                    doc.push(b',');
                }
                doc.extend_from_slice(&serde_json::to_vec(h)?);
                doc.push(b':');
                doc.extend_from_slice(json::render(r).trim_ascii_end());
            }
            (Format::Json, None) => doc.extend_from_slice(&json::render(r)),
        }
    }
    if args.format == Format::Json && args.by_host {
        doc.extend_from_slice(b"}\n");
    }
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::unknown_scheme;

    #[test]
    fn misspelled_schemes_are_not_file_names() {
        for bad in ["sqlite3:x.db", "postgresq://u@h/db", "mysql://u@h/db", "pgsql:db", "syslog+tls://h:1"] {
            assert!(unknown_scheme(bad).is_some(), "{bad}");
        }
        for file in ["events.json", "/var/log/a:b.json", "./sqlite3:x.db", "dir/x:y", "c:", "syslog://", "sqlite:x"] {
            assert!(unknown_scheme(file).is_none(), "{file}");
        }
    }
}
