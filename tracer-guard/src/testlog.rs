//! `tracer guard test-log FILE`: what the filter makes of each line (like fail2ban-regex).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io::{self, BufRead};
use std::net::IpAddr;

use serde::Serialize;

use crate::sshd::{Kind, Mode, Role, parse_line};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LineResult {
    /// 1-based line number.
    pub line: usize,
    /// Counts as a failure in this mode.
    pub failure: bool,
    pub kind: Option<Kind>,
    pub role: Option<Role>,
    /// The address the failure is counted for (from the line, or the pid's earlier lines).
    pub addr: Option<IpAddr>,
    pub user: Option<String>,
    pub pid: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub lines: usize,
    /// Lines that are failures.
    pub failures: usize,
    /// Failures whose address never became known (no address and no earlier line of the pid).
    pub failures_without_address: usize,
    /// Recognised lines that are not failures (address helpers, logins, disconnects).
    pub other_sshd: usize,
    /// Lines the filter does not know (or not sshd's).
    pub missed: usize,
    pub by_kind: BTreeMap<String, usize>,
    pub by_address: BTreeMap<IpAddr, usize>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TestLog {
    pub mode: Mode,
    pub source: String,
    pub results: Vec<LineResult>,
    pub summary: Summary,
}

/// Classifies every line of `input`.
pub fn test_log<R: BufRead>(mut input: R, mode: Mode, source: &str) -> io::Result<TestLog> {
    let mut results: Vec<LineResult> = Vec::new();
    let mut sessions: HashMap<u32, IpAddr> = HashMap::new();
    let mut pending: HashMap<u32, Vec<usize>> = HashMap::new();
    let mut buf = Vec::new();
    let mut n = 0;
    loop {
        buf.clear();
        if input.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        n += 1;
        let text = String::from_utf8_lossy(&buf);
        let parsed = parse_line(&text, mode);
        let pid = parsed.as_ref().and_then(|p| p.pid);
        let hit = parsed.and_then(|p| p.hit);
        let mut r = LineResult { line: n, failure: false, kind: None, role: None, addr: None, user: None, pid };
        if let Some(h) = hit {
            r.kind = Some(h.kind);
            r.role = Some(h.role);
            r.failure = h.role == Role::Failure;
            r.user = h.user;
            r.addr = h.addr.or_else(|| pid.and_then(|p| sessions.get(&p).copied()));
            if let Some(p) = pid {
                if let Some(a) = h.addr {
                    sessions.insert(p, a);
                    for i in pending.remove(&p).unwrap_or_default() {
                        results[i].addr = Some(a);
                    }
                }
                if r.failure && r.addr.is_none() {
                    pending.entry(p).or_default().push(results.len());
                }
                if h.role == Role::Gained {
                    pending.remove(&p);
                }
                if h.forget {
                    sessions.remove(&p);
                    pending.remove(&p);
                }
            }
        }
        results.push(r);
    }
    let mut s = Summary { lines: n, ..Default::default() };
    for r in &results {
        match (r.failure, r.kind) {
            (true, Some(k)) => {
                s.failures += 1;
                *s.by_kind.entry(k.to_string()).or_default() += 1;
                match r.addr {
                    Some(a) => *s.by_address.entry(a).or_default() += 1,
                    None => s.failures_without_address += 1,
                }
            }
            (false, Some(_)) => s.other_sshd += 1,
            _ => s.missed += 1,
        }
    }
    Ok(TestLog { mode, source: source.into(), results, summary: s })
}

impl TestLog {
    /// Human-readable report; `all` lists every line, not only the recognised ones.
    pub fn render_text(&self, all: bool) -> String {
        let mut o = String::new();
        let _ =
            writeln!(o, "Running tests\n=============\n\nUse   mode: {}\nUse   log file: {}\n", self.mode, self.source);
        let _ = writeln!(o, "Lines\n=====\n");
        for r in &self.results {
            let Some(kind) = r.kind else {
                if all {
                    let _ = writeln!(o, "{:>6}  -", r.line);
                }
                continue;
            };
            let tag = if r.failure { "FAIL" } else { "ok" };
            let addr = r.addr.map_or("-".to_string(), |a| a.to_string());
            let _ = write!(o, "{:>6}  {:<4}  {:<22}  {:<39}", r.line, tag, kind.as_str(), addr);
            if let Some(u) = &r.user {
                let _ = write!(o, "  user={u}");
            }
            if let Some(p) = r.pid {
                let _ = write!(o, "  pid={p}");
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
        let t = test_log(LOG.as_bytes(), Mode::Normal, "auth.log").unwrap();
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
        assert!(r[5].kind.is_none());
        assert_eq!(r[6].role, Some(Role::Gained));
        let s = &t.summary;
        assert_eq!((s.lines, s.failures, s.other_sshd, s.missed), (7, 3, 3, 1));
        assert_eq!(s.by_address[&"192.0.2.7".parse::<IpAddr>().unwrap()], 2);
        assert!(!s.by_address.contains_key(&"10.0.0.1".parse::<IpAddr>().unwrap()));
        let text = t.render_text(false);
        assert!(text.contains("Failures: 3 total"), "{text}");
        assert!(text.contains("Lines: 7 lines, 3 failures, 3 other sshd lines, 1 missed"), "{text}");
        let json: serde_json::Value = serde_json::from_str(&t.render_json()).unwrap();
        assert_eq!(json["summary"]["failures"], 3);
        assert_eq!(json["results"][1]["addr"], "192.0.2.7");
        assert_eq!(json["results"][1]["kind"], "failed");
    }
}
