//! `trace --rules`: each kernel condition of an auditctl rule fires or not on real syscalls
//! of the traced command (auid, uid, exit, a0, perm classes), rule order (a never rule
//! before an always rule; the first matching rule's keys), 32-bit calls under `arch=b32`,
//! names relative to the cwd or a directory fd, and `dir=` matching by path component.
// Every test crate gets the whole dev-dependency list; each uses part of it.
#![allow(unused_crate_dependencies)]

use std::{
    ffi::OsString,
    path::{Path, PathBuf},
    process::Command,
};

use serde_json::Value;
use tracer_tests::*;

const W: &str = env!("CARGO_BIN_EXE_workload");

/// `tracer trace --rules FILE --format json -- CMD` with `rules` as FILE.
fn traced(dir: &TempDir, rules: &str, cmd: &[OsString]) -> Traced {
    let file = dir.file("test.rules");
    std::fs::write(&file, rules).unwrap();
    let t = trace_json(&["--rules", file.to_str().unwrap()], cmd);
    assert!(t.output.status.success(), "tracer failed: {}", t.stderr());
    assert_eq!(t.lost(), 0);
    t
}

fn cmd(ops: &[String]) -> Vec<OsString> {
    let ops: Vec<&[u8]> = ops.iter().map(|s| s.as_bytes()).collect();
    workload_cmd(W, &ops)
}

/// The keys of an event: one key is a string, several a list.
fn keys(ev: &Value) -> Vec<String> {
    match &ev["key"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().map(|k| k.as_str().unwrap().to_string()).collect(),
        _ => Vec::new(),
    }
}

fn with_key<'a>(t: &'a Traced, key: &str) -> Vec<&'a Value> {
    t.events.iter().filter(|e| keys(e).iter().any(|k| k == key)).collect()
}

fn file_owned(dir: &TempDir, name: &str, uid: u32) -> PathBuf {
    let p = dir.file(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&p, "x").unwrap();
    std::os::unix::fs::chown(&p, Some(uid), Some(uid)).unwrap();
    p
}

#[test]
fn auid_uid_and_exit_conditions() {
    const A: u32 = 7401;
    let dir = TempDir::new("rules-ids");
    let f = file_owned(&dir, "f", A);
    let f = f.display();
    let rules = format!(
        "-a always,exit -F arch=b64 -S chmod -F auid={A} -k by-auid\n\
         -a always,exit -F arch=b64 -S fchmodat -F uid={A} -k by-uid\n\
         -a always,exit -F arch=b64 -S open -F exit=-EACCES -k denied\n"
    );
    let t = traced(
        &dir,
        &rules,
        &cmd(&[
            "--loginuid".into(),
            (A + 1).to_string(),
            format!("call:90,s={f},420"),
            format!("call:268,-100,s={f},420"),
            "--".into(),
            W.into(),
            "--loginuid".into(),
            A.to_string(),
            format!("call:90,s={f},420"),
            "--ids".into(),
            format!("{A}:{A}"),
            format!("call:268,-100,s={f},420"),
            "call:2,s=/etc/shadow,0".into(),
            "call:2,s=/etc/hostname,0".into(),
        ]),
    );
    let by_auid = with_key(&t, "by-auid");
    assert_eq!(by_auid.len(), 1, "{:?}", t.events);
    assert_eq!(by_auid[0]["auid"], A);
    assert_eq!(by_auid[0]["paths"][0], f.to_string());
    let by_uid = with_key(&t, "by-uid");
    assert_eq!(by_uid.len(), 1, "{:?}", t.events);
    assert_eq!(by_uid[0]["uid"], A);
    let denied = with_key(&t, "denied");
    assert_eq!(denied.len(), 1, "{:?}", t.events);
    assert_eq!(denied[0]["event"], "open");
    assert_eq!(denied[0]["path"], "/etc/shadow");
    assert_eq!(denied[0]["error"], "EACCES");
    // With --rules, events are exactly what the rules select.
    assert_eq!(t.events.len(), 3, "{:?}", t.events);
}

