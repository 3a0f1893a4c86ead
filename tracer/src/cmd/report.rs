//! `tracer report`: auditloginfo's per-login-UID report, from live tracing (until
//! `--duration` or SIGINT/SIGTERM), from a command's tree (`-- CMD`, its exit status passed
//! through), or from a file written by `tracer trace --format json` (`--input`).
//!
//! Live, every system call is counted in the kernel (SYSCOUNT, per auid and number): no
//! event per call crosses to user space. A recorded file has no such counts, nor a
//! lost-event count; the report says "not recorded" instead of printing wrong numbers.

use std::{collections::HashMap, ffi::OsString, io::Write as _, path::PathBuf};

use clap::Args;
use tracer_common::{
    config::{AGGREGATE, ENABLE_CONNECT, ENABLE_EXEC, ENABLE_OPEN, ENABLE_RULES, ENABLE_SYSCOUNT, LEAN_RECORDS},
    syscount::SYSCOUNT_COMPAT,
};

use super::{Filters, trace::Format};
use crate::{
    event::Id,
    report::{Reports, input::InputFilters},
    sink,
    stream::{self, RunOptions},
};

#[derive(Args, Debug)]
#[command(after_help = AFTER_HELP)]
pub(crate) struct ReportArgs {
    #[command(flatten)]
    pub filters: Filters,
    /// text: auditloginfo's layout; json: one object (with --auid) or an array of them.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Report on FILEs written by `tracer trace --format json|audit` or `tracer daemon`, instead
    /// of tracing (they hold no syscall counts: that section says so). Repeatable; a rotated set
    /// (LOG.2 LOG.1 LOG, in any order or as LOG*) is read oldest first. Or one database:
    /// sqlite:PATH or postgresql://USER@HOST[:PORT]/DB (the database computes the report).
    #[arg(long, num_args = 1.., conflicts_with_all = ["duration", "command"])]
    pub input: Vec<PathBuf>,
    /// Stop after this long (e.g. 30s, 5m) instead of at SIGINT/SIGTERM.
    #[arg(long, value_parser = super::parse_duration)]
    pub duration: Option<std::time::Duration>,
    /// With --input DATABASE: only events of this host (hostname or machine-id).
    #[arg(long, requires = "input")]
    pub host: Option<String>,
    /// With --input DATABASE: only events at or after this time (RFC 3339, or a UTC date).
    #[arg(long, requires = "input", value_parser = crate::report::store::parse_time)]
    pub since: Option<i64>,
    /// With --input DATABASE: only events before this time.
    #[arg(long, requires = "input", value_parser = crate::report::store::parse_time)]
    pub until: Option<i64>,
    /// With --input DATABASE: one report per host.
    #[arg(long, requires = "input")]
    pub by_host: bool,
    /// Write the report to FILE instead of stdout.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// auditctl rule FILE or directory (repeatable), as `trace --rules`: the report covers only
    /// the events the rules select; "System calls made" counts the selected calls.
    #[arg(long, value_name = "PATH", conflicts_with = "input")]
    pub rules: Vec<PathBuf>,
    /// With --rules: only the events of the rules with this key.
    #[arg(long, value_name = "KEY", requires = "rules")]
    pub key: Option<String>,
    /// Run CMD, report on its process tree when it ends, and exit with its status.
    #[arg(last = true)]
    pub command: Vec<OsString>,
}

const AFTER_HELP: &str = "\
One report per login UID seen (one only with --auid), in AUID order: system calls made \
(counted in the kernel, x86_64 names), commands executed (argv), files opened (open, \
openat, openat2, creat; absolute host paths), connections made; failures per entry; \
the number of lost events last. Entries are sorted by count, highest first.

With --input FILE (from `tracer trace --format json`) the report is the one a live run \
gives for the same events, except that such a file holds neither syscall counts nor a \
lost-event count: both say \"not recorded\" (JSON: null) instead of wrong numbers.

With -- CMD the command shares stdout with the report: use --output to keep them apart.";

