//! THE test of `trace --rules` (issue 12): Debian's own example rule files, unchanged, loaded
//! into the real auditd and into `tracer trace --rules` during the same login session, which
//! trips them; the number of events per key for the session's login UID must be identical in
//! auditd's log and in the tracer's `--format audit` output (read by the real ausearch).
// Every test crate gets the whole dev-dependency list; each uses part of it.
#![allow(unused_crate_dependencies)]

use std::{
    collections::BTreeMap,
    ffi::OsString,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use tracer_tests::{
    auditd::{Auditd, audit_status},
    *,
};

const W: &str = env!("CARGO_BIN_EXE_workload");
const EXAMPLES: &str = "/usr/share/doc/auditd/examples/rules";
/// In load order (augenrules' name order).
const FILES: &[&str] = &[
    "30-pci-dss-v31.rules",
    "30-stig.rules",
    "32-power-abuse.rules",
    "42-injection.rules",
    "43-module-load.rules",
    "71-networking.rules",
];

/// Keys of SYSCALL records of login UID `auid` whose event time is not before `since`
/// (seconds), counted, from raw audit.log text. Several keys (joined by \x01, hex) count
/// once each.
fn keys_of(raw: &str, auid: u32, since: u64) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for line in raw.lines() {
        let line = line.split('\x1d').next().unwrap();
        if !line.starts_with("type=SYSCALL ") {
            continue;
        }
        let secs: u64 =
            line.split("msg=audit(").nth(1).and_then(|r| r.split('.').next()).and_then(|s| s.parse().ok()).unwrap_or(0);
        let field = |k: &str| line.split(' ').find_map(|kv| kv.strip_prefix(k).map(str::to_string));
        if secs < since || field("auid=").as_deref() != Some(&auid.to_string()) {
            continue;
        }
        let Some(key) = field("key=") else { continue };
        if key == "(null)" {
            continue;
        }
        let key = match key.strip_prefix('"') {
            Some(q) => q.trim_end_matches('"').to_string(),
            None => {
                let bytes: Vec<u8> =
                    (0..key.len() / 2).map(|i| u8::from_str_radix(&key[2 * i..2 * i + 2], 16).unwrap()).collect();
                String::from_utf8_lossy(&bytes).into_owned()
            }
        };
        for k in key.split('\x01') {
            *out.entry(k.to_string()).or_default() += 1;
        }
    }
    out
}

