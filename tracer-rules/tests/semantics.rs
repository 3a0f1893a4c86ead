//! The decision on compiled rules (kernel part `candidates`, user part `decide`) on cases
//! written by hand: first match, never before always, keys, perm classes, b32 numbers.

use libc as _;
use std::path::PathBuf;
use thiserror as _;
use tracer_common as _;

use tracer_rules::{Arch, CallFacts, Compiled, Facts, Ids, Name, syscalls};

fn rules(name: &str, text: &str) -> Compiled {
    let dir = std::env::temp_dir().join(format!("tracer-rules-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path: PathBuf = dir.join("r.rules");
    std::fs::write(&path, text).expect("write rules");
    let set = tracer_rules::load(&[path]).unwrap_or_else(|e| panic!("{e}"));
    std::fs::remove_dir_all(&dir).expect("clean");
    tracer_rules::compile(&set).unwrap_or_else(|e| panic!("{e}"))
}

fn user(auid: u32) -> Ids {
    Ids { auid, uid: auid, euid: auid, suid: auid, fsuid: auid, gid: auid, egid: auid, sgid: auid, fsgid: auid }
}

/// The keys the event gets (None: no event).
fn run(c: &Compiled, call: &CallFacts, names: &[Name<'_>]) -> Option<Vec<String>> {
    let cand = c.candidates(call);
    let facts = Facts { arch: call.arch(), nr: call.nr, ret: call.ret, ids: call.ids, names };
    c.decide(&cand, &facts).map(|i| c.keys(i).to_vec())
}

fn nr(arch: Arch, name: &str) -> u32 {
    syscalls::number(arch, name).unwrap_or_else(|| panic!("{name}"))
}

#[test]
fn never_before_always_suppresses_and_first_match_keys() {
    let c = rules(
        "never",
        "-a never,exit -F arch=b64 -S unlink -F auid=1001\n\
         -a always,exit -F arch=b64 -S unlink,rename -F auid>=1000 -F auid!=unset -k delete -k second\n\
         -a always,exit -F arch=b64 -S unlink -k later\n",
    );
    let call = |auid| CallFacts { nr: nr(Arch::B64, "unlink"), ids: user(auid), ..CallFacts::default() };
    assert_eq!(run(&c, &call(1001), &[]), None, "never rule first");
    assert_eq!(run(&c, &call(1002), &[]), Some(vec!["delete".into(), "second".into()]));
    assert_eq!(run(&c, &call(u32::MAX), &[]), Some(vec!["later".into()]), "auid unset");
    // A b32 call with the x86_64 number of unlink is another call: no rule.
    assert_eq!(run(&c, &CallFacts { compat: true, ..call(1002) }, &[]), None);
}

#[test]
fn watch_perm_classes() {
    let c = rules("watch", "-w /etc/shadow -p wa -k identity\n");
    let shadow = [Name { path: b"/etc/shadow", owner: Some((0, 42)) }];
    let other = [Name { path: b"/etc/shadowx", owner: Some((0, 0)) }];
    let b64 = |name, args: [u64; 4]| CallFacts { nr: nr(Arch::B64, name), args, ..CallFacts::default() };
    let key = Some(vec!["identity".to_string()]);
    assert_eq!(run(&c, &b64("openat", [0, 0, 1, 0]), &shadow), key, "O_WRONLY");
    assert_eq!(run(&c, &b64("openat", [0, 0, 0, 0]), &shadow), None, "O_RDONLY is a read");
    assert_eq!(run(&c, &b64("open", [0, 2, 0, 0]), &shadow), key, "O_RDWR");
    assert_eq!(run(&c, &b64("openat", [0, 0, 1, 0]), &other), None);
    for call in ["unlink", "rename", "truncate", "chmod", "chown", "setxattr", "fchmodat", "renameat", "renameat2"] {
        assert_eq!(run(&c, &b64(call, [0; 4]), &shadow), key, "{call}");
    }
    // Not in audit's write or attribute classes (the kernel's audit_match_perm, 6.18).
    for call in ["getxattr", "readlink", "execve", "stat", "utimensat"] {
        assert_eq!(run(&c, &b64(call, [0; 4]), &shadow), None, "{call}");
    }
    // i386: chown32 and socketcall(bind) are in the write/attr classes.
    let b32 = |name, args: [u64; 4]| CallFacts { compat: true, nr: nr(Arch::B32, name), args, ..CallFacts::default() };
    assert_eq!(run(&c, &b32("chown32", [0; 4]), &shadow), key);
    assert_eq!(run(&c, &b32("socketcall", [2, 0, 0, 0]), &shadow), key, "bind");
    assert_eq!(run(&c, &b32("socketcall", [3, 0, 0, 0]), &shadow), None, "connect");
}

#[test]
fn exit_errno_and_b32_numbers() {
    let c = rules(
        "exit",
        "-a always,exit -F arch=b32 -S open -F exit=-EACCES -k b32-open\n\
         -a always,exit -F arch=b64 -S open -F exit=-EACCES -F success=0 -k b64-open\n",
    );
    let open32 = nr(Arch::B32, "open");
    assert_eq!(open32, 5);
    let eacces = CallFacts { compat: true, nr: open32, ret: -13, ..CallFacts::default() };
    assert_eq!(run(&c, &eacces, &[]), Some(vec!["b32-open".into()]));
    assert_eq!(run(&c, &CallFacts { ret: -1, ..eacces }, &[]), None);
    let b64 = CallFacts { nr: nr(Arch::B64, "open"), ret: -13, ..CallFacts::default() };
    assert_eq!(run(&c, &b64, &[]), Some(vec!["b64-open".into()]));
}

#[test]
fn compare_and_objects() {
    let c = rules(
        "cmp",
        "-a always,exit -F arch=b64 -S execve -C uid!=euid -F euid=0 -k setuid\n\
         -a always,exit -F dir=/home -F uid=0 -F auid>=1000 -F auid!=unset -C auid!=obj_uid -k power-abuse\n",
    );
    let exec = CallFacts {
        nr: nr(Arch::B64, "execve"),
        ids: Ids { uid: 1000, euid: 0, ..user(1000) },
        ..CallFacts::default()
    };
    assert_eq!(run(&c, &exec, &[]), Some(vec!["setuid".into()]));
    assert_eq!(run(&c, &CallFacts { ids: user(0), ..exec }, &[]), None);
    let root = Ids { uid: 0, euid: 0, ..user(1000) };
    let open = CallFacts { nr: nr(Arch::B64, "openat"), ids: root, ..CallFacts::default() };
    let theirs = [Name { path: b"/home/bob/x", owner: Some((1001, 1001)) }];
    let mine = [Name { path: b"/home/alice/x", owner: Some((1000, 1000)) }];
    let elsewhere = [Name { path: b"/homework/x", owner: Some((1001, 1001)) }];
    assert_eq!(run(&c, &open, &theirs), Some(vec!["power-abuse".into()]));
    assert_eq!(run(&c, &open, &mine), None);
    assert_eq!(run(&c, &open, &elsewhere), None);
}

#[test]
fn control_lines_prepend_and_deletes() {
    let dir = std::env::temp_dir().join(format!("tracer-rules-ctl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("ctl.rules");
    std::fs::write(
        &p,
        "-a always,exit -F arch=b64 -S ptrace -k gone\n\
         -D\n-b 8192\n-f 1\n-e 2\n-r 100\n--backlog_wait_time 60000\n--loginuid-immutable\n--reset-lost\n-i\n-c\n\
         -a always,exit -F arch=b64 -S ptrace -k second\n\
         -A always,exit -F arch=b64 -S ptrace -k first\n\
         -w /etc/passwd -p wa -k identity\n\
         -a always,exit -S unlink -k no-arch\n\
         -W /etc/passwd -p wa -k identity\n\
         -d always,exit -F arch=b64 -S ptrace -k second\n",
    )
    .unwrap();
    let set = tracer_rules::load(std::slice::from_ref(&p)).unwrap_or_else(|e| panic!("{e}"));
    std::fs::remove_dir_all(&dir).unwrap();
    let keys: Vec<&str> = set.rules.iter().map(|r| r.keys[0].as_str()).collect();
    assert_eq!(keys, ["first", "no-arch"], "-D cleared, -A prepended, -W and -d deleted");
    let notes: Vec<(usize, &str)> = set.notes.iter().map(|n| (n.at.line, n.text.as_str())).collect();
    for (line, start) in [
        (2, "-D: deletes every rule loaded before it (1)"),
        (3, "-b 8192: "),
        (4, "-f 1: "),
        (5, "-e 2: locks"),
        (6, "-r 100: "),
        (7, "--backlog_wait_time 60000: "),
        (8, "--loginuid-immutable: "),
        (9, "--reset-lost: "),
        (10, "-i: "),
        (11, "-c: "),
        (15, "no arch: the x86_64 numbers of unlink also match the i386 calls"),
        (16, "deletes the rule of "),
        (17, "deletes the rule of "),
    ] {
        assert!(notes.iter().any(|(l, t)| *l == line && t.starts_with(start)), "line {line}: {start:?} in {notes:?}");
    }
}

#[test]
fn exe_is_the_running_executables_inode() {
    let c = rules("exe", "-a always,exit -F arch=b64 -S setuid -F a0=0 -F exe=/usr/bin/su -k su\n");
    let (ino, dev) = {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata("/usr/bin/su").expect("/usr/bin/su");
        (m.ino(), ((libc::major(m.dev())) << 20) | libc::minor(m.dev()))
    };
    let call = CallFacts { nr: nr(Arch::B64, "setuid"), exe: Some((ino, dev)), ..CallFacts::default() };
    assert_eq!(run(&c, &call, &[]), Some(vec!["su".into()]));
    assert_eq!(run(&c, &CallFacts { exe: Some((ino + 1, dev)), ..call }, &[]), None);
    assert_eq!(run(&c, &CallFacts { exe: None, ..call }, &[]), None);
}

#[test]
fn name_specs_of_both_abis() {
    use tracer_common::rules::{NAME_FD, NAME_NONE, NAME_PATH, NAME_PATH_AT, NameSpec};
    let spec = |kind, arg, dirfd_arg| NameSpec { kind, arg, dirfd_arg, _pad: 0 };
    let none = spec(NAME_NONE, 0, 0);
    for arch in [Arch::B64, Arch::B32] {
        let names = |n| syscalls::names(arch, nr(arch, n));
        assert_eq!(names("renameat"), [spec(NAME_PATH_AT, 1, 0), spec(NAME_PATH_AT, 3, 2)]);
        assert_eq!(names("rename"), [spec(NAME_PATH, 0, 0), spec(NAME_PATH, 1, 0)]);
        assert_eq!(names("symlinkat"), [spec(NAME_PATH_AT, 2, 1), none], "the new link");
        assert_eq!(names("mount"), [spec(NAME_PATH, 1, 0), none], "the mount point");
        assert_eq!(names("finit_module"), [spec(NAME_FD, 0, 0), none]);
        assert_eq!(names("fchmodat"), [spec(NAME_PATH_AT, 1, 0), none]);
        assert_eq!(names("fsetxattr"), [spec(NAME_FD, 0, 0), none]);
        assert_eq!(names("ftruncate"), [none; 2], "the kernel records no PATH item for it");
        assert_eq!(names("openat"), [spec(NAME_PATH_AT, 1, 0), none]);
        assert_eq!(names("ptrace"), [none; 2]);
    }
    assert_eq!(syscalls::names(Arch::B32, nr(Arch::B32, "chown32")), [spec(NAME_PATH, 0, 0), none]);
    assert_eq!(syscalls::names(Arch::B32, nr(Arch::B32, "fchown32")), [spec(NAME_FD, 0, 0), none]);
    // The tables: audit's names both ways.
    assert_eq!(syscalls::name(Arch::B64, 17), Some("pread"));
    assert_eq!(syscalls::number(Arch::B32, "stime"), Some(25));
    assert_eq!(syscalls::number(Arch::B64, "stime"), None);
    assert_eq!(syscalls::number(Arch::B64, "0x3b"), Some(59));
}

#[test]
fn values_as_auditctl_takes_them() {
    let dir = std::env::temp_dir().join(format!("tracer-rules-val-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("v.rules");
    std::fs::write(
        &p,
        "-a always,exit -F arch=b64 -S 59,openat -F uid=root -F gid=root -F auid=unset -F euid=-2 -F exit=EPERM \
         -F a1=0x1F -F a2&0100 -F sessionid=unset -F success=1 -F obj_uid>=1000 -F key=a -k b\n",
    )
    .unwrap();
    let set = tracer_rules::load(std::slice::from_ref(&p)).unwrap_or_else(|e| panic!("{e}"));
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(
        set.rules[0].describe(),
        "-a always,exit -F arch=b64 -S execve,openat -F uid=0 -F gid=0 -F auid=-1 -F euid=-2 -F exit=1 -F a1=0x1F \
         -F a2&0x40 -F sessionid=-1 -F success=1 -F obj_uid>=1000 -F key=a -F key=b"
    );
}

/// What the running kernel's audit did with these rule orders (checked with auditctl on
/// 6.18): the first rule in order wins, watches included.
#[test]
fn watches_take_their_place_in_rule_order() {
    let f = [Name { path: b"/srv/f", owner: Some((0, 0)) }];
    let call =
        CallFacts { nr: nr(Arch::B64, "openat"), ids: user(4242), args: [0, 0, 1, 0], ret: 4, ..CallFacts::default() };
    let cases = [
        ("-a never,exit -F arch=b64 -S openat -F uid=4242 -F a2&01\n-w /srv/f -p wa -k watch\n", None),
        ("-w /srv/f -p wa -k watch\n-a never,exit -F arch=b64 -S openat -F uid=4242 -F a2&01\n", Some("watch")),
        (
            "-a always,exit -F arch=b64 -S openat -F uid=4242 -F a2&01 -k exitlist\n-w /srv/f -p wa -k watch\n",
            Some("exitlist"),
        ),
        (
            "-w /srv/f -p wa -k watch\n-a always,exit -F arch=b64 -S openat -F uid=4242 -F a2&01 -k exitlist\n",
            Some("watch"),
        ),
        (
            "-a always,exit -F arch=b64 -S openat -F uid=4242 -F a2&01 -k exitlist\n-A always,exit -F path=/srv/f -F perm=wa -k prepended\n",
            Some("prepended"),
        ),
    ];
    for (i, (text, want)) in cases.iter().enumerate() {
        let c = rules(&format!("order{i}"), text);
        assert_eq!(run(&c, &call, &f), want.map(|k| vec![k.to_string()]), "{text}");
    }
    // Between watches, the first name decides (audit_filter_inodes stops at the first name).
    let c = rules("names", "-w /srv/b -p wa -k b\n-w /srv/a -p wa -k a\n");
    let two = [Name { path: b"/srv/a", owner: None }, Name { path: b"/srv/b", owner: None }];
    assert_eq!(run(&c, &call, &two), Some(vec!["a".to_string()]));
}

/// A rule on every call still gives each known call its entry with its names: the kernel
/// side finds a call's names there (a dir= rule on NR_OTHER alone never saw stat's name).
#[test]
fn rules_on_every_call_give_each_call_its_names() {
    let c = rules("all", "-a always,exit -F dir=/home -F uid=0 -C auid!=obj_uid -k power-abuse\n");
    for arch in [Arch::B64, Arch::B32] {
        for call in ["stat", "openat", "unlinkat", "renameat", "chmod"] {
            let nr = nr(arch, call);
            let e = c.nrs.iter().find(|(k, _)| k.compat == arch.compat() && k.nr == nr).map(|(_, e)| e);
            let e = e.unwrap_or_else(|| panic!("{arch:?} {call}: no entry"));
            assert_eq!(e.names, syscalls::names(arch, nr), "{arch:?} {call}");
            assert_eq!(e.rules.words[0], 1);
        }
    }
    assert!(c.nrs.len() <= tracer_common::rules::RULE_NRS_MAX as usize, "{} entries", c.nrs.len());
}

#[test]
fn owners_are_needed_only_by_rules_that_compare_them() {
    let c = rules(
        "owners",
        "-a always,exit -F arch=b64 -S chmod -F auid>=1000 -k perm\n\
         -a always,exit -F arch=b64 -S unlink -F obj_uid=0 -k rootfile\n\
         -a always,exit -F arch=b64 -S rename -C auid!=obj_uid -k other\n",
    );
    let call = |name| CallFacts { nr: nr(Arch::B64, name), ids: user(1000), ..CallFacts::default() };
    assert!(!c.needs_owners(&c.candidates(&call("chmod"))), "no owner condition: no lstat");
    assert!(c.needs_owners(&c.candidates(&call("unlink"))), "obj_uid=");
    assert!(c.needs_owners(&c.candidates(&call("rename"))), "-C auid!=obj_uid");
    assert!(!c.needs_owners(&c.candidates(&call("openat"))), "no candidate at all");
    // Where an owner is not needed, the decision does not depend on it.
    let name = |owner| [Name { path: b"/tmp/x", owner }];
    assert_eq!(run(&c, &call("chmod"), &name(None)), run(&c, &call("chmod"), &name(Some((0, 0)))));
}