pub(crate) async fn run(args: ReportArgs) -> anyhow::Result<i32> {
    super::check_command(&args.command)?;
    args.filters.check()?;
    if !matches!(super::store::target(args.output.as_deref()), Ok(None)) {
        let msg = "report --output takes a file: store events with `tracer trace --output sqlite:|postgresql://`";
        return Err(crate::error::UsageError(msg.into()).into());
    }
    // Opened first so a bad path fails before tracing starts.
    let mut out = sink::open_output(args.output.as_deref()).map_err(|e| {
        crate::error::UsageError(format!("cannot write {}: {e}", args.output.as_ref().unwrap().display()))
    })?;
    let only = args.filters.auid.map(|a| Id::from_raw(a, true));
    // One --input naming a database: the database computes the report.
    let database = match args.input.as_slice() {
        [one] => super::store::target(Some(one))?,
        _ => None,
    };
    if let Some(t) = database {
        let doc = super::store::report(t, &args, only)?;
        out.write_all(&doc)?;
        out.flush()?;
        return Ok(0);
    }
    if args.host.is_some() || args.since.is_some() || args.until.is_some() || args.by_host {
        let msg = "--host, --since, --until and --by-host need --input sqlite:PATH or postgresql://...";
        return Err(crate::error::UsageError(msg.into()).into());
    }
    let rules = crate::rules::compile(&args.rules)?;
    let (reports, code) = if let Some(rules) = rules {
        with_rules(args.filters, args.duration, args.command, only, rules, args.key).await?
    } else if args.input.is_empty() {
        live(args.filters, args.duration, args.command, only).await?
    } else {
        (from_files(&args.input, &args.filters, only)?, 0)
    };
    let doc = match args.format {
        Format::Text => crate::report::text::render(&reports).into_bytes(),
        Format::Json => crate::report::json::render(&reports),
    };
    out.write_all(&doc)?;
    out.flush()?;
    Ok(code)
}

/// A rotated set in time order: `LOG.N` … `LOG.1` before `LOG`; other files keep their order
/// among themselves (sorted by name).
fn in_time_order(paths: &[PathBuf]) -> Vec<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let key = |p: &PathBuf| {
        let b = p.as_os_str().as_bytes();
        let (base, n) = match b.iter().rposition(|&c| c == b'.') {
            Some(i) if i + 1 < b.len() && b[i + 1..].iter().all(u8::is_ascii_digit) => {
                let n: u64 = std::str::from_utf8(&b[i + 1..]).ok().and_then(|s| s.parse().ok()).unwrap_or(u64::MAX);
                (&b[..i], n)
            }
            _ => (b, 0),
        };
        // Higher numbers are older; the live file (0) is newest.
        (base.to_vec(), std::cmp::Reverse(n))
    };
    let mut v = paths.to_vec();
    v.sort_by_key(key);
    v
}

fn from_files(paths: &[PathBuf], f: &Filters, only: Option<Id>) -> anyhow::Result<Reports> {
    let mut reports = Reports::new(only, false);
    let mut filters = InputFilters {
        uid: f.uid,
        pids: f.pid.iter().copied().collect(),
        comms: f.comm.iter().map(|c| c.as_bytes().to_vec()).collect(),
    };
    let mut unknown = 0;
    for path in in_time_order(paths) {
        // Bad input is the user's: exit 2, and no partial report.
        let stats = crate::report::recorded::read_file(&path, &mut filters, &mut reports)
            .map_err(|e| crate::error::UsageError(e.to_string()))?;
        unknown += stats.unknown_kinds;
    }
    if unknown > 0 {
        eprintln!("tracer: warning: {unknown} events of kinds the report does not cover were skipped");
    }
    Ok(reports)
}

