//! The task list, the filesystem list and LSM label fields, as the kernel's audit takes them.

use libc as _;
use std::path::PathBuf;
use thiserror as _;
use tracer_common as _;

use tracer_rules::{Arch, CallFacts, Check, Compiled, Facts, Ids, Task, syscalls};

/// A directory of its own for NAME: tests run in parallel, so each test's names differ.
fn file(name: &str, text: &str) -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("tracer-rules-lists-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(format!("{name}.rules"));
    std::fs::write(&path, text).expect("write rules");
    (dir, path)
}

fn check(name: &str, text: &str) -> Check {
    let (dir, path) = file(name, text);
    let c = tracer_rules::check(&[path]);
    std::fs::remove_dir_all(&dir).expect("clean");
    c
}

fn rules(name: &str, text: &str) -> Compiled {
    let c = check(name, text);
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    tracer_rules::compile(&c.set).unwrap_or_else(|e| panic!("{e}"))
}

fn task(uid: u32, auid: u32) -> Task {
    let ids = Ids { auid, uid, euid: uid, suid: uid, fsuid: uid, gid: uid, egid: uid, sgid: uid, fsgid: uid };
    Task { ids, pid: 4242, ppid: 1, sessionid: 7 }
}

#[test]
fn task_never_silences_a_task_and_first_match_decides() {
    let c =
        rules("task", "-a never,task -F uid=1001\n-a never,task -F pid=99 -F ppid=1\n-a never,task -F sessionid=8\n");
    assert!(!c.task_audited(&task(1001, 1001)));
    assert!(c.task_audited(&task(1000, 1000)), "another uid is audited");
    assert!(!c.task_audited(&Task { pid: 99, ..task(0, u32::MAX) }), "pid and ppid are the task's");
    assert!(c.task_audited(&Task { pid: 99, ppid: 2, ..task(0, u32::MAX) }), "every field must hold");
    assert!(!c.task_audited(&Task { sessionid: 8, ..task(0, 0) }), "the session");
    // Task rules are not exit rules: they select no call in the kernel.
    assert!(c.nrs.is_empty(), "{:?}", c.nrs);
    // Without any field, the task list silences every task (Debian's 10-no-audit.rules).
    assert!(!rules("all", "-a never,task\n").task_audited(&task(1000, 1000)));
}

#[test]
fn task_rules_know_nothing_of_a_call() {
    // At task creation there is no call: arch, exit, success, a0..a3 and object fields never
    // hold, so these rules silence nobody.
    for (i, cond) in
        ["-F arch=b64", "-F exit=0", "-F success=1", "-F a0=0", "-F obj_uid=0", "-F subj_type=unconfined_t"]
            .iter()
            .enumerate()
    {
        let c = rules(&format!("call{i}"), &format!("-a never,task {cond}\n"));
        assert!(c.task_audited(&task(0, 0)), "{cond}");
    }
    // Ids the task has: auid unset, -C between its own ids.
    let c = rules("ids", "-a never,task -F loginuid_set=0 -C uid!=euid\n");
    assert!(c.task_audited(&task(0, u32::MAX)), "uid == euid");
    let mut t = task(0, u32::MAX);
    t.ids.euid = 5;
    assert!(!c.task_audited(&t));
    t.ids.auid = 1000;
    assert!(c.task_audited(&t), "loginuid set");
}

#[test]
fn filesystem_never_hides_names_on_those_file_systems() {
    let c = rules("fs", "-a never,filesystem -F fstype=tracefs\n-a never,filesystem -F fstype=0x64626720 -k dbg\n");
    assert!(c.has_fs_rules());
    assert!(c.hides_fs(0x7472_6163), "tracefs by name");
    assert!(c.hides_fs(0x6462_6720), "debugfs by number");
    assert!(!c.hides_fs(0xef53), "ext4 is not listed");
    assert!(c.nrs.is_empty());
    // An always rule on the filesystem list has no effect, as in the kernel.
    assert!(!rules("always", "-a always,filesystem -F fstype=tracefs\n").has_fs_rules());
    let ne = rules("ne", "-a never,filesystem -F fstype!=tracefs\n");
    assert!(!ne.hides_fs(0x7472_6163) && ne.hides_fs(0xef53));
}

#[test]
fn label_fields_never_hold_without_a_labelling_lsm() {
    let lsm = std::fs::read_to_string("/sys/kernel/security/lsm").expect("securityfs");
    assert!(
        !lsm.split(',').any(|l| ["selinux", "apparmor", "smack"].contains(&l.trim())),
        "this test is for a machine without labels: {lsm}"
    );
    let text = "-a always,exit -F arch=b64 -S open -F subj_type=unconfined_t -k label\n\
                -a always,exit -F arch=b64 -S open -F obj_user!=system_u -k label2\n\
                -a always,exit -F arch=b64 -S open -k plain\n";
    let ch = check("lsm", text);
    assert!(ch.problems.is_empty(), "{:?}", ch.problems);
    assert_eq!(ch.set.rules[0].describe(), "-a always,exit -F arch=b64 -S open -F subj_type=unconfined_t -F key=label");
    let notes: Vec<&str> = ch.set.notes.iter().map(|n| n.text.as_str()).collect();
    assert!(
        notes.iter().any(|n| n.starts_with("subj_type: no LSM here labels") && n.contains("never matches")),
        "{notes:?}"
    );
    let c = tracer_rules::compile(&ch.set).unwrap();
    let open = syscalls::number(Arch::B64, "open").unwrap();
    let cand = c.candidates(&CallFacts { nr: open, ..CallFacts::default() });
    let picked: Vec<usize> = (0..3).filter(|&i| cand.words[0] >> i & 1 == 1).collect();
    assert_eq!(picked, [2], "neither = nor != holds on a label no task has");
}

#[test]
fn lists_print_as_auditctl_lists_them() {
    let ch = check("describe", "-a task,never -F uid=1001\n-a never,filesystem -F fstype=debugfs -k d\n");
    let d: Vec<String> = ch.set.rules.iter().map(tracer_rules::Rule::describe).collect();
    assert_eq!(d, ["-a never,task -F uid=1001", "-a never,filesystem -F fstype=debugfs -F key=d"]);
}

#[test]
fn task_always_records_every_call_of_the_task_over_any_exit_rule() {
    let c = rules("task-always", "-a never,exit -S all\n-w /etc/shadow -p r -k shadow\n-a always,task -F uid=1001\n");
    let chmod = syscalls::number(Arch::B64, "chmod").unwrap();
    let decide = |uid: u32| {
        let t = task(uid, uid);
        let call = CallFacts { nr: chmod, ids: t.ids, ..CallFacts::default() };
        let facts = Facts { arch: Arch::B64, nr: chmod, ret: 0, ids: t.ids, names: &[] };
        (c.task_audited(&t), c.decide(&c.candidates(&call), &facts).map(|i| c.keys(i).to_vec()))
    };
    assert_eq!(decide(1001), (true, Some(Vec::new())), "recorded, without a key (auditctl gives task rules none)");
    assert_eq!(decide(1000), (true, None), "the never exit rule for everyone else");
    // A call-time fact in a task rule never holds: no call is selected by it.
    let never = rules("always-exit", "-a always,task -F exit=0\n");
    assert!(never.nrs.is_empty());
}
