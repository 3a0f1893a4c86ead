//! `tracer trace`: stream events as text, JSON lines or audit.log records.

use std::{ffi::OsString, path::PathBuf};

use clap::{Args, ValueEnum};
use tracer_common::config::{ENABLE_CONNECT, ENABLE_EXEC, ENABLE_OPEN, WANT_CWD};

use super::Filters;
use crate::{
    sink,
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
    /// Write events to FILE instead of stdout.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
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
    if args.key.is_some() && args.format != TraceFormat::Audit {
        return Err(crate::error::UsageError("--key only applies to --format audit".into()).into());
    }
    super::check_command(&args.command)?;
    args.filters.check()?;
    if let Some(cmd) = args.command.first() {
        stream::resolve_command(cmd)?;
    }
    let command = (!args.command.is_empty()).then_some(args.command);
    let mut opts = args.filters.options(ENABLE_EXEC | ENABLE_OPEN | ENABLE_CONNECT, command.is_some());
    if args.format == TraceFormat::Audit {
        // audit writes a CWD record with every path: have the kernel send the cwd.
        opts.enabled |= WANT_CWD;
    }
    let mut loaded = crate::error::load_or_usage_error(&opts)?;
    // Opened last: bad arguments, a missing command or an unusable machine leave FILE as it was.
    let name = args.output.as_ref().map_or_else(|| "stdout".to_string(), |p| p.display().to_string());
    let out = sink::open_output(args.output.as_deref())
        .map_err(|e| crate::error::UsageError(format!("cannot write {name}: {e}")))?;
    let mut sink = sink::make(args.format, out, args.key.clone());
    let sink_ref = std::cell::RefCell::new(&mut sink);
    let mut outcome = stream::run(
        &mut loaded,
        RunOptions { command, duration: args.duration, resolve_exe: true },
        |ev| sink_ref.borrow_mut().event(&ev),
        || sink_ref.borrow_mut().flush(),
    )
    .await?;
    if outcome.write_error.is_none() {
        outcome.write_error = sink.flush().err();
    }
    stream::report_totals(&outcome);
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
