//! `tracer trace`: stream events as text, JSON lines or audit.log records.

use std::{ffi::OsString, path::PathBuf};

use clap::{Args, ValueEnum};
use tracer_common::config::{ENABLE_CONNECT, ENABLE_EXEC, ENABLE_OPEN, ENABLE_RULES, WANT_CWD};

use super::Filters;
use crate::{
    sink::{self, Sink},
    stream::{self, RunOptions},
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    Text,
    Json,
}

/// `trace --format`: `Format` (which `report` shares) plus audit.log records.
pub(crate) use crate::sink::Format as TraceFormat;

#[derive(Args, Debug)]
pub(crate) struct TraceArgs {
    #[command(flatten)]
    pub filters: Filters,
    #[arg(long, value_enum, default_value = "text")]
    pub format: TraceFormat,
    /// Write events to FILE instead of stdout, or to a database: sqlite:PATH or
    /// postgresql://USER@HOST[:PORT]/DB (rows of one schema), or syslog: syslog://[SOCKET]
    /// (default /dev/log), syslog+udp://HOST:PORT, syslog+tcp://HOST:PORT (RFC 5424; --format
    /// does not apply to these).
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub store: super::store::StoreArgs,
    /// Stop after this long (e.g. 30s, 5m) instead of at SIGINT/SIGTERM.
    #[arg(long, value_parser = super::parse_duration)]
    pub duration: Option<std::time::Duration>,
    /// With --format audit: put key="NAME" on every SYSCALL record, like auditctl -k.
    #[arg(long, value_name = "NAME", value_parser = sink::audit::parse_key)]
    pub key: Option<String>,
    /// auditctl rule FILE (or directory: its *.rules in name order, as augenrules); repeatable.
    /// Events are then exactly what the rules select, tagged with the rule's keys.
    #[arg(long, value_name = "PATH")]
    pub rules: Vec<PathBuf>,
    /// Run CMD and trace only its process tree; exit with its status.
    #[arg(last = true)]
    pub command: Vec<OsString>,
}

pub(crate) async fn run(args: TraceArgs) -> anyhow::Result<i32> {
    let target = super::store::target(args.output.as_deref())?;
    if args.key.is_some() && args.format != TraceFormat::Audit && target.is_none() {
        return Err(crate::error::UsageError("--key only applies to --format audit".into()).into());
    }
    super::check_command(&args.command)?;
    args.filters.check()?;
    if let Some(cmd) = args.command.first() {
        stream::resolve_command(cmd)?;
    }
    let name = args.output.as_ref().map_or_else(|| "stdout".to_string(), |p| p.display().to_string());
    // A database or syslog receiver is reached before anything is attached: one that cannot
    // be used is a usage error at start, never a silent drop.
    let mut store = match target {
        Some(t) => Some(super::store::open(t, &args.store, args.key.clone())?),
        None => None,
    };
    let syslog = match args.output.as_deref().and_then(|p| p.to_str()).and_then(sink::syslog::parse) {
        Some(t) => {
            let t = t.map_err(crate::error::UsageError)?;
            Some(
                sink::syslog::SyslogSink::open(&t)
                    .map_err(|e| crate::error::UsageError(format!("cannot send to {name}: {e}")))?,
            )
        }
        None => None,
    };
    // Bad rules are a usage error before anything is attached.
    let rules = crate::rules::compile(&args.rules)?;
    let command = (!args.command.is_empty()).then_some(args.command);
    let families = if rules.is_some() { ENABLE_RULES } else { ENABLE_EXEC | ENABLE_OPEN | ENABLE_CONNECT };
    let mut opts = args.filters.options(families, command.is_some());
    opts.rules = rules;
    if args.format == TraceFormat::Audit {
        // audit writes a CWD record with every path: have the kernel send the cwd.
        opts.enabled |= WANT_CWD;
    }
    let mut loaded = crate::error::load_or_usage_error(&opts)?;
    let mut sink: Box<dyn Sink> = match (&mut store, syslog) {
        (Some(s), _) => Box::new(s),
        (None, Some(s)) => Box::new(s),
        (None, None) => {
            // Opened last: bad arguments, a missing command or an unusable machine leave FILE
            // as it was.
            let out = sink::open_output(args.output.as_deref())
                .map_err(|e| crate::error::UsageError(format!("cannot write {name}: {e}")))?;
            sink::make(args.format, out, args.key.clone())
        }
    };
    let sink_ref = std::cell::RefCell::new(&mut sink);
    let mut outcome = stream::run(
        &mut loaded,
        RunOptions { command, duration: args.duration, resolve_exe: true, group: false },
        |ev| sink_ref.borrow_mut().event(&ev),
        || sink_ref.borrow_mut().flush(),
    )
    .await?;
    if outcome.write_error.is_none() {
        outcome.write_error = sink.flush().err();
    }
    drop(sink);
    stream::report_totals(&outcome);
    if let Some(s) = &mut store {
        eprintln!("tracer: {}", s.close()?);
    }
    match outcome.write_error {
        // The reader of a pipe went away (`| head`): nothing more is wanted, as with any pipe.
        Some(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(0),
        Some(e) => Err(crate::error::UsageError(format!(
            "cannot write {name}: {e}; tracing stopped{}",
            if outcome.exit_code.is_some() { " and the traced command was killed" } else { "" }
        ))
        .into()),
        None => Ok(outcome.exit_code.unwrap_or(0)),
    }
}
