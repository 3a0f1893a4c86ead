//! The job's facts, ordered for reading: processes as a tree, everything else sorted.

use std::collections::{BTreeMap, BTreeSet};

use super::Job;
use crate::{
    event::{escape, signal_name},
    summary::{self, Summary},
};

impl Job {
    /// The facts, ordered for reading: processes as a tree, everything else sorted.
    pub fn summary(&self) -> Summary {
        let start = self.start_ns.unwrap_or(0);
        let ms = |ns: u64| ns.saturating_sub(start) / 1_000_000;
        let mut s =
            Summary { workspace: escape(&self.ctx.workspace), duration_ms: ms(self.end_ns), ..Default::default() };
        // Depth-first from the roots (processes whose parent is not in the job).
        let known: BTreeSet<u32> = self.procs.iter().map(|p| p.pid).collect();
        let mut children: BTreeMap<Option<u32>, Vec<usize>> = BTreeMap::new();
        for (i, p) in self.procs.iter().enumerate() {
            let parent = p.ppid.filter(|pp| known.contains(pp) && *pp != p.pid);
            children.entry(parent).or_default().push(i);
        }
        let mut stack: Vec<(usize, usize)> = children.get(&None).into_iter().flatten().rev().map(|&i| (i, 0)).collect();
        let mut seen = vec![false; self.procs.len()];
        while let Some((i, depth)) = stack.pop() {
            if std::mem::replace(&mut seen[i], true) {
                continue;
            }
            let p = &self.procs[i];
            let failed = p.status.is_some_and(|s| s != 0) || p.signal.is_some();
            s.processes.push(summary::Process {
                pid: p.pid,
                ppid: p.ppid,
                depth,
                exe: p.exe.as_deref().map(escape),
                argv: p.argv.iter().map(|a| escape(a)).collect(),
                comm: escape(&p.comm),
                start_ms: ms(p.start_ns),
                duration_ms: p.end_ns.map(|e| e.saturating_sub(p.start_ns) / 1_000_000),
                status: p.status,
                signal: p.signal.map(signal_name),
                failed,
            });
            for &c in children.get(&Some(p.pid)).into_iter().flatten().rev() {
                stack.push((c, depth + 1));
            }
        }
        // Forks that did nothing but exit cleanly are noise in a CI summary; they stay in
        // the chains of their children through `ppid`.
        let notable: BTreeSet<u32> = self.procs.iter().filter(|p| p.notable).map(|p| p.pid).collect();
        s.tree = s.processes.clone();
        s.processes.retain(|p| notable.contains(&p.pid) || p.depth == 0);
        for (path, f) in &self.files {
            let display = self.ctx.display(path);
            let dir = match display.rfind('/') {
                Some(0) => "/".to_string(),
                Some(i) => display[..i].to_string(),
                None => ".".to_string(),
            };
            s.files.push(summary::File {
                path: escape(path),
                display,
                dir,
                ops: f.ops.iter().cloned().collect(),
                pids: f.pids.iter().copied().collect(),
            });
        }
        for (path, pid, error) in &self.sensitive {
            if s.sensitive_reads.iter().any(|r| r.path == escape(path) && r.pid == *pid) {
                continue;
            }
            s.sensitive_reads.push(summary::SensitiveRead {
                path: escape(path),
                display: self.ctx.display(path),
                pid: *pid,
                error: error.clone(),
                chain: Vec::new(),
            });
        }
        for ((addr, port), d) in &self.egress {
            let failed: u32 = d.failed.values().sum();
            let errors: Vec<&str> = d.failed.keys().map(String::as_str).collect();
            let failed_label = format!("failed ({})", errors.join(", "));
            let parts: Vec<(&str, u32)> = [
                ("established", d.established),
                ("udp", d.datagram),
                ("in progress", d.in_progress),
                (failed_label.as_str(), failed),
            ]
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .collect();
            let outcome = match parts.as_slice() {
                [(label, _)] => (*label).to_string(),
                _ => parts.iter().map(|(l, n)| format!("{l} {n}")).collect::<Vec<_>>().join(", "),
            };
            let protocol = if d.datagram > 0 {
                "udp"
            } else if d.established > 0 || d.handshakes > 0 {
                "tcp"
            } else {
                "?"
            };
            s.egress.push(summary::Destination {
                address: addr.to_string(),
                port: *port,
                family: if addr.is_ipv4() { "inet" } else { "inet6" }.into(),
                names: self.resolved.get(addr).into_iter().flatten().map(|n| escape(n)).collect(),
                pids: d.pids.iter().copied().collect(),
                attempts: d.attempts,
                established: d.established,
                in_progress: d.in_progress,
                failed,
                protocol: protocol.into(),
                outcome,
            });
        }
        for (name, pids) in &self.dns {
            s.dns.push(summary::DnsName { name: escape(name), pids: pids.iter().copied().collect() });
        }
        for (local, pids) in &self.listeners {
            s.listeners.push(summary::Listener {
                address: local.ip().to_string(),
                port: local.port(),
                pids: pids.iter().copied().collect(),
            });
        }
        for (path, pids) in &self.unix {
            let path = match path.strip_prefix(b"\0") {
                Some(abs) => format!("@{}", escape(abs)),
                None => escape(path),
            };
            s.unix_sockets.push(summary::UnixSocket { path, pids: pids.iter().copied().collect() });
        }
        let chains: Vec<_> = s.sensitive_reads.iter().map(|r| s.tree_chain(r.pid)).collect();
        for (r, c) in s.sensitive_reads.iter_mut().zip(chains) {
            r.chain = c;
        }
        s
    }
}