#[test]
fn a0_and_a_never_rule_before_an_always_rule() {
    const A: u32 = 7402;
    let dir = TempDir::new("rules-never");
    let f = file_owned(&dir, "f", A);
    let f = f.display();
    let rules = "-a never,exit -F arch=b64 -S chmod -F a1=0600\n\
                 -a always,exit -F arch=b64 -S chmod -k chm\n\
                 -a always,exit -F arch=b64 -S clock_settime -F a0=0x0 -k clk\n";
    let ts = "b=".to_string() + &"00".repeat(16);
    let t = traced(
        &dir,
        rules,
        &cmd(&[
            "--ids".into(),
            format!("{A}:{A}"),
            format!("call:90,s={f},384"),
            format!("call:90,s={f},420"),
            format!("call:227,0,{ts}"),
            format!("call:227,1,{ts}"),
        ]),
    );
    let chm = with_key(&t, "chm");
    assert_eq!(chm.len(), 1, "{:?}", t.events);
    assert_eq!(chm[0]["args"][1], 420);
    let clk = with_key(&t, "clk");
    assert_eq!(clk.len(), 1, "{:?}", t.events);
    assert_eq!(clk[0]["args"][0], 0);
    assert_eq!(clk[0]["error"], "EPERM");
    assert_eq!(t.events.len(), 2, "{:?}", t.events);
}

#[test]
fn watch_permission_classes() {
    const A: u32 = 7403;
    let dir = TempDir::new("rules-perm");
    let f = file_owned(&dir, "f", A);
    let f = f.display();
    let rules = format!("-w {f} -p wa -k wat\n");
    let t = traced(
        &dir,
        &rules,
        &cmd(&[
            "--ids".into(),
            format!("{A}:{A}"),
            // write: yes; read: no; attribute change: yes; stat: no class.
            format!("call:2,s={f},1"),
            format!("call:2,s={f},0"),
            format!("call:90,s={f},420"),
            format!("call:4,s={f},b={}", "00".repeat(256)),
        ]),
    );
    let wat = with_key(&t, "wat");
    assert_eq!(wat.len(), 2, "{:?}", t.events);
    assert_eq!(wat[0]["event"], "open");
    assert_eq!(wat[0]["flags"], 1);
    assert_eq!(wat[1]["syscall"], 90);
    assert_eq!(t.events.len(), 2, "{:?}", t.events);
}

#[test]
fn the_first_matching_rule_gives_its_keys() {
    let dir = TempDir::new("rules-keys");
    let f = file_owned(&dir, "f", 0);
    let f = f.display();
    let rules = "-a always,exit -F arch=b64 -S chmod -F a1=0644 -k one -k two\n\
                 -a always,exit -F arch=b64 -S chmod -k three\n";
    let t = traced(&dir, rules, &cmd(&[format!("call:90,s={f},420"), format!("call:90,s={f},384")]));
    assert_eq!(t.events.len(), 2, "{:?}", t.events);
    assert_eq!(keys(&t.events[0]), ["one", "two"]);
    assert_eq!(keys(&t.events[1]), ["three"]);
}

/// Several keys in audit's encoding (joined by \x01, hex), found by the real ausearch.
#[test]
fn audit_format_keys_are_found_by_ausearch() {
    let dir = TempDir::new("rules-audit");
    let f = file_owned(&dir, "f", 0);
    let rules_file = dir.file("k.rules");
    std::fs::write(&rules_file, "-a always,exit -F arch=b64 -S chmod -k one -k two\n").unwrap();
    let out = dir.file("audit.log");
    let o = Command::new(tracer_bin())
        .args(["trace", "--format", "audit", "--rules"])
        .arg(&rules_file)
        .arg("--output")
        .arg(&out)
        .arg("--")
        .args(cmd(&[format!("call:90,s={},420", f.display())]))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let log = std::fs::read_to_string(&out).unwrap();
    let hex: String = b"one\x01two".iter().map(|c| format!("{c:02X}")).collect();
    assert!(log.contains(&format!(" key={hex}\n")), "{log}");
    for key in ["one", "two"] {
        let found = Command::new("ausearch").args(["--raw", "-if"]).arg(&out).args(["-k", key]).output().unwrap();
        let text = String::from_utf8_lossy(&found.stdout);
        assert_eq!(text.lines().filter(|l| l.starts_with("type=SYSCALL")).count(), 1, "ausearch -k {key}: {text}");
    }
}

