//! The summary printed on stdout at the end of the job: the headline, then only what needs
//! a look (violations, failures, new things, sensitive reads, egress), one line each.

use std::fmt::Write as _;

use crate::{render::headline, summary::Summary};

pub fn text(s: &Summary) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "tracer ci: {}: {}", s.command.join(" "), headline(s));
    if s.events_lost > 0 {
        let _ = writeln!(t, "  INCOMPLETE: {} events lost", s.events_lost);
    }
    for v in &s.violations {
        let _ = writeln!(t, "  VIOLATION {}: {}\n      by {}", v.rule, v.what, v.chain.join(" > "));
    }
    if let Some(d) = &s.baseline_new {
        for (kind, list) in
            [("endpoint", &d.endpoints), ("dns", &d.dns), ("program", &d.programs), ("write root", &d.write_roots)]
        {
            for v in list {
                let _ = writeln!(t, "  NEW {kind}: {v}");
            }
        }
    }
    for p in s.processes.iter().filter(|p| p.failed) {
        let _ = writeln!(t, "  failed: {} ({}) pid {}", p.command(), p.outcome(), p.pid);
    }
    for r in &s.sensitive_reads {
        let _ = writeln!(
            t,
            "  sensitive read: {}{} by {}",
            r.display,
            r.error.as_ref().map_or_else(String::new, |e| format!(" (failed {e})")),
            r.chain.join(" > ")
        );
    }
    for d in &s.egress {
        let names = if d.names.is_empty() { String::new() } else { format!(" ({})", d.names.join(" ")) };
        let _ = writeln!(t, "  egress: {}{names} {}", d.endpoint(), d.outcome);
    }
    for l in &s.listeners {
        let _ = writeln!(t, "  listening: {}:{} by {}", l.address, l.port, s.tree_chain(l.pids[0]).join(" > "));
    }
    let dirs: std::collections::BTreeSet<&str> = s.files.iter().map(|f| f.dir.as_str()).collect();
    for dir in dirs {
        let n = s.files.iter().filter(|f| f.dir == dir).count();
        let _ = writeln!(t, "  files changed in {dir}: {n}");
    }
    if s.exit.code == 3 && !s.violations.is_empty() {
        let _ = writeln!(t, "tracer ci: exit 3: the job broke the policy");
    }
    t
}
