//! `ssh-key` / `ssh-agent` events in the three formats: the event as `tracer trace` writes
//! it, plus the key, what was reached and whose it is, the reader's argv and its ancestors.

use std::io::{self, Write};

use clap::ValueEnum;

use crate::{
    bytes::json_str,
    event::Event,
    sink::{audit, json, text},
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    Text,
    Json,
    /// audit.log records with key="ssh-key" / key="ssh-agent", for ausearch -k.
    Audit,
}

/// What a protected access reached.
pub(crate) struct Alert<'a> {
    /// `ssh-key` or `ssh-agent`.
    pub key: &'static str,
    pub ev: &'a Event,
    /// The key file or agent socket (as found by the scan when known).
    pub target: Vec<u8>,
    /// Its owner's uid (the agent's uid for an agent), when known.
    pub owner: Option<u32>,
    /// Why it is reported (agents: which identity differs).
    pub reason: String,
    /// The enforcing LSM program denied it.
    pub denied: bool,
    pub argv: Vec<Vec<u8>>,
    pub tree: Vec<(u32, Vec<u8>)>,
}

pub(crate) struct Out {
    format: Format,
    out: Box<dyn Write + Send>,
    buf: Vec<u8>,
    serial: u64,
}

impl Out {
    pub(crate) fn new(format: Format, out: Box<dyn Write + Send>) -> Self {
        Out { format, out, buf: Vec::with_capacity(4096), serial: 0 }
    }

    pub(crate) fn alert(&mut self, a: &Alert) -> io::Result<()> {
        self.buf.clear();
        match self.format {
            Format::Json => render_json(&mut self.buf, a),
            Format::Text => {
                let mut s = String::new();
                render_text(&mut s, a);
                self.buf.extend_from_slice(s.as_bytes());
            }
            Format::Audit => {
                self.serial += 1;
                let title = a.argv.join(&0u8);
                audit::render(&mut self.buf, a.ev, self.serial, Some(a.key), (!title.is_empty()).then_some(&title));
            }
        }
        self.out.write_all(&self.buf)?;
        self.out.flush()
    }
}

fn render_json(buf: &mut Vec<u8>, a: &Alert) {
    json::render(buf, a.ev);
    buf.pop(); // the closing brace: the alert's fields follow
    buf.extend_from_slice(b",\"key\":\"");
    buf.extend_from_slice(a.key.as_bytes());
    buf.extend_from_slice(b"\",\"target\":");
    json_str(buf, &a.target);
    buf.extend_from_slice(b",\"owner_uid\":");
    match a.owner {
        Some(u) => {
            let _ = write!(buf, "{u}");
        }
        None => buf.extend_from_slice(b"null"),
    }
    buf.extend_from_slice(b",\"reason\":");
    json_str(buf, a.reason.as_bytes());
    let _ = write!(buf, ",\"denied\":{}", a.denied);
    buf.extend_from_slice(b",\"argv\":[");
    for (i, arg) in a.argv.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        json_str(buf, arg);
    }
    buf.extend_from_slice(b"],\"tree\":[");
    for (i, (pid, exe)) in a.tree.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        let _ = write!(buf, "{{\"pid\":{pid},\"exe\":");
        json_str(buf, exe);
        buf.push(b'}');
    }
    buf.extend_from_slice(b"]}\n");
}

fn render_text(s: &mut String, a: &Alert) {
    use std::fmt::Write as _;
    let _ = write!(s, "{} ", a.key);
    text::render(s, a.ev);
    s.push_str(" target=");
    text::quoted(s, &a.target);
    match a.owner {
        Some(u) => {
            let _ = write!(s, " owner_uid={u}");
        }
        None => s.push_str(" owner_uid=?"),
    }
    s.push_str(" reason=");
    text::quoted(s, a.reason.as_bytes());
    if a.denied {
        s.push_str(" denied");
    }
    s.push_str(" argv=");
    text::quoted(s, &a.argv.join(&b' '));
    s.push_str(" tree=");
    let tree: Vec<String> = a.tree.iter().map(|(p, e)| format!("{p}:{}", String::from_utf8_lossy(e))).collect();
    text::quoted(s, tree.join(" < ").as_bytes());
    s.push('\n');
}
