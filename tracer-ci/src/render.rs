//! The Markdown summary (`--summary FILE`, `$GITHUB_STEP_SUMMARY`): GitHub-flavoured tables,
//! long lists folded in `<details>`. Every value is escaped for its place (table cell or
//! HTML), so a hostile name renders as text.

use std::fmt::Write as _;

use crate::summary::Summary;

/// A table cell: the characters that could be markup, a cell boundary, math or a link are
/// backslash-escaped (CommonMark), so a name renders as itself. Values are printable ASCII.
pub fn cell(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if "\\`*_[]<>|!~&$#:@".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    if out.is_empty() { "\u{2014}".into() } else { out }
}

fn html(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn pids(p: &[u32]) -> String {
    p.iter().map(u32::to_string).collect::<Vec<_>>().join(" ")
}

fn ms(v: u64) -> String {
    if v < 1000 { format!("{v} ms") } else { format!("{:.1} s", v as f64 / 1000.0) }
}

/// The headline: command, outcome, counts.
pub fn headline(s: &Summary) -> String {
    let outcome = match (&s.exit.status, &s.exit.signal) {
        (Some(st), _) => format!("exit {st}"),
        (None, Some(sig)) => format!("killed by {sig}"),
        _ => "exit unknown".into(),
    };
    let failed = s.processes.iter().filter(|p| p.failed).count();
    format!(
        "{outcome}{} in {}: {} processes ({failed} failed), {} files changed, {} sensitive reads, {} destinations, {} violations",
        if s.exit.stopped { " (stopped by the tracer)" } else { "" },
        ms(s.duration_ms),
        s.processes.len(),
        s.files.len(),
        s.sensitive_reads.len(),
        s.egress.len(),
        s.violations.len(),
    )
}

pub fn markdown(s: &Summary) -> String {
    let mut m = String::new();
    let _ = writeln!(m, "## tracer ci: {}\n", cell(&s.command.join(" ")));
    let _ = writeln!(m, "{}\n", cell(&headline(s)));
    if s.events_lost > 0 {
        let _ = writeln!(m, "**Incomplete:** {} events were lost (ring buffer full).\n", s.events_lost);
    }
    if !s.violations.is_empty() {
        let _ = writeln!(
            m,
            "### Violations ({})\n\n| rule | what | process chain |\n| --- | --- | --- |",
            s.violations.len()
        );
        for v in &s.violations {
            let chain = v.chain.iter().map(|c| cell(c)).collect::<Vec<_>>().join(" \u{2192} ");
            let _ = writeln!(m, "| {} | {} | {chain} |", cell(&v.rule), cell(&v.what));
        }
        m.push('\n');
    }
    if let Some(d) = &s.baseline_new {
        let _ = writeln!(m, "### New since the baseline\n");
        if d.is_empty() {
            m.push_str("Nothing new.\n\n");
        } else {
            m.push_str("| kind | value |\n| --- | --- |\n");
            for (kind, list) in
                [("endpoint", &d.endpoints), ("dns", &d.dns), ("program", &d.programs), ("write root", &d.write_roots)]
            {
                for v in list {
                    let _ = writeln!(m, "| {kind} | {} |", cell(v));
                }
            }
            m.push('\n');
        }
    }
    let _ = writeln!(m, "### Processes ({})\n", s.processes.len());
    let failed: Vec<_> = s.processes.iter().filter(|p| p.failed).collect();
    if !failed.is_empty() {
        m.push_str("| failed | pid | command | exit |\n| --- | --- | --- | --- |\n");
        for p in &failed {
            let _ = writeln!(m, "| \u{274c} | {} | {} | {} |", p.pid, cell(&p.command()), cell(&p.outcome()));
        }
        m.push('\n');
    }
    let _ = writeln!(m, "<details><summary>Process tree ({})</summary>\n", s.processes.len());
    m.push_str("| pid | parent | command | started | duration | exit |\n| --- | --- | --- | --- | --- | --- |\n");
    for p in &s.processes {
        let indent = "\u{a0}\u{a0}".repeat(p.depth);
        let _ = writeln!(
            m,
            "| {} | {} | {indent}{} | +{} | {} | {}{} |",
            p.pid,
            p.ppid.map_or_else(|| "?".into(), |v| v.to_string()),
            cell(&p.command()),
            ms(p.start_ms),
            p.duration_ms.map_or_else(|| "?".into(), ms),
            if p.failed { "\u{274c} " } else { "" },
            cell(&p.outcome()),
        );
    }
    m.push_str("\n</details>\n\n");
    let _ = writeln!(m, "### Files changed ({})\n", s.files.len());
    let dirs: std::collections::BTreeSet<&str> = s.files.iter().map(|f| f.dir.as_str()).collect();
    for dir in dirs {
        let files: Vec<_> = s.files.iter().filter(|f| f.dir == dir).collect();
        let _ = writeln!(m, "<details><summary>{} ({})</summary>\n", html(dir), files.len());
        m.push_str("| file | change | pids |\n| --- | --- | --- |\n");
        for f in files {
            let _ = writeln!(m, "| {} | {} | {} |", cell(&f.display), cell(&f.ops.join(", ")), pids(&f.pids));
        }
        m.push_str("\n</details>\n\n");
    }
    let _ = writeln!(m, "### Sensitive files read ({})\n", s.sensitive_reads.len());
    if !s.sensitive_reads.is_empty() {
        m.push_str("| file | result | process chain |\n| --- | --- | --- |\n");
        for r in &s.sensitive_reads {
            let chain = r.chain.iter().map(|c| cell(c)).collect::<Vec<_>>().join(" \u{2192} ");
            let res = r.error.as_ref().map_or_else(|| "read".to_string(), |e| format!("failed {e}"));
            let _ = writeln!(m, "| {} | {} | {chain} |", cell(&r.display), cell(&res));
        }
        m.push('\n');
    }
    let _ = writeln!(m, "### Network egress ({})\n", s.egress.len());
    if !s.egress.is_empty() {
        m.push_str("| destination | names | outcome | attempts | pids |\n| --- | --- | --- | --- | --- |\n");
        for d in &s.egress {
            let _ = writeln!(
                m,
                "| {} | {} | {} | {} | {} |",
                cell(&d.endpoint()),
                cell(&d.names.join(" ")),
                cell(&d.outcome),
                d.attempts,
                pids(&d.pids)
            );
        }
        m.push('\n');
    }
    if !s.dns.is_empty() {
        let _ = writeln!(m, "### DNS names asked ({})\n\n| name | pids |\n| --- | --- |", s.dns.len());
        for n in &s.dns {
            let _ = writeln!(m, "| {} | {} |", cell(&n.name), pids(&n.pids));
        }
        m.push('\n');
    }
    if !s.listeners.is_empty() {
        let _ = writeln!(
            m,
            "### Listening sockets ({})\n\n| address | port | pids |\n| --- | --- | --- |",
            s.listeners.len()
        );
        for l in &s.listeners {
            let _ = writeln!(m, "| {} | {} | {} |", cell(&l.address), l.port, pids(&l.pids));
        }
        m.push('\n');
    }
    if !s.unix_sockets.is_empty() {
        let _ = writeln!(m, "<details><summary>Unix sockets ({})</summary>\n", s.unix_sockets.len());
        m.push_str("| socket | pids |\n| --- | --- |\n");
        for u in &s.unix_sockets {
            let _ = writeln!(m, "| {} | {} |", cell(&u.path), pids(&u.pids));
        }
        m.push_str("\n</details>\n\n");
    }
    m
}

/// The JSON document (`--json FILE`): the same facts, for tools.
pub fn json(s: &Summary) -> String {
    serde_json::to_string_pretty(s).expect("a summary serialises") + "\n"
}
