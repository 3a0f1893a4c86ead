//! `tracer guard test-log FILE`: what the filter makes of each line (like fail2ban-regex).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Read};
use std::net::IpAddr;

use serde::Serialize;

use crate::addr::{Host, Resolver, UseDns};
use crate::follow::LineSplitter;
use crate::session::Sessions;
use crate::sshd::{Kind, Mode, Role, parse_line};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LineResult {
    /// 1-based line number.
    pub line: usize,
    /// Counts as a failure in this mode.
    pub failure: bool,
    /// A failure that waited for its address and was merged into this later line's failure
    /// (counted there, once, as fail2ban does).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<usize>,
    pub kind: Option<Kind>,
    pub role: Option<Role>,
    /// The address the failure is counted for (from the line, or the pid's earlier lines).
    pub addr: Option<IpAddr>,
    /// The host name the line gives instead of an address (sshd's UseDNS).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// What that name resolved to under `usedns` (each is charged a failure).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resolved: Vec<IpAddr>,
    pub user: Option<String>,
    pub pid: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub lines: usize,
    /// Failures (lines that are failures, less those merged into a later line's).
    pub failures: usize,
    /// Failures merged into a later line's failure.
    pub merged: usize,
    /// Failures whose address never became known (no address and no earlier line of the pid).
    pub failures_without_address: usize,
    /// Recognised lines that are not failures (address helpers, logins, disconnects).
    pub other_sshd: usize,
    /// Lines the filter does not know (or not sshd's).
    pub missed: usize,
    /// The file's lines end in CR LF (`sshd -e` output), where a CR LF in a user name cannot be
    /// told from a line end.
    pub crlf: bool,
    pub by_kind: BTreeMap<String, usize>,
    pub by_address: BTreeMap<IpAddr, usize>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TestLog {
    pub mode: Mode,
    pub usedns: UseDns,
    pub source: String,
    pub results: Vec<LineResult>,
    pub summary: Summary,
}

/// Classifies every line of `input` (host names resolved under `usedns`).
pub fn test_log<R: Read>(mut input: R, mode: Mode, usedns: UseDns, source: &str) -> io::Result<TestLog> {
    let mut splitter = LineSplitter::default();
    let mut lines = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = input.read(&mut buf)?;
        if n == 0 {
            break;
        }
        lines.extend(splitter.push(&buf[..n]));
    }
    lines.extend(splitter.finish());
    let mut results: Vec<LineResult> = Vec::new();
    let mut sessions: Sessions<usize> = Sessions::new(i64::MAX / 4);
    let mut resolver = Resolver::default();
    let now = crate::now();
    for (i, raw) in lines.iter().enumerate() {
        let text = String::from_utf8_lossy(raw);
        let parsed = parse_line(&text, mode);
        let pid = parsed.as_ref().and_then(|p| p.pid);
        let session = parsed.as_ref().and_then(|p| p.session());
        let hit = parsed.and_then(|p| p.hit);
        let mut r = LineResult {
            line: i + 1,
            failure: false,
            merged_into: None,
            kind: None,
            role: None,
            addr: None,
            host: None,
            resolved: Vec::new(),
            user: None,
            pid,
        };
        if let Some(h) = hit {
            // As the jail: a name counts for what it resolves to, never the session's address.
            let named = match &h.host {
                Some(name) => {
                    r.resolved = resolver.resolve(&Host::Name(name.clone()), usedns, now);
                    r.host = Some(name.clone());
                    r.resolved.first().copied()
                }
                None => h.addr,
            };
            let step = sessions.step(session, &h, named, r.host.is_some() && named.is_none(), now, || results.len());
            for j in step.released {
                results[j].addr = step.addr;
                results[j].merged_into = Some(i + 1);
            }
            r.kind = Some(h.kind);
            r.role = Some(h.role);
            r.failure = step.failure;
            r.addr = step.addr;
            r.user = h.user;
        }
        results.push(r);
    }
    let mut s = Summary { lines: lines.len(), crlf: splitter.crlf() == Some(true), ..Default::default() };
    for r in &results {
        match (r.failure, r.kind) {
            (true, Some(_)) if r.merged_into.is_some() => s.merged += 1,
            (true, Some(k)) => {
                s.failures += 1;
                *s.by_kind.entry(k.to_string()).or_default() += 1;
                let charged: Vec<IpAddr> =
                    if r.resolved.len() > 1 { r.resolved.clone() } else { r.addr.into_iter().collect() };
                if charged.is_empty() {
                    s.failures_without_address += 1;
                }
                for a in charged {
                    *s.by_address.entry(a).or_default() += 1;
                }
            }
            (false, Some(_)) => s.other_sshd += 1,
            _ => s.missed += 1,
        }
    }
    Ok(TestLog { mode, usedns, source: source.into(), results, summary: s })
}

