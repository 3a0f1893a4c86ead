//! `tracer trace`: stream events as text, JSON lines or audit.log records.

use std::{ffi::OsString, path::PathBuf};

use clap::{Args, ValueEnum};
use tracer_common::config::{ENABLE_CONNECT, ENABLE_EXEC, ENABLE_OPEN, WANT_CWD};

use super::Filters;
use crate::{
    sink::{self, Sink, audit::AuditSink, json::JsonSink, text::TextSink},
    stream::{self, RunOptions},
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    Text,
    Json,
}

/// `trace --format`: `Format` (which `report` shares) plus audit.log records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum TraceFormat {
    Text,
    Json,
    /// Raw audit.log records, for ausearch/aureport -if FILE.
    Audit,
}

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
    /// Run CMD and trace only its process tree; exit with its status.
    #[arg(last = true)]
    pub command: Vec<OsString>,
}

pub(crate) async fn run(args: TraceArgs) -> anyhow::Result<i32> {
    let target = super::store::target(args.output.as_deref())?;
    if args.key.is_some() && args.format != TraceFormat::Audit && target.is_none() {
        return Err(crate::error::UsageError("--key only applies to --format audit".into()).into());
    }
    let mut store = match target {
        Some(t) => Some(super::store::open(t, &args.store, args.key.clone())?),
        None => None,
    };
    let syslog = match args.output.as_deref().and_then(|p| p.to_str()).and_then(sink::syslog::parse) {
        Some(t) => {
            let t = t.map_err(crate::error::UsageError)?;
            Some(sink::syslog::SyslogSink::open(&t).map_err(|e| {
                crate::error::UsageError(format!("cannot send to {}: {e}", args.output.as_ref().unwrap().display()))
            })?)
        }
        None => None,
    };
    let mut sink: Box<dyn Sink> = match (&mut store, syslog, args.format) {
        (Some(s), _, _) => Box::new(s),
        (None, Some(s), _) => Box::new(s),
        (None, None, f) => {
            let out = sink::open_output(args.output.as_deref()).map_err(|e| {
                crate::error::UsageError(format!("cannot write {}: {e}", args.output.as_ref().unwrap().display()))
            })?;
            match f {
                TraceFormat::Text => Box::new(TextSink::new(out)),
                TraceFormat::Json => Box::new(JsonSink::new(out)),
                TraceFormat::Audit => Box::new(AuditSink::new(out, args.key.clone())),
            }
        }
    };
    let command = (!args.command.is_empty()).then_some(args.command);
    let mut opts = args.filters.options(ENABLE_EXEC | ENABLE_OPEN | ENABLE_CONNECT, command.is_some());
    if args.format == TraceFormat::Audit {
        // audit writes a CWD record with every path: have the kernel send the cwd.
        opts.enabled |= WANT_CWD;
    }
    let mut loaded = crate::error::load_or_usage_error(&opts)?;
    let sink_ref = std::cell::RefCell::new(&mut sink);
    let outcome = stream::run(
        &mut loaded,
        RunOptions { command, duration: args.duration, resolve_exe: true },
        |ev| sink_ref.borrow_mut().event(&ev),
        || sink_ref.borrow_mut().flush(),
    )
    .await?;
    sink.flush()?;
    drop(sink);
    stream::report_totals(&outcome);
    if let Some(s) = &mut store {
        eprintln!("tracer: {}", s.close()?);
    }
    Ok(outcome.exit_code.unwrap_or(0))
}
