//! One readable line per event; hostile bytes escaped so a name cannot forge a line.

use std::io::{self, Write};

use super::Sink;
use crate::{
    bytes::text_escape,
    event::{Detail, Event, Peer},
    timefmt::rfc3339,
};

pub(crate) struct TextSink<W: Write> {
    out: W,
    line: String,
}

impl<W: Write> TextSink<W> {
    pub(crate) fn new(out: W) -> Self {
        Self { out, line: String::with_capacity(512) }
    }
}

pub(crate) fn quoted(s: &mut String, b: &[u8]) {
    s.push('"');
    text_escape(s, b);
    s.push('"');
}

pub(crate) fn render(s: &mut String, ev: &Event) {
    use std::fmt::Write as _;
    let _ = write!(s, "{} ", rfc3339(ev.time_ns));
    let kind = ev.detail.kind();
    let ppid = ev.ppid.map_or("?".to_string(), |p| p.to_string());
    let _ = write!(s, "{kind:<7} pid={} ppid={ppid} uid={} auid={} ses={} comm=", ev.pid, ev.uid, ev.auid, ev.ses);
    quoted(s, &ev.comm);
    if ev.root != b"/" {
        s.push_str(" root=");
        quoted(s, &ev.root);
    }
    match &ev.detail {
        Detail::Exec(e) => {
            s.push_str(" filename=");
            quoted(s, &e.filename);
            s.push_str(" argv=[");
            for (i, a) in e.argv.iter().enumerate() {
                if i > 0 {
                    s.push(' ');
                }
                quoted(s, a);
            }
            s.push(']');
            if e.argv_truncated {
                s.push_str(" (argv truncated)");
            }
        }
        Detail::Open(o) => {
            s.push(' ');
            quoted(s, &o.host_path);
            let _ = write!(s, " flags={:#o}({})", o.flags, crate::openflags::Names(o.flags));
        }
        Detail::Listen(l) => {
            let _ = write!(s, " fd={} {}", l.fd, l.local);
        }
        Detail::Dns(d) => {
            let _ = write!(s, " fd={} {} {} bytes", d.fd, if d.sent { "sent" } else { "received" }, d.data.len());
        }
        Detail::ConnectOutcome(o) => {
            if let Peer::Inet { address, port } = &o.peer {
                let _ = write!(s, " {} {address} port {port}", o.peer.family());
            }
            s.push_str(if o.established { " established" } else { " failed" });
        }
        Detail::Exit(x) => match (x.status(), x.signal()) {
            (Some(st), _) => {
                let _ = write!(s, " status={st}");
            }
            (_, Some(sig)) => {
                let _ = write!(s, " signal={sig}");
            }
            _ => s.push_str(" status=unknown"),
        },
        Detail::Log(l) => {
            s.push_str(if l.via_syslog { " syslog " } else { " stderr " });
            quoted(s, &l.data);
        }
        Detail::Connect(c) => match &c.peer {
            Peer::Inet { address, port } => {
                let _ = write!(s, " {} {address} port {port}", c.peer.family());
            }
            Peer::Unix { path } => {
                s.push_str(" unix ");
                match path.strip_prefix(b"\0") {
                    Some(abs) => {
                        s.push('@');
                        quoted(s, abs);
                    }
                    None => quoted(s, path),
                }
            }
        },
        Detail::Syscall(c) => {
            let arch = if ev.compat { tracer_rules::Arch::B32 } else { tracer_rules::Arch::B64 };
            match tracer_rules::syscalls::name(arch, ev.syscall) {
                Some(n) => {
                    let _ = write!(s, " {n}");
                }
                None => {
                    let _ = write!(s, " syscall {}", ev.syscall);
                }
            }
            if ev.compat {
                s.push_str(" (b32)");
            }
            for n in &c.names {
                s.push(' ');
                quoted(s, &n.host_path);
            }
            if let Some([a0, a1, a2, a3]) = ev.args {
                let _ = write!(s, " a0={a0:x} a1={a1:x} a2={a2:x} a3={a3:x}");
            }
        }
    }
    match ev.error() {
        Some(e) => {
            let _ = write!(s, " = {} {e}", ev.ret);
        }
        None => {
            let _ = write!(s, " = {}", ev.ret);
        }
    }
    if !ev.keys.is_empty() {
        s.push_str(" key=");
        for (i, k) in ev.keys.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            quoted(s, k.as_bytes());
        }
    }
}

impl<W: Write> Sink for TextSink<W> {
    fn event(&mut self, ev: &Event) -> io::Result<()> {
        self.line.clear();
        render(&mut self.line, ev);
        self.line.push('\n');
        self.out.write_all(self.line.as_bytes())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
