//! `--output sqlite:PATH` / `postgresql://...`: events as rows of the `tracer-store` schema.
//! The engine (schema, batching, spool) is tracer-store's; this only maps an `Event` to a
//! `Row` with the JSON format's field values.

use std::io;

use tracer_store::{
    Row,
    writer::{Summary, Writer},
};

use super::Sink;
use crate::{
    bytes::json_str,
    event::{Detail, Event, Id, Peer},
};

pub(crate) struct StoreSink {
    writer: Option<Writer>,
}

impl StoreSink {
    pub(crate) fn new(writer: Writer) -> Self {
        // The run's loop sees SIGINT/SIGTERM only between events: a sink waiting on a full
        // spool (--spool-full block) is released here, its rest spooled over the limit.
        let closing = writer.closing();
        for sig in [libc::SIGINT, libc::SIGTERM] {
            let closing = closing.clone();
            // SAFETY: the action only stores to an atomic, which is async-signal-safe; the
            // registry chains it with tokio's handler for the same signal.
            let r = unsafe {
                signal_hook_registry::register(sig, move || closing.store(true, std::sync::atomic::Ordering::Relaxed))
            };
            if let Err(e) = r {
                eprintln!("tracer: warning: cannot watch signal {sig}: {e}");
            }
        }
        Self { writer: Some(writer) }
    }

    /// The live counts, for the daemon's status.
    pub(crate) fn stats(&self) -> Option<std::sync::Arc<tracer_store::writer::Stats>> {
        self.writer.as_ref().map(Writer::stats)
    }

    /// Stores what is left and says what happened (the closing line's store part).
    pub(crate) fn close(&mut self) -> Result<Summary, tracer_store::Error> {
        match self.writer.take() {
            Some(w) => w.close(),
            None => Ok(Summary::default()),
        }
    }
}

/// `trace` holds the sink by reference so it can close it after the loop.
impl Sink for &mut StoreSink {
    fn event(&mut self, ev: &Event) -> io::Result<()> {
        (**self).event(ev)
    }

    fn flush(&mut self) -> io::Result<()> {
        (**self).flush()
    }
}

fn io_err(e: tracer_store::Error) -> io::Error {
    io::Error::other(e.to_string())
}

impl Sink for StoreSink {
    fn event(&mut self, ev: &Event) -> io::Result<()> {
        match &mut self.writer {
            Some(w) => w.push(row(ev)).map_err(io_err),
            None => Ok(()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.writer {
            Some(w) => w.flush().map_err(io_err),
            None => Ok(()),
        }
    }
}

/// Kernel bytes as text: valid UTF-8 as is, any other byte as `\xHH`, and NUL as `\x00`
/// (PostgreSQL's text cannot hold it: one such byte, say in a log line someone wrote, would
/// make its whole batch fail at every retry; both databases hold the same text).
pub(crate) fn text(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) if !b.contains(&0) => s.to_owned(),
        _ => {
            let mut s = String::with_capacity(b.len() + 8);
            for chunk in b.utf8_chunks() {
                for part in chunk.valid().split_inclusive('\0') {
                    match part.strip_suffix('\0') {
                        Some(p) => {
                            s.push_str(p);
                            s.push_str("\\x00");
                        }
                        None => s.push_str(part),
                    }
                }
                for byte in chunk.invalid() {
                    s.push_str(&format!("\\x{byte:02x}"));
                }
            }
            s
        }
    }
}

fn id(v: Id) -> Option<i64> {
    match v {
        Id::Set(n) => Some(i64::from(n)),
        Id::Unset => Some(i64::from(u32::MAX)),
        Id::Unknown => None,
    }
}

/// One event as a row (host, sequence and key are the writer's).
pub(crate) fn row(ev: &Event) -> Row {
    let error = match ev.error() {
        Some(e) => Some(e.to_owned()),
        None if ev.ret < 0 => Some(format!("E{}", -ev.ret)),
        None => None,
    };
    let mut r = Row {
        event: ev.detail.kind().to_owned(),
        time_ns: i64::try_from(ev.time_ns).unwrap_or(i64::MAX),
        pid: i64::from(ev.pid),
        tid: i64::from(ev.tid),
        ppid: ev.ppid.map(i64::from),
        uid: i64::from(ev.uid),
        gid: i64::from(ev.gid),
        euid: i64::from(ev.euid),
        egid: i64::from(ev.egid),
        auid: id(ev.auid),
        ses: id(ev.ses),
        comm: text(&ev.comm),
        exe: ev.exe.as_deref().map(text),
        mntns: ev.mntns.map(i64::from),
        chrooted: ev.chrooted,
        root: text(&ev.root),
        syscall: i64::from(ev.syscall),
        ret: ev.ret,
        error,
        ..Row::default()
    };
    match &ev.detail {
        Detail::Exec(e) => {
            r.filename = Some(text(&e.filename));
            r.cwd = Some(text(&e.cwd));
            // A JSON array in the JSON format's lossless encoding.
            let mut a = b"[".to_vec();
            for (i, arg) in e.argv.iter().enumerate() {
                if i > 0 {
                    a.push(b',');
                }
                json_str(&mut a, arg);
            }
            a.push(b']');
            r.argv = Some(String::from_utf8(a).expect("json_str writes UTF-8"));
            r.argv_truncated = Some(e.argv_truncated);
            r.argc = e.argc.map(i64::from);
        }
        Detail::Open(o) => {
            r.path = Some(text(ev.in_root(&o.host_path)));
            if ev.root != b"/" {
                r.host_path = Some(text(&o.host_path));
            }
            r.name = Some(text(&o.name));
            r.flags = Some(i64::from(o.flags));
            r.flags_names = Some(crate::openflags::Names(o.flags).to_string());
            r.mode = Some(i64::from(o.mode));
            r.base_unknown = Some(o.base_unknown);
        }
        // Only `tracer ci` asks for process ends; the schema has no column for them.
        Detail::Exit(_) | Detail::ConnectOutcome(_) | Detail::Dns(_) | Detail::Listen(_) => {}
        Detail::Log(l) => {
            r.via = Some(if l.via_syslog { "syslog" } else { "stderr" }.to_owned());
            r.data = Some(text(&l.data));
            r.data_truncated = Some(l.truncated);
        }
        Detail::Connect(c) => {
            r.family = Some(c.peer.family().to_owned());
            r.fd = Some(i64::from(c.fd));
            match &c.peer {
                Peer::Inet { address, port } => {
                    r.address = Some(address.to_string());
                    r.port = Some(i64::from(*port));
                }
                Peer::Unix { path } => r.path = Some(text(path)),
            }
        }
        // The schema has one path column: the call's first name.
        Detail::Syscall(c) => r.path = c.names.first().map(|n| text(ev.in_root(&n.host_path))),
    }
    r
}

#[cfg(test)]
mod tests {
    use super::text;

    #[test]
    fn bytes_that_are_not_utf8_are_escaped() {
        assert_eq!(text(b"/tmp/caf\xc3\xa9"), "/tmp/café");
        assert_eq!(text(b"/tmp/\xff\x01x"), "/tmp/\\xff\u{1}x");
        assert_eq!(text(b"a\0b\0"), "a\\x00b\\x00");
        assert_eq!(text(b"\xff\0"), "\\xff\\x00");
    }
}
