//! Issue 12's proof: Debian's own example rule files, unchanged, loaded into the real auditd
//! and into `tracer trace --rules` on the same run of a login session that trips them; the
//! number of events per key for the session's login UID must be identical in both logs.
#![allow(unused_crate_dependencies)]

use std::{
    collections::BTreeMap,
    os::unix::fs::{MetadataExt, PermissionsExt},
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use serde_json::Value;
use tracer_tests::{TempDir, auditd::Auditd, parse_json_lines, tracer_bin};

const EXAMPLES: &str = "/usr/share/doc/auditd/examples/rules";
/// The six files of the issue, in augenrules' (name) order.
const FILES: [&str; 6] = [
    "30-pci-dss-v31.rules",
    "30-stig.rules",
    "32-power-abuse.rules",
    "42-injection.rules",
    "43-module-load.rules",
    "71-networking.rules",
];
/// The session's login UID and the other user whose home root acts in: used by no other test.
const AUID: u32 = 7041;
const OTHER: u32 = 7042;
const SESSION: &str = include_str!("rules_auditd/session.py");
/// Debian's python3, whose library the session can still read once it is the user (not a
/// python under /root, as pyenv's is).
const PYTHON: &str = "/usr/bin/python3";

/// Keys the session must trip (each at least once in both logs: the comparison is not empty).
const TRIPPED: [&str; 15] = [
    "10.2.3-access-audit-trail",
    "perm_mod",
    "access",
    "delete",
    "export",
    "system-locale",
    "MAC-policy",
    "power-abuse",
    "module-load",
    "module-unload",
    "tracing",
    "external-access",
    "10.2.5.c-accounts",
    "10.4.2b-time-change",
    "10.2.5.b-elevated-privs-setuid",
];

/// An audit string field: "quoted", hex (several keys are joined by \x01), or (null).
fn audit_keys(v: &str) -> Vec<String> {
    if v == "(null)" {
        return Vec::new();
    }
    let bytes = match v.strip_prefix('"') {
        Some(q) => q.strip_suffix('"').unwrap_or(q).as_bytes().to_vec(),
        None => (0..v.len() / 2).map(|i| u8::from_str_radix(&v[2 * i..2 * i + 2], 16).expect("hex")).collect(),
    };
    bytes.split(|&b| b == 1).map(|k| String::from_utf8_lossy(k).into_owned()).collect()
}

/// Events per key that auditd logged for `auid` since `since` (seconds since the epoch; the
/// log also holds earlier runs), one SYSCALL record per event.
fn auditd_counts(auid: u32, since: f64) -> BTreeMap<String, u64> {
    let o = Command::new("ausearch").args(["--raw", "-ul", &auid.to_string()]).output().expect("run ausearch");
    let mut counts = BTreeMap::new();
    for line in String::from_utf8_lossy(&o.stdout).lines() {
        let line = line.split('\x1d').next().unwrap();
        if !line.starts_with("type=SYSCALL ") {
            continue;
        }
        let field = |name: &str| line.split(' ').find_map(|kv| kv.strip_prefix(name)).map(str::to_string);
        if field("auid=").as_deref() != Some(&auid.to_string()) {
            continue;
        }
        let time: f64 = line
            .split("msg=audit(")
            .nth(1)
            .and_then(|r| r.split(':').next())
            .and_then(|t| t.parse().ok())
            .expect("an audit record's time");
        if time < since {
            continue;
        }
        for k in audit_keys(&field("key=").unwrap_or_else(|| "(null)".into())) {
            *counts.entry(k).or_insert(0) += 1;
        }
    }
    counts
}

/// Events per key the tracer wrote for `auid` (`key`: one string, or a list of them).
fn tracer_counts(events: &[Value], auid: u32) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for e in events.iter().filter(|e| e["auid"] == auid) {
        let keys: Vec<String> = match &e["key"] {
            Value::String(k) => vec![k.clone()],
            Value::Array(ks) => ks.iter().filter_map(|k| k.as_str().map(String::from)).collect(),
            _ => Vec::new(),
        };
        for k in keys {
            *counts.entry(k).or_insert(0) += 1;
        }
    }
    counts
}

