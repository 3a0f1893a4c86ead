//! The real auditctl agrees with the parser: each of Debian's example files is loaded into
//! the kernel's audit, rule by rule, and `auditctl -l` lists the same rules, in the same
//! order, as `Rule::describe`. Audit's rules are machine-wide: the test holds
//! /tmp/auditd.lock (as every test touching auditd) and leaves no rule behind.

use libc as _;
use thiserror as _;
use tracer_common as _;

use std::{fs::File, os::fd::AsRawFd, path::PathBuf, process::Command};

const DIR: &str = "/usr/share/doc/auditd/examples/rules";

struct Lock(File);

impl Lock {
    fn take() -> Lock {
        let f = File::options().create(true).append(true).open("/tmp/auditd.lock").expect("open /tmp/auditd.lock");
        // SAFETY: flock on a descriptor this File owns for the lock's lifetime.
        let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
        assert_eq!(rc, 0, "flock /tmp/auditd.lock");
        Lock(f)
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = auditctl(&["-D"]);
        // SAFETY: as above; the descriptor is still open.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

fn auditctl(args: &[&str]) -> (bool, String) {
    let out = Command::new("auditctl").args(args).output().expect("run auditctl (auditd installed by xtask setup)");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// What auditctl 3.0.9 prints differently from the canonical form: a watch whose perm field
/// came before its path is printed as ` -p x-w /path`.
fn normalise(line: &str) -> String {
    if let Some(rest) = line.strip_prefix(" -p ")
        && let Some((perm, tail)) = rest.split_once("-w ")
    {
        let (path, keys) = tail.split_once(' ').map_or((tail, ""), |(p, k)| (p, k));
        let keys = if keys.is_empty() { String::new() } else { format!(" {keys}") };
        return format!("-w {path} -p {perm}{keys}");
    }
    line.to_string()
}

#[test]
fn auditctl_lists_what_describe_says() {
    let _lock = Lock::take();
    let mut files: Vec<PathBuf> = std::fs::read_dir(DIR)
        .expect("auditd's example rules")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "rules"))
        .collect();
    files.sort();
    let (mut compared, mut refused) = (0, 0);
    for file in files {
        let check = tracer_rules::check(std::slice::from_ref(&file));
        let text = std::fs::read_to_string(&file).expect("read");
        let lines: Vec<&str> = text.lines().collect();
        let (ok, out) = auditctl(&["-D"]);
        assert!(ok, "auditctl -D: {out}");
        let mut want = Vec::new();
        for r in &check.set.rules {
            // Only the rule's own line goes to the kernel (never -e/-f/-b/--loginuid-immutable).
            let words: Vec<&str> = lines[r.at.line - 1].split_whitespace().collect();
            let (ok, out) = auditctl(&words);
            // kernel_refuses_here says which rules the kernel refuses on this machine.
            assert_eq!(!ok, r.kernel_refuses_here().is_some(), "{}: auditctl: {out}", r.at);
            if ok {
                want.push(r.describe());
            } else {
                refused += 1;
                eprintln!("{}: auditctl refuses this rule on this machine, skipped: {}", r.at, out.trim());
            }
        }
        let (ok, listed) = auditctl(&["-l"]);
        assert!(ok, "auditctl -l: {listed}");
        let got: Vec<String> =
            listed.lines().filter(|l| *l != "No rules" && !l.trim().is_empty()).map(normalise).collect();
        assert_eq!(got, want, "{}: auditctl -l (left) vs describe (right)", file.display());
        compared += want.len();
    }
    let (ok, out) = auditctl(&["-D"]);
    assert!(ok, "{out}");
    eprintln!("{compared} rules listed identically by auditctl -l; {refused} refused by auditctl on this machine");
    assert!(compared >= 200, "only {compared} rules compared");
}