async fn live(
    filters: Filters,
    duration: Option<std::time::Duration>,
    command: Vec<OsString>,
    only: Option<Id>,
) -> anyhow::Result<(Reports, i32)> {
    let command = (!command.is_empty()).then_some(command);
    // Lean records: a report needs no ppid, creds, mount namespace or exe. Aggregated: the
    // kernel sends each entry once and counts its repeats.
    let opts = filters.options(
        ENABLE_EXEC | ENABLE_OPEN | ENABLE_CONNECT | ENABLE_SYSCOUNT | LEAN_RECORDS | AGGREGATE,
        command.is_some(),
    );
    let mut loaded = crate::error::load_or_usage_error(&opts)?;
    let mut reports = Reports::new(only, true);
    // The first event of each entry the kernel counts: its repeats are added at the end.
    let mut firsts = HashMap::new();
    // Aggregated as events arrive: the event list is never kept.
    let outcome = stream::run(
        &mut loaded,
        RunOptions { command, duration, resolve_exe: false, group: false },
        |ev| {
            reports.add_event(&ev);
            if let Some(key) = ev.agg {
                firsts.entry(key).or_insert(ev);
            }
            Ok(())
        },
        || Ok(()),
    )
    .await?;
    // Every record is in (the stream drained the ring): now the kernel's counts are final.
    let mut unattributed = 0;
    for (key, n) in loaded.agg_counts()? {
        match firsts.get(&key) {
            Some(ev) => reports.add_event_n(ev, n.saturating_sub(1)),
            // Its first record was lost (ring full): the counts are lost with it, and said so.
            None => unattributed += n,
        }
    }
    reports.add_syscounts(&loaded.syscounts()?);
    let st = outcome.stats;
    // Everything the report misses: ring full, undecodable records, and the repeats of
    // entries whose first record was lost.
    reports.lost = Some(outcome.counts.lost + outcome.counts.undecodable + unattributed);
    if st.syscount_full > 0 {
        eprintln!("tracer: warning: {} system calls not counted (the kernel's count table is full)", st.syscount_full);
    }
    if st.agg_full > 0 {
        eprintln!("tracer: note: {} events sent one by one (the kernel's entry table is full)", st.agg_full);
    }
    stream::report_totals(&outcome);
    Ok((reports, outcome.exit_code.unwrap_or(0)))
}

/// `--rules`: the events the rules select (`--key`: of the rules with that key), each
/// counted in its section and its call in "System calls made" (the kernel counts nothing:
/// the rules already chose the calls).
async fn with_rules(
    filters: Filters,
    duration: Option<std::time::Duration>,
    command: Vec<OsString>,
    only: Option<Id>,
    rules: std::sync::Arc<tracer_rules::Compiled>,
    key: Option<String>,
) -> anyhow::Result<(Reports, i32)> {
    let command = (!command.is_empty()).then_some(command);
    let mut opts = filters.options(ENABLE_RULES, command.is_some());
    opts.rules = Some(rules);
    let mut loaded = crate::error::load_or_usage_error(&opts)?;
    let mut reports = Reports::new(only, true);
    let mut calls: HashMap<(u32, u32), u64> = HashMap::new();
    let outcome = stream::run(
        &mut loaded,
        RunOptions { command, duration, resolve_exe: false, group: false },
        |ev| {
            if key.as_ref().is_some_and(|k| !ev.keys.contains(k)) {
                return Ok(());
            }
            reports.add_event(&ev);
            let nr = if ev.compat { ev.syscall | SYSCOUNT_COMPAT } else { ev.syscall };
            *calls.entry((ev.auid.raw(), nr)).or_default() += 1;
            Ok(())
        },
        || Ok(()),
    )
    .await?;
    reports.add_syscounts(&calls);
    reports.lost = Some(outcome.counts.lost + outcome.counts.undecodable);
    stream::report_totals(&outcome);
    Ok((reports, outcome.exit_code.unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotated_sets_are_read_oldest_first() {
        let p = |v: &[&str]| v.iter().map(PathBuf::from).collect::<Vec<_>>();
        let given = p(&["/l/t.log", "/l/t.log.1", "/l/t.log.10", "/l/t.log.2", "/a/x.json"]);
        assert_eq!(in_time_order(&given), p(&["/a/x.json", "/l/t.log.10", "/l/t.log.2", "/l/t.log.1", "/l/t.log"]));
    }
}
