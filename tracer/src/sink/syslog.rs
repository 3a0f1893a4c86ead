//! `--output syslog://[/SOCKET]`, `syslog+udp://HOST:PORT`, `syslog+tcp://HOST:PORT`: one
//! RFC 5424 message per event, so existing rsyslog pipelines (and their SQL outputs) take
//! the events. Every field is a structured-data parameter of `[tracer@32473 ...]` and the
//! message is the event's JSON line, so a consumer that keeps only the message keeps all.

use std::{
    io::{self, Write},
    net::{TcpStream, ToSocketAddrs, UdpSocket},
    os::unix::net::UnixDatagram,
};

use super::{Sink, json, store::row};
use crate::event::Event;

/// user.info: events are neither the kernel's nor the auth subsystem's own messages.
const PRI: u8 = 14;
/// The SD-ID (RFC 5424 §7.2.2: NAME@PEN; 32473 is the documentation enterprise number).
const SD_ID: &str = "tracer@32473";

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Transport {
    /// A local datagram socket (/dev/log unless a path is given).
    Unix(std::path::PathBuf),
    Udp(String),
    /// Octet-counted framing (RFC 6587 §3.4.1).
    Tcp(String),
}

/// The transport named by a `syslog...://` URL; None for anything else.
pub(crate) fn parse(s: &str) -> Option<Result<Transport, String>> {
    let hostport = |rest: &str| -> Result<String, String> {
        let hp = rest.trim_end_matches('/');
        match hp.rsplit_once(':') {
            Some((h, p)) if !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0) => Ok(hp.to_owned()),
            _ => Err(format!("{s}: expected HOST:PORT")),
        }
    };
    if let Some(rest) = s.strip_prefix("syslog://") {
        return Some(Ok(Transport::Unix(if rest.is_empty() { "/dev/log".into() } else { rest.into() })));
    }
    if let Some(rest) = s.strip_prefix("syslog+udp://") {
        return Some(hostport(rest).map(Transport::Udp));
    }
    if let Some(rest) = s.strip_prefix("syslog+tcp://") {
        return Some(hostport(rest).map(Transport::Tcp));
    }
    s.starts_with("syslog")
        .then(|| Err(format!("{s}: expected syslog://, syslog+udp://HOST:PORT or syslog+tcp://HOST:PORT")))
}

enum Conn {
    Unix(UnixDatagram),
    Udp(UdpSocket),
    Tcp(io::BufWriter<TcpStream>),
}

pub(crate) struct SyslogSink {
    conn: Conn,
    hostname: String,
    msg: Vec<u8>,
    json: Vec<u8>,
}

impl SyslogSink {
    /// Connects now, so an unreachable receiver fails before tracing starts.
    pub(crate) fn open(t: &Transport) -> io::Result<Self> {
        let conn = match t {
            Transport::Unix(p) => {
                let s = UnixDatagram::unbound()?;
                s.connect(p)?;
                Conn::Unix(s)
            }
            Transport::Udp(hp) => {
                let addr = hp.to_socket_addrs()?.next().ok_or_else(|| io::Error::other("no address"))?;
                let s = UdpSocket::bind(if addr.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" })?;
                s.connect(addr)?;
                Conn::Udp(s)
            }
            Transport::Tcp(hp) => Conn::Tcp(io::BufWriter::with_capacity(1 << 16, TcpStream::connect(hp)?)),
        };
        let hostname = tracer_store::Host::this().hostname;
        Ok(Self { conn, hostname, msg: Vec::with_capacity(4096), json: Vec::with_capacity(2048) })
    }
}

/// An SD-PARAM value: `"`, `\` and `]` escaped (RFC 5424 §6.3.3).
fn param_value(out: &mut Vec<u8>, v: &str) {
    for b in v.bytes() {
        if matches!(b, b'"' | b'\\' | b']') {
            out.push(b'\\');
        }
        out.push(b);
    }
}

/// One RFC 5424 message (no framing).
pub(crate) fn render(out: &mut Vec<u8>, json_buf: &mut Vec<u8>, hostname: &str, ev: &Event) {
    let r = row(ev);
    let time = jiff::Timestamp::from_nanosecond(i128::from(ev.time_ns))
        .unwrap_or(jiff::Timestamp::MAX)
        .strftime("%Y-%m-%dT%H:%M:%S.%6fZ");
    // HOSTNAME, APP-NAME, PROCID, MSGID: printable US-ASCII without spaces (§6.2).
    let host: String = hostname.chars().filter(|c| c.is_ascii_graphic()).take(255).collect();
    let _ = write!(
        out,
        "<{PRI}>1 {time} {} tracer {} {} [{SD_ID}",
        if host.is_empty() { "-" } else { &host },
        std::process::id(),
        r.event
    );
    if let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(&r) {
        for (k, v) in fields {
            let text = match v {
                serde_json::Value::Null => continue,
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            if matches!(k.as_str(), "machine_id" | "hostname" | "seq" | "key") && text.is_empty() {
                continue;
            }
            let _ = write!(out, " {k}=\"");
            param_value(out, &text);
            out.push(b'"');
        }
    }
    out.extend_from_slice(b"] ");
    json_buf.clear();
    json::render(json_buf, ev);
    out.extend_from_slice(json_buf);
}

impl Sink for SyslogSink {
    fn event(&mut self, ev: &Event) -> io::Result<()> {
        self.msg.clear();
        render(&mut self.msg, &mut self.json, &self.hostname, ev);
        match &mut self.conn {
            Conn::Unix(s) => s.send(&self.msg).map(|_| ()),
            Conn::Udp(s) => s.send(&self.msg).map(|_| ()),
            Conn::Tcp(w) => {
                write!(w, "{} ", self.msg.len())?;
                w.write_all(&self.msg)
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.conn {
            Conn::Tcp(w) => w.flush(),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(parse("syslog://"), Some(Ok(Transport::Unix("/dev/log".into()))));
        assert_eq!(parse("syslog:///run/x.sock"), Some(Ok(Transport::Unix("/run/x.sock".into()))));
        assert_eq!(parse("syslog+tcp://127.0.0.1:514"), Some(Ok(Transport::Tcp("127.0.0.1:514".into()))));
        assert!(parse("syslog+udp://host").unwrap().is_err());
        assert!(parse("syslog+tls://h:1").unwrap().is_err());
        assert_eq!(parse("events.json"), None);
    }

    #[test]
    fn escapes_param_values() {
        let mut v = Vec::new();
        param_value(&mut v, r#"a"b\c]d"#);
        assert_eq!(v, br#"a\"b\\c\]d"#);
    }
}
