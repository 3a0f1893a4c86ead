//! JSON lines, one object per event, written by hand: the strings need the lossless
//! surrogate escapes of `bytes.rs`, and this is the hot path of `trace --format json`.

use std::io::{self, Write};

use super::Sink;
use crate::{
    bytes::json_str,
    event::{Detail, Event, Id, Peer},
    timefmt::rfc3339,
};

pub(crate) struct JsonSink<W: Write> {
    out: W,
    buf: Vec<u8>,
}

impl<W: Write> JsonSink<W> {
    pub(crate) fn new(out: W) -> Self {
        Self { out, buf: Vec::with_capacity(4096) }
    }
}

fn id(buf: &mut Vec<u8>, v: Id) {
    match v {
        Id::Set(n) => num(buf, n),
        Id::Unset => buf.extend_from_slice(b"\"unset\""),
        Id::Unknown => buf.extend_from_slice(b"null"),
    }
}

/// A number or a bool, written straight into the buffer: integers by `itoa` (fmt's
/// machinery per number was a visible share of this hot path under perf).
trait Scalar {
    fn put(self, buf: &mut Vec<u8>);
}

macro_rules! ints {
    ($($t:ty),*) => {$(
        impl Scalar for $t {
            fn put(self, buf: &mut Vec<u8>) {
                buf.extend_from_slice(itoa::Buffer::new().format(self).as_bytes());
            }
        }
    )*};
}
ints!(u8, u16, u32, u64, usize, i32, i64);

impl Scalar for bool {
    fn put(self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(if self { b"true" } else { b"false" });
    }
}

fn num(buf: &mut Vec<u8>, v: impl Scalar) {
    v.put(buf);
}

macro_rules! field {
    ($buf:expr, $name:literal, $v:expr) => {{
        $buf.extend_from_slice(concat!(",\"", $name, "\":").as_bytes());
        num($buf, $v);
    }};
}