fn ausearch_raw(args: &[&str]) -> String {
    let o = Command::new("ausearch").arg("--raw").args(args).output().expect("run ausearch");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn hexs(b: &[u8]) -> String {
    b.iter().map(|c| format!("{c:02x}")).collect()
}

/// The session: root acting under the login UID (in /etc/selinux, in another user's home),
/// then the user itself: permission and owner changes, xattrs, denied opens of the account
/// files, deletes and renames, a failed mount, clock and hostname changes, module
/// (un)loading, ptrace of its own child, connects, and a setuid-root exec.
fn session(dir: &Path, home: &Path, suid: &Path, auid: u32) -> Vec<OsString> {
    let d = dir.display();
    let h = home.display();
    let tag = std::process::id();
    let ops: Vec<String> = vec![
        // Root with the user's login UID.
        "--loginuid".into(),
        auid.to_string(),
        format!("call:257,-100,s=/etc/selinux/tracer-test-{tag},0x241,420"),
        format!("call:87,s=/etc/selinux/tracer-test-{tag}"),
        format!("open:{h}/f"),
        format!("call:92,s={h}/f,{},{}", auid + 1, auid + 1),
        "--".into(),
        // The user.
        W.into(),
        "--ids".into(),
        format!("{auid}:{auid}"),
        format!("call:90,s={d}/f,384"),
        format!("call:268,-100,s={d}/f,420"),
        format!("call:92,s={d}/f,{auid},{auid}"),
        format!("call:94,s={d}/f,{auid},{auid}"),
        format!("call:188,s={d}/f,s=user.t,s=v,1,0"),
        format!("call:197,s={d}/f,s=user.t"),
        "call:2,s=/etc/shadow,1".into(),
        "call:257,-100,s=/etc/gshadow,2".into(),
        "call:85,s=/etc/passwd,420".into(),
        "call:76,s=/etc/group,0".into(),
        "open:/root/.tracer-no-such-file".into(),
        "openat2:/etc/shadow".into(),
        format!("call:87,s={d}/g"),
        format!("call:82,s={d}/h,s={d}/i"),
        format!("call:263,-100,s={d}/i,0"),
        format!("call:165,s=none,s={d},s=tmpfs,0,0"),
        format!("call:227,0,b={}", hexs(&[0; 16])),
        format!("call:164,b={},0", hexs(&[0; 16])),
        format!("call:159,b={}", hexs(&[0; 208])),
        "call:170,s=x,1".into(),
        "call:171,s=x,1".into(),
        format!("call:175,b={},16,s=", hexs(&[0; 16])),
        "call:313,0,s=,0".into(),
        "call:176,s=tracer_no_such_module,0".into(),
        "ptrace-child:2,5,4,6,1".into(),
        "connect:127.0.0.1:9".into(),
        format!("unix:{d}/no-such-socket"),
        "--".into(),
        suid.display().to_string(),
    ];
    let mut cmd = vec![OsString::from(W)];
    cmd.extend(ops.into_iter().map(OsString::from));
    cmd
}

/// Rule files as auditd takes them: each line auditctl refuses here is left out of the copy
/// the tracer gets too (and printed); the rest is byte for byte the shipped file.
fn load_both(auditd: &Auditd, copies: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for f in FILES {
        let src = Path::new(EXAMPLES).join(f);
        let refused = auditd.load_file(&src);
        let text = std::fs::read_to_string(&src).unwrap();
        let kept: Vec<&str> = text
            .lines()
            .enumerate()
            .filter(|(i, _)| !refused.iter().any(|(n, _, _)| *n == i + 1))
            .map(|(_, l)| l)
            .collect();
        for (n, line, why) in &refused {
            println!("auditctl refuses {f}:{n} here, skipped for both: {line} ({why})");
        }
        let dst = copies.join(f);
        std::fs::write(&dst, kept.join("\n") + "\n").unwrap();
        out.push(dst);
    }
    out
}

#[test]
fn debian_rule_sets_give_the_same_events_per_key_as_auditd() {
    let auid: u32 = 7300 + std::process::id() % 600;
    let dir = TempDir::new("rules-auditd");
    let copies = TempDir::new("rules-copies");
    for f in ["f", "g", "h"] {
        let p = dir.file(f);
        std::fs::write(&p, "x").unwrap();
        std::os::unix::fs::chown(&p, Some(auid), Some(auid)).unwrap();
    }
    // A setuid-root copy of a harmless program.
    let suid = dir.file("suid-true");
    std::fs::copy("/usr/bin/true", &suid).unwrap();
    std::fs::set_permissions(&suid, std::fs::Permissions::from_mode(0o4755)).unwrap();
    // Another user's home, with a file of theirs.
    let home = PathBuf::from(format!("/home/tracer-test-{}-{}", std::process::id(), uniq()));
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(home.join("f"), "x").unwrap();
    for p in [&home, &home.join("f")] {
        std::os::unix::fs::chown(p, Some(auid + 1), Some(auid + 1)).unwrap();
    }
    struct Rm(PathBuf);
    impl Drop for Rm {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _home = Rm(home.clone());

    let auditd = Auditd::start();
    let files = load_both(&auditd, copies.path());
    println!("auditctl -l:\n{}", auditd.list());
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let lost_before: u64 = audit_status("lost").trim().parse().unwrap_or(0);

    let out = dir.file("tracer.log");
    let mut args: Vec<OsString> = vec!["trace".into(), "--format".into(), "audit".into(), "--output".into()];
    args.push(out.clone().into());
    for f in &files {
        args.push("--rules".into());
        args.push(f.clone().into());
    }
    args.push("--".into());
    args.extend(session(dir.path(), &home, &suid, auid));
    let o = Command::new(tracer_bin()).args(&args).output().expect("run tracer");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success() || o.status.code() == Some(0), "tracer failed: {err}");
    assert_eq!(lost_in(&err), 0, "{err}");
    let ours_raw = std::fs::read_to_string(&out).unwrap();
    let ours = keys_of(&ours_raw, auid, since);

    // auditd writes asynchronously: wait until its log holds as many events.
    let deadline = Instant::now() + Duration::from_secs(60);
    let theirs = loop {
        let t = keys_of(&ausearch_raw(&["-ul", &auid.to_string()]), auid, since);
        if t.values().sum::<u64>() >= ours.values().sum::<u64>() || Instant::now() > deadline {
            std::thread::sleep(Duration::from_millis(500));
            break keys_of(&ausearch_raw(&["-ul", &auid.to_string()]), auid, since);
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    let lost_after: u64 = audit_status("lost").trim().parse().unwrap_or(0);
    assert_eq!(lost_before, lost_after, "the kernel dropped audit records: the comparison would be meaningless");
    println!("auditd: {theirs:?}\ntracer: {ours:?}");
    if ours != theirs {
        println!("tracer's log:\n{ours_raw}");
    }
    assert_eq!(ours, theirs, "events per key for auid {auid}: tracer (left) vs auditd (right)");
    // The session tripped every rule family it was written for.
    for key in [
        "perm_mod",
        "access",
        "10.2.5.c-accounts",
        "delete",
        "export",
        "time-change",
        "system-locale",
        "module-load",
        "module-unload",
        "tracing",
        "external-access",
        "10.2.5.b-elevated-privs-setuid",
        "power-abuse",
        "MAC-policy",
    ] {
        assert!(theirs.get(key).copied().unwrap_or(0) > 0, "the session did not trip {key}: {theirs:?}");
    }
    // The real ausearch reads the tracer's output by key.
    for (key, n) in &ours {
        let found = keys_of(&ausearch_raw(&["-if", out.to_str().unwrap(), "-k", key]), auid, since);
        assert_eq!(found.get(key), Some(n), "ausearch -if {} -k {key}", out.display());
    }
}