impl TestLog {
    /// Human-readable report; `all` lists every line, not only the recognised ones.
    pub fn render_text(&self, all: bool) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "Running tests\n=============\n\nUse   mode: {}\nUse   usedns: {}\nUse   log file: {}\n",
            self.mode, self.usedns, self.source
        );
        let _ = writeln!(o, "Lines\n=====\n");
        for r in &self.results {
            let Some(kind) = r.kind else {
                if all {
                    let _ = writeln!(o, "{:>6}  -", r.line);
                }
                continue;
            };
            let tag = match (r.failure, r.merged_into) {
                (true, Some(_)) => "fail",
                (true, None) => "FAIL",
                _ => "ok",
            };
            let addr = r.addr.map_or("-".to_string(), |a| a.to_string());
            let _ = write!(o, "{:>6}  {:<4}  {:<22}  {:<39}", r.line, tag, kind.as_str(), addr);
            if let Some(u) = &r.user {
                let _ = write!(o, "  user={u}");
            }
            if let Some(p) = r.pid {
                let _ = write!(o, "  pid={p}");
            }
            if let Some(m) = r.merged_into {
                let _ = write!(o, "  counted-at-line={m}");
            }
            if let Some(h) = &r.host {
                let ips: Vec<String> = r.resolved.iter().map(ToString::to_string).collect();
                let _ = write!(o, "  host={h} -> [{}]", ips.join(" "));
            }
            o.push('\n');
        }
        let s = &self.summary;
        let _ = writeln!(o, "\nResults\n=======\n\nFailures: {} total", s.failures);
        let _ = writeln!(o, "|-  [# of hits] kind");
        for (k, c) in &s.by_kind {
            let _ = writeln!(o, "|   [{c}] {k}");
        }
        let _ = writeln!(o, "`-\n\nAddresses: {} found", s.by_address.len());
        for (a, c) in &s.by_address {
            let _ = writeln!(o, "|   [{c}] {a}");
        }
        let _ = writeln!(o, "`-\n");
        if s.failures_without_address > 0 {
            let _ = writeln!(o, "Failures without a known address: {}", s.failures_without_address);
        }
        if s.crlf {
            let _ = writeln!(
                o,
                "Note: lines end in CR LF (sshd -e output): a CR LF inside a user name cannot be told from a line end"
            );
        }
        let _ = writeln!(
            o,
            "Lines: {} lines, {} failures, {} other sshd lines, {} missed",
            s.lines, s.failures, s.other_sshd, s.missed
        );
        o
    }

    pub fn render_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("serializable")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
Nov 24 13:22:20 host sshd[10]: Connection from 192.0.2.7 port 5000 on 10.0.0.1 port 22 rdomain \"\"
Nov 24 13:22:21 host sshd[10]: Failed password for invalid user x from 10.0.0.1 port 22 from 192.0.2.7 port 5000 ssh2
Nov 24 13:22:22 host sshd[10]: Disconnecting: Too many authentication failures [preauth]
Nov 24 13:22:23 host sshd[11]: Disconnecting: Too many authentication failures [preauth]
Nov 24 13:22:24 host sshd[11]: Connection closed by 2001:db8::5 port 1 [preauth]
Nov 24 13:22:25 host CRON[12]: pam_unix(cron:session): session opened
Nov 24 13:22:26 host sshd[13]: Accepted password for bob from 198.51.100.1 port 2 ssh2
";

    #[test]
    fn per_line_and_summary() {
        let t = test_log(LOG.as_bytes(), Mode::Normal, UseDns::Warn, "auth.log").unwrap();
        let r = &t.results;
        assert_eq!(r.len(), 7);
        assert!(!r[0].failure && r[0].kind == Some(Kind::ConnectionFrom));
        assert!(
            r[1].failure
                && r[1].addr == Some("192.0.2.7".parse().unwrap())
                && r[1].user.as_deref() == Some("x from 10.0.0.1 port 22")
        );
        assert!(r[2].failure && r[2].addr == Some("192.0.2.7".parse().unwrap()) && r[2].pid == Some(10));
        assert!(r[3].failure && r[3].addr == Some("2001:db8::5".parse().unwrap()), "pending resolved by later line");
        assert_eq!((r[3].merged_into, r[4].failure), (Some(5), true), "and counted once, there");
        assert!(r[5].kind.is_none());
        assert_eq!(r[6].role, Some(Role::Gained));
        let s = &t.summary;
        assert_eq!((s.lines, s.failures, s.merged, s.other_sshd, s.missed), (7, 3, 1, 2, 1));
        assert_eq!(s.by_address[&"192.0.2.7".parse::<IpAddr>().unwrap()], 2);
        assert!(!s.by_address.contains_key(&"10.0.0.1".parse::<IpAddr>().unwrap()));
        let text = t.render_text(false);
        assert!(text.contains("Failures: 3 total"), "{text}");
        assert!(text.contains("counted-at-line=5"), "{text}");
        assert!(text.contains("Lines: 7 lines, 3 failures, 2 other sshd lines, 1 missed"), "{text}");
        let json: serde_json::Value = serde_json::from_str(&t.render_json()).unwrap();
        assert_eq!(json["summary"]["failures"], 3);
        assert_eq!(json["results"][1]["addr"], "192.0.2.7");
        assert_eq!(json["results"][1]["kind"], "failed");
    }

    /// `sshd -e` output: a bare LF in a user name does not start a line of its own.
    #[test]
    fn sshd_e_files_split_only_at_crlf() {
        let log = "Server listening on 0.0.0.0 port 22.\r\n\
                   Invalid user x\nFailed password for root from 203.0.113.9 port 22 ssh2\nz from 192.0.2.7 port 5\r\n\
                   Failed password for invalid user x\nFailed password for root from 203.0.113.9 port 22 ssh2\nz from 192.0.2.7 port 5 ssh2\r\n";
        let t = test_log(log.as_bytes(), Mode::Normal, UseDns::Warn, "sshd.err").unwrap();
        assert_eq!(t.summary.lines, 3);
        assert!(t.summary.crlf);
        let charged: Vec<&IpAddr> = t.summary.by_address.keys().collect();
        assert_eq!(charged, [&"192.0.2.7".parse::<IpAddr>().unwrap()], "{:?}", t.summary);
        assert_eq!(t.summary.failures, 2);
        assert!(t.render_text(false).contains("CR LF"));
    }
}
