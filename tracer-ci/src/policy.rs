//! `--policy FILE` (TOML): allowed egress, allowed write roots, forbidden reads, forbidden
//! programs. A section left out is not policed. Checked against a [`Summary`].
//!
//! ```toml
//! [egress]
//! cidrs = ["10.0.0.0/8", "127.0.0.0/8"]   # destinations allowed by address
//! hosts = ["*.npmjs.org"]                  # ... or by a DNS name the job asked for
//! ports = [443, 53]                        # when given, the port must be one of these
//! [files]
//! write_roots = ["$WORKSPACE", "/tmp"]     # $WORKSPACE and ~ are expanded
//! forbidden_reads = ["~/.aws/**", "~/.ssh/**"]
//! [programs]
//! forbidden = ["nc", "/usr/bin/curl"]      # a name without / matches the basename
//! ```

use std::net::IpAddr;

use glob::Pattern;
use ipnet::IpNet;
use serde::Deserialize;
use toml::Spanned;

use crate::{
    Error,
    model::{MATCH, expand_home},
    summary::{Summary, Violation},
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    egress: Option<RawEgress>,
    files: Option<RawFiles>,
    programs: Option<RawPrograms>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEgress {
    #[serde(default)]
    cidrs: Vec<Spanned<String>>,
    #[serde(default)]
    hosts: Vec<Spanned<String>>,
    #[serde(default)]
    ports: Vec<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFiles {
    write_roots: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    forbidden_reads: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrograms {
    #[serde(default)]
    forbidden: Vec<Spanned<String>>,
}

#[derive(Debug, Default)]
pub struct Egress {
    pub cidrs: Vec<IpNet>,
    pub hosts: Vec<Pattern>,
    pub ports: Vec<u16>,
}

#[derive(Debug, Default)]
pub struct Policy {
    pub egress: Option<Egress>,
    /// Absolute directories (expanded); None: writes are not policed.
    pub write_roots: Option<Vec<Vec<u8>>>,
    pub forbidden_reads: Vec<Pattern>,
    pub forbidden_programs: Vec<Pattern>,
}

fn line_of(text: &str, at: usize) -> usize {
    text.as_bytes()[..at.min(text.len())].iter().filter(|&&b| b == b'\n').count() + 1
}

impl Policy {
    /// Parses a policy; `workspace` and `home` expand `$WORKSPACE` and `~`.
    pub fn parse(file: &str, text: &str, workspace: &[u8], home: &[u8]) -> Result<Self, Error> {
        let raw: Raw = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(1, |s| line_of(text, s.start));
            let msg = e.message().trim().to_string();
            // toml names the offending key only in the message; keep it readable.
            let key = msg.split('`').nth(1).filter(|_| msg.contains("field")).unwrap_or("policy").to_string();
            Error::At { file: file.into(), line, key, message: msg }
        })?;
        let err = |key: &str, at: &std::ops::Range<usize>, message: String| Error::At {
            file: file.into(),
            line: line_of(text, at.start),
            key: key.into(),
            message,
        };
        let expand = |s: &str| -> String {
            let ws = String::from_utf8_lossy(workspace);
            match s.strip_prefix("$WORKSPACE") {
                Some(rest) if rest.is_empty() || rest.starts_with('/') => format!("{}{rest}", ws.trim_end_matches('/')),
                _ => expand_home(s, home),
            }
        };
        let pattern = |key: &str, v: &Spanned<String>, absolute: bool| -> Result<Pattern, Error> {
            let s = expand(v.get_ref());
            if absolute && !s.starts_with('/') {
                return Err(err(
                    key,
                    &v.span(),
                    format!("{:?}: must be an absolute path (or start with ~ or $WORKSPACE)", v.get_ref()),
                ));
            }
            Pattern::new(&s).map_err(|e| err(key, &v.span(), format!("{:?}: {e}", v.get_ref())))
        };
        let mut p = Policy::default();
        if let Some(e) = raw.egress {
            let mut eg = Egress::default();
            for c in &e.cidrs {
                let s = c.get_ref();
                let net = s.parse::<IpNet>().or_else(|_| s.parse::<IpAddr>().map(IpNet::from)).map_err(|_| {
                    err("egress.cidrs", &c.span(), format!("{s:?} is not an address or CIDR (e.g. 10.0.0.0/8)"))
                })?;
                eg.cidrs.push(net);
            }
            for h in &e.hosts {
                let s = h.get_ref();
                if s.is_empty() || !s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.*_".contains(&b)) {
                    return Err(err(
                        "egress.hosts",
                        &h.span(),
                        format!("{s:?} is not a DNS name or wildcard (e.g. *.npmjs.org)"),
                    ));
                }
                eg.hosts.push(
                    Pattern::new(&s.to_ascii_lowercase()).map_err(|e| err("egress.hosts", &h.span(), e.to_string()))?,
                );
            }
            for port in &e.ports {
                let v = *port.get_ref();
                let v = u16::try_from(v)
                    .ok()
                    .filter(|&v| v != 0)
                    .ok_or_else(|| err("egress.ports", &port.span(), format!("{v} is not a port (1-65535)")))?;
                eg.ports.push(v);
            }
            p.egress = Some(eg);
        }
        if let Some(f) = raw.files {
            if let Some(roots) = f.write_roots {
                let mut out = Vec::new();
                for r in &roots {
                    let s = expand(r.get_ref());
                    if !s.starts_with('/') {
                        return Err(err(
                            "files.write_roots",
                            &r.span(),
                            format!("{:?}: must be an absolute path (or start with ~ or $WORKSPACE)", r.get_ref()),
                        ));
                    }
                    out.push(s.into_bytes());
                }
                p.write_roots = Some(out);
            }
            for r in &f.forbidden_reads {
                p.forbidden_reads.push(pattern("files.forbidden_reads", r, true)?);
            }
        }
        if let Some(pr) = raw.programs {
            for r in &pr.forbidden {
                p.forbidden_programs.push(pattern("programs.forbidden", r, false)?);
            }
        }
        Ok(p)
    }

    pub fn load(path: &std::path::Path, workspace: &[u8], home: &[u8]) -> Result<Self, Error> {
        let file = path.display().to_string();
        let text =
            std::fs::read_to_string(path).map_err(|e| Error::File { file: file.clone(), message: e.to_string() })?;
        Self::parse(&file, &text, workspace, home)
    }

    fn egress_allowed(eg: &Egress, addr: &IpAddr, port: u16, names: &[String]) -> bool {
        if !eg.ports.is_empty() && !eg.ports.contains(&port) {
            return false;
        }
        if eg.cidrs.is_empty() && eg.hosts.is_empty() {
            return true;
        }
        eg.cidrs.iter().any(|n| n.contains(addr))
            || names.iter().any(|n| eg.hosts.iter().any(|h| h.matches(&n.to_ascii_lowercase())))
    }

    /// Every violation in the run, with the process chain that caused it.
    pub fn check(&self, s: &Summary) -> Vec<Violation> {
        let mut out = Vec::new();
        let mut push = |rule: &str, what: String, pid: u32| {
            let v = Violation { rule: rule.into(), what, pid, chain: s.tree_chain(pid) };
            if !out.contains(&v) {
                out.push(v);
            }
        };
        if let Some(eg) = &self.egress {
            for d in &s.egress {
                let Ok(addr) = d.address.parse::<IpAddr>() else { continue };
                if !Self::egress_allowed(eg, &addr, d.port, &d.names) {
                    for &pid in &d.pids {
                        push("egress", format!("connect to {} ({})", d.endpoint(), d.outcome), pid);
                    }
                }
            }
            if !eg.hosts.is_empty() {
                for n in &s.dns {
                    if !eg.hosts.iter().any(|h| h.matches(&n.name.to_ascii_lowercase())) {
                        for &pid in &n.pids {
                            push("dns", format!("DNS query for {}", n.name), pid);
                        }
                    }
                }
            }
        }
        if let Some(roots) = &self.write_roots {
            for f in &s.files {
                let path = f.path.as_bytes();
                let inside = roots
                    .iter()
                    .map(Vec::as_slice)
                    .chain(crate::model::DEVICES.iter().map(|r| r.as_bytes()))
                    .any(|r| crate::model::strip_dir(path, r).is_some());
                if !inside {
                    for &pid in &f.pids {
                        push("write", format!("{} {}", f.ops.join(", "), f.path), pid);
                    }
                }
            }
        }
        for r in &s.sensitive_reads {
            if self.forbidden_reads.iter().any(|p| p.matches_with(&r.path, MATCH)) {
                let how = r.error.as_ref().map_or_else(String::new, |e| format!(" (failed: {e})"));
                push("read", format!("read {}{how}", r.path), r.pid);
            }
        }
        if !self.forbidden_programs.is_empty() {
            for p in &s.tree {
                let Some(exe) = &p.exe else { continue };
                let base = exe.rsplit('/').next().unwrap_or(exe);
                if self
                    .forbidden_programs
                    .iter()
                    .any(|f| if f.as_str().contains('/') { f.matches_with(exe, MATCH) } else { f.matches(base) })
                {
                    push("program", format!("ran {exe}"), p.pid);
                }
            }
        }
        out
    }
}