/// Serialises one event (no trailing newline).
pub(crate) fn render(buf: &mut Vec<u8>, ev: &Event) {
    buf.extend_from_slice(b"{\"event\":\"");
    buf.extend_from_slice(ev.detail.kind().as_bytes());
    buf.extend_from_slice(b"\",\"time\":\"");
    let _ = write!(buf, "{}", rfc3339(ev.time_ns));
    buf.push(b'"');
    field!(buf, "pid", ev.pid);
    field!(buf, "tid", ev.tid);
    buf.extend_from_slice(b",\"ppid\":");
    match ev.ppid {
        Some(p) => num(buf, p),
        None => buf.extend_from_slice(b"null"),
    }
    field!(buf, "uid", ev.uid);
    field!(buf, "gid", ev.gid);
    field!(buf, "euid", ev.euid);
    field!(buf, "egid", ev.egid);
    buf.extend_from_slice(b",\"auid\":");
    id(buf, ev.auid);
    buf.extend_from_slice(b",\"ses\":");
    id(buf, ev.ses);
    buf.extend_from_slice(b",\"comm\":");
    json_str(buf, &ev.comm);
    buf.extend_from_slice(b",\"exe\":");
    match &ev.exe {
        Some(e) => json_str(buf, e),
        None => buf.extend_from_slice(b"null"),
    }
    buf.extend_from_slice(b",\"mntns\":");
    match ev.mntns {
        Some(n) => num(buf, n),
        None => buf.extend_from_slice(b"null"),
    }
    buf.extend_from_slice(b",\"chrooted\":");
    buf.extend_from_slice(match ev.chrooted {
        Some(true) => b"true".as_slice(),
        Some(false) => b"false",
        None => b"null",
    });
    buf.extend_from_slice(b",\"root\":");
    json_str(buf, &ev.root);
    field!(buf, "syscall", ev.syscall);
    field!(buf, "ret", ev.ret);
    buf.extend_from_slice(b",\"error\":");
    match ev.error() {
        Some(e) => {
            buf.push(b'"');
            buf.extend_from_slice(e.as_bytes());
            buf.push(b'"');
        }
        None if ev.ret < 0 => {
            let _ = write!(buf, "\"E{}\"", -ev.ret);
        }
        None => buf.extend_from_slice(b"null"),
    }
    match &ev.detail {
        Detail::Exec(e) => {
            buf.extend_from_slice(b",\"filename\":");
            json_str(buf, &e.filename);
            buf.extend_from_slice(b",\"cwd\":");
            json_str(buf, &e.cwd);
            buf.extend_from_slice(b",\"argv\":[");
            for (i, a) in e.argv.iter().enumerate() {
                if i > 0 {
                    buf.push(b',');
                }
                json_str(buf, a);
            }
            buf.push(b']');
            field!(buf, "argv_truncated", e.argv_truncated);
            if let Some(n) = e.argc {
                field!(buf, "argc", n);
            }
        }
        Detail::Open(o) => {
            buf.extend_from_slice(b",\"path\":");
            json_str(buf, ev.in_root(&o.host_path));
            if ev.root != b"/" {
                buf.extend_from_slice(b",\"host_path\":");
                json_str(buf, &o.host_path);
            }
            buf.extend_from_slice(b",\"name\":");
            json_str(buf, &o.name);
            field!(buf, "flags", o.flags);
            let _ = write!(buf, ",\"flags_names\":\"{}\"", crate::openflags::Names(o.flags));
            field!(buf, "mode", o.mode);
            if o.base_unknown {
                buf.extend_from_slice(b",\"base_unknown\":true");
            }
        }
        Detail::Listen(l) => {
            field!(buf, "fd", l.fd);
            let _ = write!(buf, ",\"address\":\"{}\",\"port\":{}", l.local.ip(), l.local.port());
        }
        Detail::Dns(d) => {
            field!(buf, "fd", d.fd);
            field!(buf, "sent", d.sent);
            field!(buf, "len", d.data.len());
            field!(buf, "data_truncated", d.truncated);
        }
        Detail::ConnectOutcome(o) => {
            if let Peer::Inet { address, port } = &o.peer {
                let _ = write!(buf, ",\"family\":\"{}\",\"address\":\"{address}\",\"port\":{port}", o.peer.family());
            }
            field!(buf, "established", o.established);
        }
        Detail::Exit(x) => {
            if let Some(st) = x.status() {
                field!(buf, "status", st);
            }
            if let Some(sig) = x.signal() {
                field!(buf, "signal", sig);
            }
        }
        Detail::Log(l) => {
            buf.extend_from_slice(if l.via_syslog {
                b",\"via\":\"syslog\"".as_slice()
            } else {
                b",\"via\":\"stderr\""
            });
            buf.extend_from_slice(b",\"data\":");
            json_str(buf, &l.data);
            field!(buf, "data_truncated", l.truncated);
        }
        Detail::Connect(c) => {
            buf.extend_from_slice(b",\"family\":\"");
            buf.extend_from_slice(c.peer.family().as_bytes());
            buf.push(b'"');
            field!(buf, "fd", c.fd);
            match &c.peer {
                Peer::Inet { address, port } => {
                    let _ = write!(buf, ",\"address\":\"{address}\",\"port\":{port}");
                }
                Peer::Unix { path } => {
                    buf.extend_from_slice(b",\"path\":");
                    json_str(buf, path);
                }
            }
        }
        Detail::Syscall(c) => {
            let arch = if ev.compat { tracer_rules::Arch::B32 } else { tracer_rules::Arch::B64 };
            buf.extend_from_slice(b",\"name\":");
            match tracer_rules::syscalls::name(arch, ev.syscall) {
                Some(n) => json_str(buf, n.as_bytes()),
                None => buf.extend_from_slice(b"null"),
            }
            buf.extend_from_slice(if ev.compat { b",\"arch\":\"b32\"".as_slice() } else { b",\"arch\":\"b64\"" });
            if let Some(a) = ev.args {
                let _ = write!(buf, ",\"args\":[{},{},{},{}]", a[0], a[1], a[2], a[3]);
            }
            buf.extend_from_slice(b",\"paths\":[");
            for (i, n) in c.names.iter().enumerate() {
                if i > 0 {
                    buf.push(b',');
                }
                json_str(buf, ev.in_root(&n.host_path));
            }
            buf.push(b']');
            if let Some(cwd) = &c.cwd {
                buf.extend_from_slice(b",\"cwd\":");
                json_str(buf, cwd);
            }
        }
    }
    match ev.keys.as_slice() {
        [] => {}
        [k] => {
            buf.extend_from_slice(b",\"key\":");
            json_str(buf, k.as_bytes());
        }
        keys => {
            buf.extend_from_slice(b",\"key\":[");
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    buf.push(b',');
                }
                json_str(buf, k.as_bytes());
            }
            buf.push(b']');
        }
    }
    buf.push(b'}');
}

impl<W: Write> Sink for JsonSink<W> {
    fn event(&mut self, ev: &Event) -> io::Result<()> {
        self.buf.clear();
        render(&mut self.buf, ev);
        self.buf.push(b'\n');
        self.out.write_all(&self.buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