#[test]
fn relative_names_and_dir_prefix() {
    let dir = TempDir::new("rules-dir");
    file_owned(&dir, "etc/x", 0);
    file_owned(&dir, "etcfoo/x", 0);
    let d = dir.path().display();
    let rules = format!("-a always,exit -F dir={d}/etc -F perm=wa -k pre\n");
    let t = traced(
        &dir,
        &rules,
        &cmd(&[
            format!("chdir:{d}/etc"),
            "call:90,s=x,420".into(),
            format!("chdir:{d}"),
            "call:90,s=etcfoo/x,420".into(),
            "call:90,s=etc/../etcfoo/x,420".into(),
            // A directory fd (the process's first free descriptor, 3) as the base.
            format!("call:2,s={d}/etc,0x10000"),
            "call:268,3,s=x,420".into(),
        ]),
    );
    let pre = with_key(&t, "pre");
    let paths: Vec<&str> = pre.iter().map(|e| e["paths"][0].as_str().unwrap()).collect();
    let x = format!("{d}/etc/x");
    assert_eq!(paths, [x.as_str(), x.as_str()], "{:?}", t.events);
    assert_eq!(t.events.len(), 2, "{:?}", t.events);
}

/// `tests/tests/i386/chmod.c` built as a static i386 program chmod-ing `target`.
fn build_chmod32(dir: &Path, target: &Path) -> PathBuf {
    build_i386("chmod", &dir.join("chmod32"), &[format!("-DTARGET=\"{}\"", target.display())])
}

#[test]
fn b32_rules_match_32_bit_calls_by_their_i386_numbers() {
    let dir = TempDir::new("rules-b32");
    let f = file_owned(&dir, "f", 0);
    let prog = build_chmod32(dir.path(), &f);
    let rules = "-a always,exit -F arch=b32 -S chmod -k b32\n-a always,exit -F arch=b64 -S chmod -k b64\n";
    let t =
        traced(&dir, rules, &cmd(&[format!("call:90,s={},420", f.display()), "--".into(), prog.display().to_string()]));
    let b32 = with_key(&t, "b32");
    assert_eq!(b32.len(), 1, "{:?}", t.events);
    assert_eq!(b32[0]["arch"], "b32");
    assert_eq!(b32[0]["syscall"], 15);
    assert_eq!(b32[0]["name"], "chmod");
    assert_eq!(b32[0]["paths"][0], f.display().to_string());
    let b64 = with_key(&t, "b64");
    assert_eq!(b64.len(), 1, "{:?}", t.events);
    assert_eq!(b64[0]["arch"], "b64");
    assert_eq!(t.events.len(), 2, "{:?}", t.events);
}

#[test]
fn a_bad_rule_file_is_file_and_line_exit_2() {
    let dir = TempDir::new("rules-bad");
    let file = dir.file("bad.rules");
    std::fs::write(&file, "-a always,exit -F arch=b64 -S chmod -k ok\n-a always,exit -F bogus=1\n").unwrap();
    let o =
        Command::new(tracer_bin()).args(["trace", "--rules"]).arg(&file).args(["--", "/bin/true"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&format!("{}:2:", file.display())), "{err}");
}

