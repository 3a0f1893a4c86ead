//! Bad rule files: each error names FILE:LINE, and `load` returns nothing half-parsed.

use libc as _;
use thiserror as _;
use tracer_common as _;

use std::path::{Path, PathBuf};

use tracer_rules::{RULES_MAX, RulesError};

struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("tracer-rules-bad-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&d).expect("temp dir");
        Dir(d)
    }

    fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, bytes).expect("write");
        p
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `load` fails at `path:line` with a message containing `what`; `check` reports the same.
fn refused(path: &Path, line: usize, what: &str) {
    let err = tracer_rules::load(&[path.to_path_buf()]).expect_err("must be refused");
    let text = err.to_string();
    let RulesError::Rule { at, msg } = &err else { panic!("not a line error: {text}") };
    assert_eq!((at.file.as_path(), at.line), (path, line), "{text}");
    assert!(msg.contains(what), "{text:?} should say {what:?}");
    assert!(text.starts_with(&format!("{}:{line}: ", path.display())), "{text}");
    let check = tracer_rules::check(&[path.to_path_buf()]);
    assert!(check.problems.iter().any(|(a, m)| a.line == line && m.contains(what)), "{:?}", check.problems);
}

const GOOD: &str = "-w /etc/passwd -p wa -k identity\n";

#[test]
fn each_bad_line_names_its_file_and_line() {
    let d = Dir::new("lines");
    let cases: &[(&str, &str)] = &[
        ("-a always,exit -F arch=b64 -S open -F colour=blue", "unknown field \"colour\""),
        ("-a always,exit -F arch=b64 -S open -F auid~1000", "no operator"),
        ("-a always,exit -F arch=b64 -S open -F perm!=w", "perm takes only ="),
        ("-a always,exit -F arch=b64 -S open -F uid&1", "bit operators"),
        ("-a always,exit -F arch=b64 -S execve -C uid<euid", "takes only = or !="),
        ("-a always,exit -F arch=b64 -S execve -C uid!=gid", "not a comparison audit has"),
        ("-w /etc/shadow -p wa -k", "-k needs an argument"),
        ("-a always,exit -F arch=b64 -S nosuchcall", "unknown syscall \"nosuchcall\""),
        ("-a always,exit -F arch=b32 -S open -F exit=-ENOTANERRNO", "unknown errno name"),
        ("-a always,exit -F arch=b64 -S open -F auid>=nosuchuser", "unknown user"),
        ("-a always,exit -F arch=b64 -S open -F a0=0x1ffffffff", "32-bit"),
        ("-a always,exit -F arch=b64 -S open -F euid=-1", "not a valid id"),
        ("-a sometimes,exit -S open", "ACTION,LIST"),
        ("-a always,exit -S open -F arch=b64", "must come before -S"),
        ("-w etc/passwd", "must start with '/'"),
        ("-a always,exit -F path=/etc/ -F perm=w", "may not end with '/'"),
        ("-a always,exit -F arch=b64 -S stime", "x86_64 has no syscall stime"),
        ("-a always,user -F uid=0", "unsupported: the user list"),
        ("-a always,exit -F arch=b64 -S open -F subj_type<sshd_t", "subj_type takes only = or !="),
        ("-a never,task -S open", "syscall auditing being added to task list"),
        ("-a never,task -F path=/etc/passwd", "exit list only"),
        ("-a always,task -F uid=0 -k t", "-k needs a watch or syscall"),
        ("-a never,filesystem -F uid=0", "only fstype and key"),
        ("-a never,filesystem -S open", "takes no -S"),
        ("-a never,filesystem -F fstype=nosuchfs", "unknown file system type"),
        ("-a always,exit -F arch=b64 -S open -F fstype=tracefs", "filesystem list only"),
        ("-e 3", "-e takes 0, 1 or 2"),
        ("-F uid=0", "must be given before -F"),
        ("stray words", "stray argument"),
    ];
    for (i, (line, what)) in cases.iter().enumerate() {
        // The bad line is the third, after a comment and a good rule.
        let p = d.file(&format!("{i}.rules"), format!("# case {i}\n{GOOD}{line}\n{GOOD}").as_bytes());
        refused(&p, 3, what);
    }
}

#[test]
fn keys_longer_than_audits_256_bytes() {
    let d = Dir::new("keys");
    let long = "k".repeat(257);
    refused(&d.file("one.rules", format!("-w /etc/passwd -k {long}\n").as_bytes()), 1, "256 bytes");
    // Several keys count together, with their separators: 128 + 1 + 128 > 256.
    let half = "k".repeat(128);
    refused(&d.file("two.rules", format!("-w /etc/passwd -k {half} -F key={half}\n").as_bytes()), 1, "256 bytes");
    let exact = "k".repeat(256);
    let set = tracer_rules::load(&[d.file("ok.rules", format!("-w /etc/passwd -k {exact}\n").as_bytes())]).unwrap();
    assert_eq!(set.rules[0].keys, [exact]);
}

