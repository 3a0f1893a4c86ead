//! Where events go: one module per output format.

pub(crate) mod audit;
pub(crate) mod json;
// Database targets (sqlite:, postgresql://): the tracer-store crate's engine.
pub(crate) mod store;
// syslog://, syslog+udp://, syslog+tcp:// (RFC 5424).
pub(crate) mod syslog;
pub(crate) mod text;

use std::io::{self, Write};

use crate::event::Event;

pub(crate) trait Sink {
    fn event(&mut self, ev: &Event) -> io::Result<()>;
    fn flush(&mut self) -> io::Result<()>;
}

/// stdout, or FILE created (truncated) up front so a bad path fails before tracing starts.
pub(crate) fn open_output(path: Option<&std::path::Path>) -> io::Result<Box<dyn Write + Send>> {
    Ok(match path {
        Some(p) => Box::new(io::BufWriter::with_capacity(1 << 16, std::fs::File::create(p)?)),
        None => Box::new(io::BufWriter::with_capacity(1 << 16, io::stdout())),
    })
}
