//! The real auditctl agrees with the parser: each of Debian's example files is loaded into
//! the kernel's audit, rule by rule, and `auditctl -l` lists the same rules, in the same
//! order, as `Rule::describe`. Audit's rules are machine-wide: the test holds
//! /tmp/auditd.lock (as every test touching auditd) and leaves no rule behind.

use libc as _;
use thiserror as _;
use tracer_common as _;

use tracer_rules::model::List;

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

/// Fields and values Debian's files do not use. (auditctl 3.0.9 lists `exe!=` as `exe=`, and
/// names an arch-less rule's numbers in the table of the arch it printed last: not used here.)
const MORE: &str = "\
-a exit,always -F arch=b64 -S 59,openat -F uid=root -F gid=root -F auid=unset -F euid=-2 -F exit=EPERM -k values
-a always,exit -F arch!=b64 -S all -F a1=0x1F -F a2&0100 -F a3&=7 -F sessionid=unset -F success=0 -F pid!=1 -F ppid>100
-a always,exit -S unlink,rename -F exe=/usr/bin/su -F key=a -F key=b -k c
-a never,exit -F arch=b32 -S chown32,socketcall -F obj_gid!=42 -F obj_uid<=1000 -C gid=egid -C euid!=obj_uid
-a always,exit -F dir=/usr/share/doc -F perm=rx -C obj_uid!=fsuid
-A always,exit -F arch=b64 -S ptrace -F exit>=-1 -F exit<0 -k first
-w /usr/share/doc/auditd -p r
-w /etc/passwd
-a never,task -F uid=1001 -F pid=99
-a always,task -F uid=1002 -F pid=98
-a never,filesystem -F fstype=tracefs -k kk
-a always,filesystem -F fstype=0x27e0eb
-a never,filesystem -F fstype=debugfs
-a always,exit -F arch=b64 -S open -F subj_sen<s0 -F subj_type!=x -F obj_lev_high>=s0
";

#[test]
fn auditctl_lists_what_describe_says() {
    let _lock = Lock::take();
    let mut files: Vec<PathBuf> = std::fs::read_dir(DIR)
        .expect("auditd's example rules")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "rules"))
        .collect();
    files.sort();
    let more = std::env::temp_dir().join(format!("tracer-rules-more-{}.rules", std::process::id()));
    std::fs::write(&more, MORE).expect("write");
    files.push(more.clone());
    let (mut compared, mut refused) = (0, 0);
    for file in files {
        let check = tracer_rules::check(std::slice::from_ref(&file));
        let text = std::fs::read_to_string(&file).expect("read");
        let lines: Vec<&str> = text.lines().collect();
        let (ok, out) = auditctl(&["-D"]);
        assert!(ok, "auditctl -D: {out}");
        let mut want = Vec::new();
        // In load order: -A rules are sent where their line is and go first in the kernel.
        let mut by_line: Vec<&tracer_rules::Rule> = check.set.rules.iter().collect();
        by_line.sort_by_key(|r| r.at.line);
        let mut sent = Vec::new();
        for r in by_line {
            // Only the rule's own line goes to the kernel (never -e/-f/-b/--loginuid-immutable).
            let words: Vec<&str> = lines[r.at.line - 1].split_whitespace().collect();
            let (ok, out) = auditctl(&words);
            // kernel_refuses_here says which rules the kernel refuses on this machine.
            assert_eq!(!ok, r.kernel_refuses_here().is_some(), "{}: auditctl: {out}", r.at);
            if ok {
                sent.push(r.at.line);
            } else {
                refused += 1;
                eprintln!("{}: auditctl refuses this rule on this machine, skipped: {}", r.at, out.trim());
            }
        }
        // auditctl -l lists the kernel's lists in their order (task, exit, filesystem).
        let mut rules: Vec<&tracer_rules::Rule> =
            check.set.rules.iter().filter(|r| sent.contains(&r.at.line)).collect();
        rules.sort_by_key(|r| match r.list {
            List::Task => 0,
            List::Exit => 1,
            List::Filesystem => 2,
        });
        want.extend(rules.into_iter().map(tracer_rules::Rule::describe));
        let (ok, listed) = auditctl(&["-l"]);
        assert!(ok, "auditctl -l: {listed}");
        let got: Vec<String> =
            listed.lines().filter(|l| *l != "No rules" && !l.trim().is_empty()).map(normalise).collect();
        assert_eq!(got, want, "{}: auditctl -l (left) vs describe (right)", file.display());
        compared += want.len();
    }
    let (ok, out) = auditctl(&["-D"]);
    assert!(ok, "{out}");
    std::fs::remove_file(&more).expect("remove");
    eprintln!("{compared} rules listed identically by auditctl -l; {refused} refused by auditctl on this machine");
    assert!(compared >= 200, "only {compared} rules compared");
}

/// Lines both refuse: tracer's errors are auditctl's (or the kernel's) on these.
#[test]
fn auditctl_refuses_what_load_refuses() {
    let _lock = Lock::take();
    let bad = [
        "-a always,exit -F arch=b64 -S open -F colour=blue",
        "-a always,exit -F arch=b64 -S open -F auid~1000",
        "-a always,exit -F arch=b64 -S open -F perm!=w",
        "-a always,exit -F arch=b64 -S open -F uid&1",
        "-a always,exit -F arch=b64 -S open -F euid=-1",
        "-a always,exit -F arch=b64 -S execve -C uid<euid",
        "-a always,exit -F arch=b64 -S execve -C uid!=gid",
        "-w /etc/shadow -p wa -k",
        "-a always,exit -F arch=b64 -S nosuchcall",
        "-a always,exit -F arch=b64 -S stime",
        "-a always,exit -F arch=b32 -S open -F exit=-ENOTANERRNO",
        "-a always,exit -F arch=b64 -S open -F auid>=nosuchuser",
        "-a sometimes,exit -S open",
        "-a always,exit -S open -F arch=b64",
        "-w etc/passwd",
        "-a always,exit -F path=/etc/ -F perm=w",
        "-F uid=0",
        "-a never,task -S open",
        "-a never,task -F uid=1001 -k t",
        "-a never,task -F uid=1001 -F key=t",
        "-a always,exit -F uid=1001 -F key=t",
        "-a never,task -F path=/etc/passwd",
        "-a never,task -F uid=nosuchuser",
        "-a never,filesystem -F fstype=nosuchfs",
        "-a never,filesystem -F fstype=cgroup2",
        "-a never,filesystem -F uid=0",
        "-a never,filesystem -S open",
        "-a always,exit -F arch=b64 -S open -F fstype=tracefs",
        "-a always,exit -F arch=b64 -S open -F subj_type<x",
        &format!("-w /etc/passwd -k {}", "k".repeat(257)),
    ];
    let dir = std::env::temp_dir().join(format!("tracer-rules-refuse-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    for line in bad {
        let words: Vec<&str> = line.split_whitespace().collect();
        let (ok, out) = auditctl(&words);
        assert!(!ok, "auditctl took {line:?}: {out}");
        let f = dir.join("bad.rules");
        std::fs::write(&f, format!("{line}\n")).expect("write");
        assert!(tracer_rules::load(&[f]).is_err(), "load took {line:?}");
    }
    std::fs::remove_dir_all(&dir).expect("clean");
    let (ok, listed) = auditctl(&["-l"]);
    assert!(ok && listed.trim() == "No rules", "{listed}");
}
