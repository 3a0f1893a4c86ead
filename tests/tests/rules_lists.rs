//! `trace --rules` with audit's other filter lists and label fields, on real calls: the task
//! list (`-a never,task -F uid=N` drops that uid's calls, `-a always,task` records them all), the filesystem list (`-a
//! never,filesystem -F fstype=tracefs` hides names on tracefs from a watch) and LSM label
//! fields (no labelling LSM here: a `subj_type=` rule loads and never matches).
// Every test crate gets the whole dev-dependency list; each uses part of it.
#![allow(unused_crate_dependencies)]

use std::ffi::OsString;

use serde_json::Value;
use tracer_tests::*;

const W: &str = env!("CARGO_BIN_EXE_workload");

fn traced(dir: &TempDir, rules: &str, ops: &[String]) -> Traced {
    let file = dir.file("test.rules");
    std::fs::write(&file, rules).unwrap();
    let ops: Vec<&[u8]> = ops.iter().map(|s| s.as_bytes()).collect();
    let cmd: Vec<OsString> = workload_cmd(W, &ops);
    let t = trace_json(&["--rules", file.to_str().unwrap()], &cmd);
    assert!(t.output.status.success(), "tracer failed: {}", t.stderr());
    assert_eq!(t.lost(), 0);
    t
}

fn key(ev: &Value) -> &str {
    ev["key"].as_str().unwrap_or_default()
}

#[test]
fn task_never_drops_every_call_of_that_uid() {
    const A: u32 = 7411;
    let dir = TempDir::new("rules-task");
    let f = dir.file("f");
    std::fs::write(&f, "x").unwrap();
    std::os::unix::fs::chown(&f, Some(A), Some(A)).unwrap();
    let f = f.display();
    let exit = "-a always,exit -F arch=b64 -S chmod -k chm\n-w /etc/hostname -p r -k host\n";
    // Root's calls, then the same as uid A.
    let ops = [
        format!("call:90,s={f},420"),
        "call:2,s=/etc/hostname,0".into(),
        "--ids".into(),
        format!("{A}:{A}"),
        format!("call:90,s={f},384"),
        "call:2,s=/etc/hostname,0".into(),
    ];
    let all = traced(&dir, exit, &ops);
    let uids: Vec<(&str, u64)> = all.events.iter().map(|e| (key(e), e["uid"].as_u64().unwrap())).collect();
    assert_eq!(uids, [("chm", 0), ("host", 0), ("chm", u64::from(A)), ("host", u64::from(A))], "{:?}", all.events);
    // The task rule comes after the exit rules and still wins: the task is not audited.
    let t = traced(&dir, &format!("{exit}-a never,task -F uid={A}\n"), &ops);
    let uids: Vec<(&str, u64)> = t.events.iter().map(|e| (key(e), e["uid"].as_u64().unwrap())).collect();
    assert_eq!(uids, [("chm", 0), ("host", 0)], "{:?}", t.events);
}

#[test]
fn task_always_records_every_call_of_that_uid_over_a_never_exit_rule() {
    const A: u32 = 7413;
    let dir = TempDir::new("rules-task-always");
    let f = dir.file("f");
    std::fs::write(&f, "x").unwrap();
    let f = f.display();
    let ops = [format!("call:90,s={f},420"), "--ids".into(), format!("{A}:{A}"), format!("call:90,s={f},384")];
    let t = traced(&dir, &format!("-a never,exit -S all\n-a always,task -F uid={A}\n"), &ops);
    assert!(t.events.iter().all(|e| e["uid"] == A), "only uid {A}'s calls: {:?}", t.events);
    let others = t.events.iter().filter(|e| e["syscall"] != 90).count();
    assert!(others > 0, "every call of the task, not only the chmod: {:?}", t.events);
    let chmods: Vec<&Value> = t.events.iter().filter(|e| e["syscall"] == 90).collect();
    assert_eq!(chmods.len(), 1, "{:?}", t.events);
    assert_eq!(chmods[0]["paths"][0], f.to_string());
    assert_eq!(key(chmods[0]), "", "task rules have no key");
}

#[test]
fn filesystem_never_hides_tracefs_names_from_a_watch() {
    let dir = TempDir::new("rules-fs");
    let mine = dir.file("mine");
    std::fs::write(&mine, "x").unwrap();
    let clock = "/sys/kernel/tracing/trace_clock";
    assert!(std::path::Path::new(clock).exists(), "tracefs mounted at /sys/kernel/tracing");
    // A chmod to the mode it has (no change to the machine's tracefs) selected by a rule
    // without names: the call is still recorded, its tracefs name is not.
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(clock).unwrap().permissions()) & 0o7777;
    let watches = format!(
        "-w {clock} -p r -k tr\n-w {} -p r -k mine\n-a always,exit -F arch=b64 -S chmod -k chm\n",
        mine.display()
    );
    let ops =
        [format!("call:2,s={clock},0"), format!("call:2,s={},0", mine.display()), format!("call:90,s={clock},{mode}")];
    let seen = traced(&dir, &watches, &ops);
    let keys: Vec<&str> = seen.events.iter().map(key).collect();
    assert_eq!(keys, ["tr", "mine", "chm"], "{:?}", seen.events);
    assert_eq!(seen.events[2]["paths"][0], clock, "{:?}", seen.events[2]);
    let t = traced(&dir, &format!("-a never,filesystem -F fstype=tracefs\n{watches}"), &ops);
    let keys: Vec<&str> = t.events.iter().map(key).collect();
    assert_eq!(keys, ["mine", "chm"], "the tracefs name is not collected: {:?}", t.events);
    assert!(t.events[1]["paths"].as_array().is_none_or(Vec::is_empty), "no PATH item: {:?}", t.events[1]);
    // debugfs listed instead: tracefs names are seen again.
    let t = traced(&dir, &format!("-a never,filesystem -F fstype=debugfs\n{watches}"), &ops);
    assert_eq!(t.events.iter().map(key).collect::<Vec<_>>(), ["tr", "mine", "chm"], "{:?}", t.events);
}

#[test]
fn a_label_rule_loads_and_never_matches_without_a_labelling_lsm() {
    let lsm = std::fs::read_to_string("/sys/kernel/security/lsm").unwrap();
    assert!(!["selinux", "apparmor", "smack"].iter().any(|l| lsm.split(',').any(|a| a.trim() == *l)), "{lsm}");
    let dir = TempDir::new("rules-lsm");
    let f = dir.file("f");
    std::fs::write(&f, "x").unwrap();
    let f = f.display();
    let rules = "-a always,exit -F arch=b64 -S chmod -F subj_type=unconfined_t -k label\n\
                 -a always,exit -F arch=b64 -S chmod -F subj_type!=unconfined_t -k notlabel\n\
                 -a always,exit -F arch=b64 -S chmod -k plain\n";
    let t = traced(&dir, rules, &[format!("call:90,s={f},420")]);
    let keys: Vec<&str> = t.events.iter().map(key).collect();
    assert_eq!(keys, ["plain"], "{:?}", t.events);
    assert!(t.stderr().contains("subj_type: no LSM here labels tasks or files"), "{}", t.stderr());
}
