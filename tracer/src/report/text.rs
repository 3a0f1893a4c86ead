//! auditloginfo's layout, plus what it lacks: connections, failures per entry and the
//! number of lost events. Names are escaped (`text_escape`), so a file called
//! "x 1\n   /etc/shadow" stays on its own line and cannot forge an entry.

use std::fmt::Write as _;

use super::{Reports, Tally, UserReport, command_line, peer_name, sorted, sorted_syscalls};
use crate::bytes::text_escape;

/// Shown instead of the syscall section for a recorded file: a wrong section would be worse.
pub(crate) const NO_SYSCALLS: &str =
    "System calls made: not recorded (a `tracer trace` file has no syscall counts; only live runs count them)";

fn entry(out: &mut String, name: &[u8], t: Tally) {
    out.push_str("   ");
    text_escape(out, name);
    let _ = write!(out, " {}", t.count);
    if t.failed > 0 {
        let _ = write!(out, " ({} failed)", t.failed);
    }
    out.push('\n');
}

fn user(out: &mut String, auid: crate::event::Id, u: &UserReport, lost: Option<u64>) {
    let _ = writeln!(out, "Audit report for AUID {auid}\n");
    match &u.syscalls {
        Some(s) => {
            out.push_str("System calls made:\n");
            for (_, name, n) in sorted_syscalls(s) {
                let _ = writeln!(out, "   {name} {n}");
            }
        }
        None => {
            out.push_str(NO_SYSCALLS);
            out.push('\n');
        }
    }
    out.push_str("Commands executed:\n");
    for (name, _, t) in sorted(&u.commands, |argv| command_line(argv)) {
        entry(out, &name, t);
    }
    out.push_str("Files opened:\n");
    for (name, _, t) in sorted(&u.files, |p| p.clone()) {
        entry(out, &name, t);
    }
    out.push_str("Connections made:\n");
    for (name, _, t) in sorted(&u.connections, peer_name) {
        entry(out, &name, t);
    }
    if !u.roots.is_empty() {
        // Commands that ran chrooted, per root (host path), like `ls -lad /proc/PID/root`.
        out.push_str("Roots:\n");
        for (name, _, t) in sorted(&u.roots, |p| p.clone()) {
            entry(out, &name, t);
        }
    }
    match lost {
        Some(n) => {
            let _ = writeln!(out, "Lost events: {n}");
        }
        None => out.push_str("Lost events: unknown (not recorded in the input file)\n"),
    }
}

/// Every report, separated by a blank line.
pub(crate) fn render(r: &Reports) -> String {
    let mut out = String::new();
    for (i, (auid, u)) in r.users.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        user(&mut out, *auid, u, r.lost);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        event::{Id, Peer},
        report::Activity,
    };
    use std::collections::HashMap;

    #[test]
    fn auditloginfo_layout_with_failures_connections_and_lost() {
        let mut r = Reports::new(Some(Id::Set(7005)), true);
        let argv = vec![b"uname".to_vec(), b"-m".to_vec()];
        r.add(Id::Set(7005), Activity::Exec { argv: &argv, filename: b"/usr/bin/uname", root: b"/" }, false);
        for _ in 0..3 {
            r.add(Id::Set(7005), Activity::Open { path: b"/etc/shadow" }, true);
        }
        r.add(Id::Set(7005), Activity::Open { path: b"/etc/passwd" }, false);
        let peer = Peer::Inet { address: "127.0.0.1".parse().unwrap(), port: 9 };
        r.add(Id::Set(7005), Activity::Connect { peer: &peer }, true);
        r.add_syscounts(&HashMap::from([((7005, 0), 207), ((7005, 1), 3)]));
        r.lost = Some(0);
        assert_eq!(
            render(&r),
            "Audit report for AUID 7005\n\nSystem calls made:\n   read 207\n   write 3\n\
             Commands executed:\n   uname -m 1\n\
             Files opened:\n   /etc/shadow 3 (3 failed)\n   /etc/passwd 1\n\
             Connections made:\n   127.0.0.1:9 1 (1 failed)\n\
             Lost events: 0\n"
        );
    }

    #[test]
    fn hostile_names_cannot_forge_lines() {
        let mut r = Reports::new(None, false);
        r.add(Id::Unset, Activity::Open { path: b"/tmp/x 1\n   /etc/shadow 99\xff" }, false);
        let text = render(&r);
        assert!(text.starts_with("Audit report for AUID unset\n\n"), "{text}");
        assert!(text.contains(NO_SYSCALLS));
        assert!(text.contains("   /tmp/x 1\\n   /etc/shadow 99\\xff 1\n"), "{text}");
        assert!(!text.lines().any(|l| l.starts_with("   /etc/shadow")));
        assert!(text.ends_with("Lost events: unknown (not recorded in the input file)\n"));
    }

    #[test]
    fn reports_follow_each_other_in_auid_order() {
        let mut r = Reports::new(None, true);
        r.add(Id::Unset, Activity::Open { path: b"/a" }, false);
        r.add(Id::Set(7005), Activity::Open { path: b"/b" }, false);
        r.add(Id::Set(0), Activity::Open { path: b"/c" }, false);
        r.lost = Some(2);
        let text = render(&r);
        let titles: Vec<&str> = text.lines().filter(|l| l.starts_with("Audit report")).collect();
        assert_eq!(titles, ["Audit report for AUID 0", "Audit report for AUID 7005", "Audit report for AUID unset"]);
        assert_eq!(text.matches("Lost events: 2\n").count(), 3);
        assert!(text.contains("Lost events: 2\n\nAudit report for AUID 7005\n"));
    }
}