/// /home/NAME owned by OTHER with a file `notes` in it, removed on drop.
struct OtherHome(PathBuf);

impl OtherHome {
    fn new() -> Self {
        let p = PathBuf::from(format!("/home/tracer-rules-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(p.join("notes"), "n").unwrap();
        for f in [p.clone(), p.join("notes")] {
            std::os::unix::fs::chown(&f, Some(OTHER), Some(OTHER)).unwrap();
        }
        OtherHome(p)
    }
}

impl Drop for OtherHome {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn setup_work(work: &Path) -> PathBuf {
    // A root-only file the user's truncate is refused on.
    std::fs::write(work.join("roots"), "r").unwrap();
    std::fs::set_permissions(work.join("roots"), PermissionsExt::from_mode(0o600)).unwrap();
    // A setuid-root copy of a harmless program.
    let suid = work.join("suid-true");
    std::fs::copy("/usr/bin/true", &suid).unwrap();
    std::fs::set_permissions(&suid, PermissionsExt::from_mode(0o4755)).unwrap();
    assert_eq!(std::fs::metadata(&suid).unwrap().uid(), 0);
    std::fs::write(work.join("session.py"), SESSION).unwrap();
    suid
}

#[test]
fn debian_rule_files_give_the_same_events_per_key_as_auditd() {
    let work = TempDir::new("rules-auditd");
    let home = OtherHome::new();
    let suid = setup_work(work.path());
    let files: Vec<PathBuf> = FILES.iter().map(|f| Path::new(EXAMPLES).join(f)).collect();

    let mut audit = Auditd::start();
    for f in &files {
        for (line, text, why) in audit.load_file(f) {
            println!("skipped (auditctl refuses it here): {}:{line}: {text}: {why}", f.display());
        }
    }
    let lost_before = audit.lost();
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64();

    let out = work.file("events.json");
    let mut cmd = Command::new(tracer_bin());
    cmd.arg("trace");
    for f in &files {
        cmd.arg("--rules").arg(f);
    }
    cmd.args(["--format", "json", "--output"]).arg(&out).arg("--").arg(PYTHON).arg(work.file("session.py")).args([
        &AUID.to_string(),
        &OTHER.to_string(),
        work.path().to_str().unwrap(),
        home.0.to_str().unwrap(),
        suid.to_str().unwrap(),
    ]);
    let o = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "session or tracer failed: {stderr}");
    assert!(stderr.contains(" 0 lost"), "{stderr}");
    let events = parse_json_lines(&std::fs::read(&out).unwrap());
    let ours = tracer_counts(&events, AUID);

    // auditd writes asynchronously: wait until its log holds as many events as ours.
    let total: u64 = ours.values().sum();
    let deadline = Instant::now() + Duration::from_secs(60);
    let theirs = loop {
        let c = auditd_counts(AUID, since);
        if c.values().sum::<u64>() >= total || Instant::now() > deadline {
            break c;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(lost_before, audit.lost(), "the kernel dropped audit records: the comparison would be meaningless");
    drop(audit);

    println!("events per key for auid {AUID}:");
    for k in theirs.keys().chain(ours.keys()).collect::<std::collections::BTreeSet<_>>() {
        println!("  {k:40} auditd {:4}  tracer {:4}", theirs.get(k).unwrap_or(&0), ours.get(k).unwrap_or(&0));
    }
    for k in TRIPPED {
        assert!(theirs.get(k).copied().unwrap_or(0) > 0, "the session did not trip {k} in auditd's log");
    }
    assert_eq!(ours, theirs, "events per key differ (tracer left, auditd right)");
}