/// `tracer report --rules FILE --key K`: only the events of K's rules, their calls counted.
#[test]
fn report_with_rules_and_a_key() {
    const A: u32 = 7404;
    let dir = TempDir::new("rules-report");
    let f = file_owned(&dir, "f", A);
    let f = f.display();
    let rules = dir.file("r.rules");
    std::fs::write(
        &rules,
        "-a always,exit -F arch=b64 -S chmod -k k1\n-a always,exit -F arch=b64 -S open -F exit=-EACCES -k k2\n",
    )
    .unwrap();
    let session = cmd(&[
        "--loginuid".into(),
        A.to_string(),
        "--ids".into(),
        format!("{A}:{A}"),
        format!("call:90,s={f},420"),
        format!("call:90,s={f},384"),
        "call:2,s=/etc/shadow,1".into(),
    ]);
    let report = |key: Option<&str>| -> Value {
        let mut c = Command::new(tracer_bin());
        c.args(["report", "--format", "json", "--auid", &A.to_string(), "--rules"]).arg(&rules);
        if let Some(k) = key {
            c.args(["--key", k]);
        }
        // --output appends: one file per report.
        let out = dir.file(&format!("report-{}.json", key.unwrap_or("all")));
        let o = c.arg("--output").arg(&out).arg("--").args(&session).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap()
    };
    let calls = |r: &Value| -> Vec<(String, u64)> {
        r["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["syscall"].as_str().unwrap().to_string(), s["count"].as_u64().unwrap()))
            .collect()
    };
    let all = report(None);
    let mut got = calls(&all);
    got.sort();
    assert_eq!(got, [("chmod".to_string(), 2), ("open".to_string(), 1)], "{all}");
    assert_eq!(all["files"][0]["path"], "/etc/shadow");
    let k1 = report(Some("k1"));
    assert_eq!(calls(&k1), [("chmod".to_string(), 2)], "{k1}");
    assert_eq!(k1["files"].as_array().unwrap().len(), 0, "{k1}");
}

/// `exe=` (the running executable by inode and device) and `-C uid!=euid` on a setuid-root
/// exec, evaluated with the credentials after the exec as audit does.
#[test]
fn exe_and_a_setuid_exec_compared_after_the_exec() {
    const A: u32 = 7405;
    let dir = TempDir::new("rules-exe");
    let f = file_owned(&dir, "f", A);
    let suid = dir.file("suid-true");
    std::fs::copy("/usr/bin/true", &suid).unwrap();
    std::fs::set_permissions(&suid, std::os::unix::fs::PermissionsExt::from_mode(0o4755)).unwrap();
    let rules = format!(
        "-a always,exit -F arch=b64 -S chmod,fchmodat -F exe={W} -k by-exe\n\
         -a always,exit -F arch=b64 -S execve -C uid!=euid -F euid=0 -k setuid\n"
    );
    let t = traced(
        &dir,
        &rules,
        &cmd(&[
            "--ids".into(),
            format!("{A}:{A}"),
            format!("call:90,s={},420", f.display()),
            "exec-n:1:/usr/bin/true".into(),
            "--".into(),
            "/usr/bin/chmod".into(),
            "644".into(),
            f.display().to_string(),
            "--".into(),
        ]),
    );
    let by_exe = with_key(&t, "by-exe");
    assert_eq!(by_exe.len(), 1, "{:?}", t.events);
    assert_eq!(by_exe[0]["exe"], W);
    assert!(with_key(&t, "setuid").is_empty(), "{:?}", t.events);
    let t = traced(&dir, &rules, &cmd(&["--ids".into(), format!("{A}:{A}"), "--".into(), suid.display().to_string()]));
    let setuid = with_key(&t, "setuid");
    assert_eq!(setuid.len(), 1, "{:?}", t.events);
    assert_eq!(setuid[0]["event"], "exec");
    assert_eq!(setuid[0]["uid"], A);
    assert_eq!(setuid[0]["euid"], 0);
    assert_eq!(setuid[0]["filename"], suid.display().to_string());
    assert_eq!(t.events.len(), 1, "{:?}", t.events);
}

/// Rules on every syscall (no `-S`, or `-S all`) with name and permission conditions, and no
/// other rule naming the calls: each call is still judged by its own names and class.
#[test]
fn rules_on_every_call_judge_each_call_by_its_names_and_class() {
    let dir = TempDir::new("rules-all");
    let a = file_owned(&dir, "w/a", 0);
    let c = file_owned(&dir, "x/c", 0);
    let d = dir.path().display();
    let rules = format!(
        "-a always,exit -F dir={d}/w -F perm=wa -F key=all-wa\n-a always,exit -S all -F path={d}/x/c -F key=all-c\n"
    );
    let t = traced(
        &dir,
        &rules,
        &cmd(&[
            format!("call:2,s={},0", a.display()),
            format!("call:82,s={},s={d}/w/b", a.display()),
            format!("call:2,s={d}/w/b,0"),
            format!("call:90,s={d}/w/b,420"),
            format!("call:2,s={},0", c.display()),
        ]),
    );
    let wa: Vec<u64> = with_key(&t, "all-wa").iter().map(|e| e["syscall"].as_u64().unwrap()).collect();
    // rename (write class) and chmod (attribute class); the reads are not in -p wa.
    assert_eq!(wa, [82, 90], "{:?}", t.events);
    // path= with no perm: the read open of c.
    let c: Vec<u64> = with_key(&t, "all-c").iter().map(|e| e["syscall"].as_u64().unwrap()).collect();
    assert_eq!(c, [2], "{:?}", t.events);
    assert_eq!(t.events.len(), 3, "{:?}", t.events);
}
