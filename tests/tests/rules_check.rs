//! `tracer rules check` as a user runs it on auditctl rule files.
// Every test crate gets the whole dev-dependency list; each uses part of it.
#![allow(unused_crate_dependencies)]

use std::process::Command;

use tracer_tests::*;

const DEBIAN: &str = "/usr/share/doc/auditd/examples/rules";

fn check(args: &[&std::ffi::OsStr]) -> (Option<i32>, String, String) {
    let out = Command::new(tracer_bin()).args(["rules", "check"]).args(args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A user name the rules give that this machine lacks: refused as auditctl refuses it
/// ("Unknown user"). Debian's 22-ignore-chrony.rules names `uid=chrony`.
fn user_missing_here(why: &str) -> bool {
    why.strip_prefix("uid: unknown user: ").is_some_and(|u| {
        let c = std::ffi::CString::new(u).unwrap();
        // SAFETY: `c` is a NUL-terminated name; only the pointer's nullness is read.
        unsafe { libc::getpwnam(c.as_ptr()) }.is_null()
    })
}

#[test]
fn debian_examples_have_no_unsupported_rule() {
    let (code, out, err) = check(&[DEBIAN.as_ref()]);
    assert!(out.contains(&format!("{DEBIAN}/30-stig.rules:40: -w /etc/shadow -p wa -k identity\n")), "{out}");
    assert!(out.contains(&format!("{DEBIAN}/10-base-config.rules:6: note: -b 8192: ")), "{out}");
    // The other lists and label fields are understood, each with a note saying how.
    for (at, rule, note) in [
        ("10-no-audit.rules:8", "-a never,task", "the task list: "),
        ("23-ignore-filesystems.rules:7", "-a never,filesystem -F fstype=tracefs", "the filesystem list: "),
        ("23-ignore-filesystems.rules:8", "-a never,filesystem -F fstype=debugfs", "the filesystem list: "),
    ] {
        assert!(out.contains(&format!("{DEBIAN}/{at}: {rule}\n")), "{at}: {out}");
        assert!(out.contains(&format!("{DEBIAN}/{at}: note: {note}")), "{at}: {out}");
    }
    let problems: Vec<&str> = err.lines().collect();
    for p in &problems {
        let (at, why) = p.split_once(": ").unwrap();
        assert!(at.starts_with(DEBIAN) && at.rsplit(':').next().unwrap().parse::<usize>().is_ok(), "FILE:LINE: {p}");
        assert!(why.starts_with("unsupported: x86_64 has no syscall") || user_missing_here(why), "{p}");
    }
    let chrony_missing = user_missing_here("uid: unknown user: chrony");
    if chrony_missing {
        assert!(err.contains(&format!("{DEBIAN}/22-ignore-chrony.rules:2: uid: unknown user: chrony\n")), "{err}");
    } else {
        assert!(out.contains(&format!("{DEBIAN}/22-ignore-chrony.rules:2: note: subj_type: no LSM")), "{out}");
    }
    assert_eq!(code, Some(if problems.is_empty() { 0 } else { 2 }), "{err}");
}

#[test]
fn a_good_file_exits_0_and_a_bad_one_2_naming_the_line() {
    let dir = TempDir::new("rules-check");
    let good = dir.file("good.rules");
    std::fs::write(&good, "# ok\n-a always,exit -F arch=b64 -S unlinkat -F auid>=1000 -F auid!=unset -k delete\n")
        .unwrap();
    let (code, out, err) = check(&[good.as_os_str()]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        out,
        format!(
            "{}:2: -a always,exit -F arch=b64 -S unlinkat -F auid>=1000 -F auid!=-1 -F key=delete\n1 rules, 0 problems\n",
            good.display()
        )
    );
    let bad = dir.file("bad.rules");
    std::fs::write(&bad, "-w /etc/passwd -p wa -k identity\n-a always,exit -F arch=b64 -S open -F colour=blue\n-k\n")
        .unwrap();
    let (code, _, err) = check(&[bad.as_os_str()]);
    assert_eq!(code, Some(2));
    assert_eq!(
        err,
        format!("{0}:2: unknown field \"colour\"\n{0}:3: -k needs an argument\n", bad.display()),
        "every problem, each with FILE:LINE"
    );
}