#[test]
fn ten_thousand_rules_name_the_first_over_the_limit() {
    let d = Dir::new("many");
    let mut text = String::from("# many\n");
    for i in 0..10_000 {
        text.push_str(&format!("-a always,exit -F arch=b64 -S open -F uid={i} -k k{i}\n"));
    }
    let p = d.file("many.rules", text.as_bytes());
    refused(&p, RULES_MAX + 2, &format!("more than {RULES_MAX} rules"));
    let check = tracer_rules::check(&[p]);
    assert_eq!(check.problems.len(), 1, "reported once: {:?}", &check.problems[..2.min(check.problems.len())]);
    assert_eq!(check.set.rules.len(), RULES_MAX);
}

#[test]
fn a_megabyte_line_is_refused_and_the_next_lines_still_read() {
    let d = Dir::new("long");
    let mut text = format!("{GOOD}-w /etc/passwd -k ");
    text.push_str(&"x".repeat(1 << 20));
    text.push('\n');
    text.push_str("-a always,exit -F nosuchfield=1\n");
    let p = d.file("long.rules", text.as_bytes());
    refused(&p, 2, "line longer than 6144 bytes");
    let check = tracer_rules::check(&[p]);
    let lines: Vec<usize> = check.problems.iter().map(|(a, _)| a.line).collect();
    assert_eq!(lines, [2, 3], "{:?}", check.problems);
    assert_eq!(check.set.rules.len(), 1);
}

#[test]
fn non_utf8_and_unreadable_files() {
    let d = Dir::new("bytes");
    let p = d.file("latin1.rules", b"-w /etc/passwd -p wa -k caf\xe9\n");
    refused(&p, 1, "not UTF-8");
    let missing = d.0.join("missing.rules");
    let err = tracer_rules::load(std::slice::from_ref(&missing)).expect_err("missing file");
    assert!(matches!(&err, RulesError::Io { path, .. } if *path == missing), "{err}");
    assert!(err.to_string().starts_with(&missing.display().to_string()), "{err}");
    let err = tracer_rules::load(&[PathBuf::from("/dev/null")]).expect_err("not a regular file");
    assert!(err.to_string().contains("not a regular file"), "{err}");
    let check = tracer_rules::check(&[missing]);
    assert_eq!(check.problems.len(), 1);
    assert_eq!(check.problems[0].0.to_string(), d.0.join("missing.rules").display().to_string());
}

#[test]
fn a_directory_loads_its_rules_files_in_augenrules_order() {
    let d = Dir::new("dir");
    d.file("10-a.rules", b"-w /etc/passwd -k ten\n");
    d.file("9-b.rules", b"-w /etc/passwd -k nine\n");
    d.file("README", b"not rules\n");
    // augenrules moves -D to the top: a later file's -D deletes nothing of the directory.
    d.file("11-base.rules", b"-D\n-w /etc/group -k eleven\n");
    let set = tracer_rules::load(std::slice::from_ref(&d.0)).unwrap();
    let keys: Vec<&str> = set.rules.iter().map(|r| r.keys[0].as_str()).collect();
    assert_eq!(keys, ["nine", "ten", "eleven"]);
    assert!(
        set.notes.iter().any(|n| n.text.starts_with("-D: augenrules puts it before every rule")),
        "{:?}",
        set.notes
    );
    // A bad line in the second file: the whole load is refused.
    d.file("20-bad.rules", b"-w /etc/passwd -k\n");
    assert!(tracer_rules::load(std::slice::from_ref(&d.0)).is_err());
}

#[test]
fn more_kernel_conditions_than_the_tables_hold() {
    let d = Dir::new("fields");
    let fields: String = (0..17).map(|i| format!(" -F pid!={}", i + 2)).collect();
    let p = d.file("f.rules", format!("{GOOD}-a always,exit -F arch=b64 -S open{fields}\n{GOOD}").as_bytes());
    // auditctl takes it (up to 63 fields); tracer's kernel tables hold 16 conditions a rule.
    let set = tracer_rules::load(std::slice::from_ref(&p)).unwrap();
    let err = tracer_rules::compile(&set).expect_err("17 kernel conditions");
    assert!(err.to_string().starts_with(&format!("{}:2: more than 16 kernel conditions", p.display())), "{err}");
    let check = tracer_rules::check(&[p]);
    assert_eq!(check.problems.len(), 1, "{:?}", check.problems);
    assert_eq!(check.problems[0].0.line, 2);
}

#[test]
fn more_calls_than_the_kernel_table_holds() {
    let d = Dir::new("nrs");
    let list: Vec<String> = (0..600).map(|n| n.to_string()).collect();
    // Arch-less: 600 numbers under both ABIs, 1200 entries.
    let p = d.file("n.rules", format!("{GOOD}-a always,exit -S {}\n", list.join(",")).as_bytes());
    let set = tracer_rules::load(std::slice::from_ref(&p)).unwrap();
    let err = tracer_rules::compile(&set).expect_err("1200 entries");
    assert!(err.to_string().contains("more calls than tracer's kernel table holds"), "{err}");
    assert!(err.to_string().starts_with(&format!("{}:2: ", p.display())), "{err}");
}
