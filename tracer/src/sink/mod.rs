//! Where events go: one module per output format, and the one place that picks the format
//! and opens the destination (`trace --output`, the daemon's log; other targets plug in here).

pub(crate) mod audit;
pub(crate) mod json;
// Database targets (sqlite:, postgresql://): the tracer-store crate's engine.
pub(crate) mod store;
// syslog://, syslog+udp://, syslog+tcp:// (RFC 5424).
pub(crate) mod syslog;
pub(crate) mod text;

use std::{
    io::{self, Write},
    os::unix::fs::OpenOptionsExt,
    path::Path,
};

use crate::event::Event;

pub(crate) trait Sink {
    fn event(&mut self, ev: &Event) -> io::Result<()>;
    fn flush(&mut self) -> io::Result<()>;
}

/// How events are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    Text,
    Json,
    /// Raw audit.log records, for ausearch/aureport -if FILE.
    Audit,
}

/// The sink for `format` writing into `out` (`key`: audit's key="NAME").
pub(crate) fn make(format: Format, out: Box<dyn Write + Send>, key: Option<String>) -> Box<dyn Sink> {
    match format {
        Format::Text => Box::new(text::TextSink::new(out)),
        Format::Json => Box::new(json::JsonSink::new(out)),
        Format::Audit => Box::new(audit::AuditSink::new(out, key)),
    }
}

/// FILE opened for appending (a restart or a copytruncate rotation never loses or pads what
/// is there; created 0600: events name other users' files and commands).
pub(crate) fn append(path: &Path, mode: u32) -> io::Result<std::fs::File> {
    std::fs::OpenOptions::new().append(true).create(true).mode(mode).open(path)
}

/// stdout, or FILE opened for appending.
pub(crate) fn open_output(path: Option<&Path>) -> io::Result<Box<dyn Write + Send>> {
    Ok(match path {
        Some(p) => Box::new(io::BufWriter::with_capacity(1 << 16, append(p, 0o600)?)),
        None => Box::new(io::BufWriter::with_capacity(1 << 16, io::stdout())),
    })
}
