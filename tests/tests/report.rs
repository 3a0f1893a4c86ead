//! `tracer report` end to end: the real programs on the running kernel, the `workload`
//! program as a scripted login session, and the real auditd as the reference.
// Every test crate gets the whole dev-dependency list; each uses part of it.
#![allow(unused_crate_dependencies)]

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    ffi::OsString,
    os::unix::ffi::OsStrExt,
    path::Path,
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;
use tracer_tests::{auditd::Auditd, *};

const W: &str = env!("CARGO_BIN_EXE_workload");

fn as_user(auid: u32, ops: &[&[u8]]) -> Vec<OsString> {
    let auid = auid.to_string();
    let ids = format!("{auid}:{auid}");
    let mut args: Vec<&[u8]> = vec![b"--loginuid", auid.as_bytes(), b"--ids", ids.as_bytes()];
    args.extend_from_slice(ops);
    workload_cmd(W, &args)
}

/// `tracer report ARGS --output FILE -- CMD`, with FILE's content as stdout: the command
/// writes to the same stdout as the tracer.
fn report(args: &[&str], cmd: &[OsString]) -> Output {
    let dir = TempDir::new("rep-out");
    let file = dir.path().join("report");
    let mut out = Command::new(tracer_bin())
        .arg("report")
        .args(args)
        .arg("--output")
        .arg(&file)
        .arg("--")
        .args(cmd)
        .output()
        .expect("run tracer");
    out.stdout = std::fs::read(&file).unwrap_or_default();
    assert!(!out.stdout.is_empty() || !out.status.success(), "no report: {}", String::from_utf8_lossy(&out.stderr));
    out
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The report of one AUID (`--auid`, `--format json`): one line of JSON, which may hold
/// the tracer's `\udcXX` escapes (parse_json_lines turns them into markers for bytes_of).
fn json_report(o: &Output) -> Value {
    assert!(o.status.success(), "{}", stderr(o));
    let mut v = parse_json_lines(&o.stdout);
    assert_eq!(v.len(), 1, "one JSON document");
    v.pop().unwrap()
}

/// (entry key, count, failed) of a section, keyed by path / command / peer text.
fn section(r: &Value, name: &str) -> BTreeMap<Vec<u8>, (u64, u64)> {
    r[name]
        .as_array()
        .unwrap_or_else(|| panic!("no {name} in {r}"))
        .iter()
        .map(|e| {
            let key = match name {
                "files" => bytes_of(&e["path"]),
                "commands" => e["argv"].as_array().unwrap().iter().map(bytes_of).collect::<Vec<_>>().join(&0u8),
                _ => match e["family"].as_str().unwrap() {
                    "unix" => [b"unix:".as_slice(), &bytes_of(&e["path"])].concat(),
                    _ => format!("{}:{}", e["address"].as_str().unwrap(), e["port"]).into_bytes(),
                },
            };
            (key, (e["count"].as_u64().unwrap(), e["failed"].as_u64().unwrap()))
        })
        .collect()
}

/// The report's syscall counts by label: audit's name, plus " (i386)" for a 32-bit call
/// (the label the text report prints).
fn syscall_counts(r: &Value) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for e in r["syscalls"].as_array().unwrap_or_else(|| panic!("no syscalls in {r}")) {
        let name = e["syscall"].as_str().unwrap();
        assert!(e["nr"].is_u64(), "{e}");
        let label = match e["arch"].as_str().unwrap() {
            "x86_64" => name.to_string(),
            "i386" => format!("{name} (i386)"),
            a => panic!("arch {a}"),
        };
        assert!(m.insert(label, e["count"].as_u64().unwrap()).is_none(), "one entry per syscall: {e}");
    }
    m
}

#[test]
fn exact_counts_of_opens_execs_connects_and_their_syscalls() {
    let dir = TempDir::new("rep-counts");
    let file = dir.path().join("target-file");
    std::fs::write(&file, "x").unwrap();
    let fb = file.as_os_str().as_bytes();
    let open_op = [b"open-n:300:".as_slice(), fb].concat();
    let o = report(
        &["--auid", "7005", "--format", "json"],
        &as_user(7005, &[&open_op, b"exec-n:40:/bin/true", b"connect-n:50:127.0.0.1:9"]),
    );
    let r = json_report(&o);
    assert_eq!(r["auid"], 7005);
    assert_eq!(r["lost_events"], 0, "{}", stderr(&o));
    let files = section(&r, "files");
    assert_eq!(files[fb], (300, 0), "every open of the file counted once");
    let commands = section(&r, "commands");
    assert_eq!(commands[b"/bin/true".as_slice()], (40, 0));
    let conns = section(&r, "connections");
    assert_eq!(conns[b"127.0.0.1:9".as_slice()], (50, 50), "all refused");
    assert_eq!(r["connections"][0]["family"], "inet");
    // Counted in the kernel, independently of the events: the two must agree exactly.
    // Every open here is an openat (glibc's open and ld.so's opens alike).
    let sc = syscall_counts(&r);
    let opened: u64 = files.values().map(|c| c.0).sum();
    assert!(sc["openat"] >= 300);
    assert_eq!(sc["openat"], opened, "openat calls = files opened: {sc:?}");
    assert_eq!(sc["execve"], 40, "{sc:?}");
    assert_eq!(sc["connect"], 50, "{sc:?}");
    assert_eq!(sc["socket"], 50, "{sc:?}");
    assert_eq!(sc["wait4"], 40, "one wait per child: {sc:?}");
    assert_eq!(sc["setuid"], 1);
    // The workload's own exec happened before its loginuid was set: not 7005's.
    assert!(!commands.keys().any(|k| k.ends_with(b"/workload") || k.windows(8).any(|w| w == b"workload")));
    // Aggregated in the kernel: each distinct entry crossed once, its repeats were counted
    // there.
    let entries = distinct(&[&files, &commands, &conns]);
    assert_eq!(crossed(&o), entries, "records crossed for {entries} entries: {}", stderr(&o));
}

/// The distinct (entry, result) pairs of report sections: what the kernel counts apart.
fn distinct(sections: &[&BTreeMap<Vec<u8>, (u64, u64)>]) -> u64 {
    sections.iter().flat_map(|s| s.values()).map(|&(n, failed)| u64::from(n > failed) + u64::from(failed > 0)).sum()
}

/// The records that crossed to user space (the closing line's event count).
fn crossed(o: &Output) -> u64 {
    let err = stderr(o);
    err.lines()
        .find_map(|l| l.strip_prefix("tracer: ")?.split_once(" events,").map(|(n, _)| n.trim().parse().unwrap()))
        .unwrap_or_else(|| panic!("no closing line: {err}"))
}

/// An entry crosses once however its repeats differ in what the report does not show (open
/// flags, the exec's working directory) and whatever this CPU's records left in the scratch
/// area before (the ::1 connect's address lies where an open record has padding). Pinned
/// to one CPU, every record is built in the same scratch area. (Before: 9 records for 6.)
#[test]
fn each_report_entry_crosses_once() {
    let dir = TempDir::new("rep-once");
    let file = dir.path().join("f");
    std::fs::write(&file, "x").unwrap();
    let fb = file.as_os_str().as_bytes();
    let d = dir.path().as_os_str().as_bytes();
    let (open, create, chdir) =
        ([b"open:".as_slice(), fb].concat(), [b"create:".as_slice(), fb].concat(), [b"chdir:".as_slice(), d].concat());
    let session = as_user(
        7005,
        &[
            &open,
            b"connect:[::1]:9",
            &open,
            &create,
            b"exec-n:1:/bin/true",
            &chdir,
            b"exec-n:1:/bin/true",
            b"connect:[::1]:9",
        ],
    );
    let pinned: Vec<OsString> = ["taskset", "-c", "0"].into_iter().map(OsString::from).chain(session).collect();
    let o = report(&["--auid", "7005", "--format", "json"], &pinned);
    let r = json_report(&o);
    let (files, commands, conns) = (section(&r, "files"), section(&r, "commands"), section(&r, "connections"));
    assert_eq!(files[fb], (3, 1), "two opens and a refused creat (root's file): {files:?}");
    assert_eq!(commands[b"/bin/true".as_slice()], (2, 0));
    assert_eq!(conns[b"::1:9".as_slice()], (2, 2));
    let entries = distinct(&[&files, &commands, &conns]);
    assert_eq!(crossed(&o), entries, "records crossed for {entries} entries: {}", stderr(&o));
}

#[test]
fn text_layout_failures_and_hostile_names() {
    let dir = TempDir::new("rep-text");
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "x").unwrap();
    std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    // A name that tries to forge a report line.
    let evil = [dir.path().as_os_str().as_bytes(), b"/x 1\n   forged 99\xff"].concat();
    std::fs::write(std::ffi::OsStr::from_bytes(&evil), "x").unwrap();
    let secret_op = [b"open:".as_slice(), secret.as_os_str().as_bytes()].concat();
    let evil_op = [b"open:".as_slice(), &evil].concat();
    let o = report(
        &["--auid", "7005"],
        &as_user(
            7005,
            &[
                &secret_op,
                &secret_op,
                &secret_op,
                &evil_op,
                b"connect-n:2:127.0.0.1:9",
                b"--",
                b"/nonexistent/prog",
                b"an arg",
            ],
        ),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8(o.stdout.clone()).expect("the text report is UTF-8");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "Audit report for AUID 7005");
    assert_eq!(lines[1], "");
    let heads: Vec<&str> = lines.iter().copied().filter(|l| !l.starts_with("   ") && !l.is_empty()).collect();
    assert_eq!(
        heads,
        [
            "Audit report for AUID 7005",
            "System calls made:",
            "Commands executed:",
            "Files opened:",
            "Connections made:",
            "Lost events: 0"
        ],
        "{text}"
    );
    assert_eq!(*lines.last().unwrap(), "Lost events: 0");
    let secret_line = format!("   {} 3 (3 failed)", secret.display());
    assert!(lines.contains(&secret_line.as_str()), "{text}");
    assert!(lines.contains(&"   /nonexistent/prog an arg 1 (1 failed)"), "failed exec shown and marked: {text}");
    assert!(lines.contains(&"   127.0.0.1:9 2 (2 failed)"), "{text}");
    let evil_line = format!("   {}/x 1\\n   forged 99\\xff 1", dir.path().display());
    assert!(lines.contains(&evil_line.as_str()), "hostile name escaped on one line: {text}");
    assert!(!lines.iter().any(|l| l.starts_with("   forged")), "{text}");
    // Entries are sorted by count, highest first.
    let files_at = lines.iter().position(|l| *l == "Files opened:").unwrap();
    let counts: Vec<u64> = lines[files_at + 1..]
        .iter()
        .take_while(|l| l.starts_with("   "))
        .map(|l| l.split(' ').rev().find_map(|w| w.parse().ok()).unwrap())
        .collect();
    assert!(counts.windows(2).all(|w| w[0] >= w[1]), "{text}");
}

#[test]
fn one_report_per_auid_in_auid_order_without_auid() {
    let o = report(&["--format", "json"], &as_user(7005, &[b"open:/etc/hostname"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Vec<Value> = serde_json::from_slice(&o.stdout).expect("a JSON array");
    // Before setting its loginuid the workload had ours (unset when no login set one).
    let own = std::fs::read_to_string("/proc/self/loginuid").unwrap().trim().parse::<u32>().unwrap();
    let mut want = vec![7005, own];
    want.sort();
    want.dedup();
    let want: Vec<Value> =
        want.into_iter().map(|a| if a == u32::MAX { Value::from("unset") } else { Value::from(a) }).collect();
    let auids: Vec<&Value> = v.iter().map(|r| &r["auid"]).collect();
    assert_eq!(auids, want.iter().collect::<Vec<_>>());
    let text = report(&[], &as_user(7005, &[b"open:/etc/hostname"]));
    let titles: Vec<String> = String::from_utf8_lossy(&text.stdout)
        .lines()
        .filter(|l| l.starts_with("Audit report"))
        .map(String::from)
        .collect();
    let want_titles: Vec<String> = want
        .iter()
        .map(|a| format!("Audit report for AUID {}", a.as_str().map_or(a.to_string(), String::from)))
        .collect();
    assert_eq!(titles, want_titles);
}

#[test]
fn exit_status_passes_through_and_bad_input_exits_2() {
    let o = Command::new(tracer_bin()).args(["report", "--", "sh", "-c", "exit 7"]).output().unwrap();
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("Audit report for AUID"),
        "report printed after the command ended"
    );
    for args in [
        vec!["report", "--format", "yaml"],
        vec!["report", "--auid", "bob"],
        vec!["report", "--input", "/nonexistent/file.json"],
        vec!["report", "--input", "/dev/null", "--", "true"],
        vec!["report", "--input", "/dev/null", "--duration", "1s"],
        vec!["report", "--output", "/nonexistent/dir/x", "--", "true"],
    ] {
        let o = Command::new(tracer_bin()).args(&args).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(o.stdout.is_empty(), "{args:?}");
    }
}

/// Waits until the tracer has attached its programs (its bpf_link count stops growing).
fn wait_attached(pid: u32) {
    let links = || {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|d| {
                d.flatten()
                    .filter(|e| {
                        std::fs::read_link(e.path()).is_ok_and(|l| l.as_os_str().as_bytes().ends_with(b"bpf_link"))
                    })
                    .count()
            })
            .unwrap_or(0)
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let (mut last, mut since) = (0, Instant::now());
    while Instant::now() < deadline {
        let n = links();
        if n != last {
            (last, since) = (n, Instant::now());
        } else if n > 0 && since.elapsed() > Duration::from_millis(500) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("tracer did not attach");
}

#[test]
fn live_until_sigint_and_until_duration() {
    // 7106: no other test runs as this login UID, and no `-- CMD` narrows the report.
    let dir = TempDir::new("rep-live");
    let file = dir.path().join("f");
    std::fs::write(&file, "x").unwrap();
    let tracer = Command::new(tracer_bin())
        .args(["report", "--auid", "7106", "--format", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_attached(tracer.id());
    let op = [b"open-n:7:".as_slice(), file.as_os_str().as_bytes()].concat();
    let st = Command::new(W).args(as_user(7106, &[&op, b"exec-n:2:/bin/true"]).iter().skip(1)).status().unwrap();
    assert!(st.success());
    // SAFETY: kill takes plain integers; the tracer is our child, not yet reaped.
    unsafe { libc::kill(tracer.id() as i32, libc::SIGINT) };
    let o = tracer.wait_with_output().unwrap();
    let r = json_report(&o);
    assert_eq!(section(&r, "files")[file.as_os_str().as_bytes()], (7, 0));
    assert_eq!(section(&r, "commands")[b"/bin/true".as_slice()], (2, 0));
    assert_eq!(syscall_counts(&r)["execve"], 2);
    assert_eq!(r["lost_events"], 0);

    let t = Instant::now();
    let o = Command::new(tracer_bin()).args(["report", "--auid", "7107", "--duration", "1s"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(t.elapsed() >= Duration::from_secs(1));
    let text = String::from_utf8(o.stdout).unwrap();
    assert_eq!(
        text,
        "Audit report for AUID 7107\n\nSystem calls made:\nCommands executed:\nFiles opened:\nConnections made:\nLost events: 0\n"
    );
}

/// The deterministic session both recorded and reported live.
fn session(dir: &Path) -> Vec<OsString> {
    let d = dir.as_os_str().as_bytes();
    let chdir = [b"chdir:".as_slice(), d].concat();
    let opens = [b"open-n:5:".as_slice(), d, b"/f"].concat();
    let odd = [b"open:".as_slice(), d, b"/odd \xff\nname"].concat();
    as_user(
        7005,
        &[
            &chdir,
            &opens,
            b"open:f",
            b"create:new",
            b"openat2:new",
            &odd,
            b"open:/nonexistent/x",
            b"exec-n:3:/bin/true",
            b"connect-n:2:127.0.0.1:9",
            b"abstract:tracer-report-test",
            b"--",
            b"/bin/echo",
            b"a b",
            b"c\xff",
        ],
    )
}

#[test]
fn input_file_gives_the_same_report_as_live() {
    let dir = TempDir::new("rep-input");
    std::fs::write(dir.path().join("f"), "x").unwrap();
    std::fs::write(std::ffi::OsStr::from_bytes(&[dir.path().as_os_str().as_bytes(), b"/odd \xff\nname"].concat()), "x")
        .unwrap();
    let rec = dir.path().join("rec.json");
    let t = Command::new(tracer_bin())
        .args(["trace", "--format", "json", "--output"])
        .arg(&rec)
        .arg("--")
        .args(session(dir.path()))
        .output()
        .unwrap();
    assert!(t.status.success(), "{}", stderr(&t));
    let _ = std::fs::remove_file(dir.path().join("new"));
    for format in ["json", "text"] {
        let live = report(&["--auid", "7005", "--format", format], &session(dir.path()));
        let _ = std::fs::remove_file(dir.path().join("new"));
        let from_file = Command::new(tracer_bin())
            .args(["report", "--auid", "7005", "--format", format, "--input"])
            .arg(&rec)
            .output()
            .unwrap();
        assert!(from_file.status.success(), "{}", stderr(&from_file));
        if format == "json" {
            let (live, ff) = (json_report(&live), json_report(&from_file));
            for s in ["commands", "files", "connections"] {
                assert_eq!(live[s], ff[s], "{s} differ");
                assert!(!section(&ff, s).is_empty(), "{s} empty");
            }
            assert_eq!(ff["syscalls"], Value::Null, "a recorded file has no syscall counts");
            assert_eq!(ff["lost_events"], Value::Null);
            let files = section(&ff, "files");
            assert_eq!(
                files[&[dir.path().as_os_str().as_bytes(), b"/f"].concat()],
                (6, 0),
                "cwd-relative open resolved"
            );
            assert_eq!(files[&[dir.path().as_os_str().as_bytes(), b"/odd \xff\nname"].concat()], (1, 0), "byte-exact");
            assert_eq!(files[b"/nonexistent/x".as_slice()], (1, 1));
            assert_eq!(section(&ff, "commands")[b"/bin/echo\0a b\0c\xff".as_slice()], (1, 0));
        } else {
            // Same text but for the syscall section and the lost line, which say "not recorded".
            let strip = |o: &Output| -> Vec<String> {
                let text = String::from_utf8(o.stdout.clone()).unwrap();
                let mut in_syscalls = false;
                text.lines()
                    .filter(|l| {
                        if l.starts_with("System calls made:") {
                            in_syscalls = true;
                            return false;
                        }
                        if !l.starts_with("   ") {
                            in_syscalls = false;
                        }
                        !in_syscalls && !l.starts_with("Lost events:")
                    })
                    .map(String::from)
                    .collect()
            };
            assert_eq!(strip(&live), strip(&from_file));
            let text = String::from_utf8(from_file.stdout.clone()).unwrap();
            assert!(text.contains("System calls made: not recorded"), "{text}");
            assert!(text.contains("Lost events: unknown"), "{text}");
        }
    }
}

#[test]
fn malformed_input_names_file_and_line_and_prints_nothing() {
    let dir = TempDir::new("rep-bad");
    let rec = dir.path().join("rec.json");
    let t = Command::new(tracer_bin())
        .args(["trace", "--format", "json", "--output"])
        .arg(&rec)
        .arg("--")
        .args(as_user(7005, &[b"open:/etc/hostname", b"exec-n:1:/bin/true"]))
        .output()
        .unwrap();
    assert!(t.status.success());
    let mut raw = std::fs::read(&rec).unwrap();
    let good_lines = raw.iter().filter(|&&b| b == b'\n').count();
    assert!(good_lines >= 2);
    raw.extend_from_slice(b"{\"event\":\"open\",\"time\":\"2026-01-01T00:00:00Z\",\"pid\":1\n");
    raw.extend_from_slice(b"{}\n");
    std::fs::write(&rec, &raw).unwrap();
    let o = Command::new(tracer_bin()).args(["report", "--input"]).arg(&rec).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(o.stdout.is_empty(), "no partial report");
    let err = stderr(&o);
    assert!(err.contains(&format!("{}:{}:", rec.display(), good_lines + 1)), "{err}");
}

// ---------------------------------------------------------------------------------------
// Against the real auditd.

/// auditd (the shared handle: one test at a time, across test binaries) with one rule per
/// arch for the test's login UID; everything undone on drop.
struct Audit {
    inner: Auditd,
    key: String,
    auid: u32,
}

impl Audit {
    fn start(auid: u32) -> Audit {
        let mut inner = Auditd::start();
        let key = format!("tracer-report-test-{}", std::process::id());
        // Every call of the login UID, 64-bit and 32-bit.
        for arch in ["arch=b64", "arch=b32"] {
            inner.add_rule(&["always,exit", "-F", arch, "-S", "all", "-F", &format!("auid={auid}"), "-k", &key]);
        }
        Audit { inner, key, auid }
    }
}

/// One audit event (records sharing `msg=audit(TIME:SERIAL)`), fields by record type.
#[derive(Default, Debug)]
struct AuditEvent {
    records: Vec<(String, HashMap<String, String>)>,
}

impl AuditEvent {
    fn first(&self, ty: &str) -> Option<&HashMap<String, String>> {
        self.records.iter().find(|(t, _)| t == ty).map(|(_, f)| f)
    }
    fn all(&self, ty: &str) -> impl Iterator<Item = &HashMap<String, String>> {
        self.records.iter().filter(move |(t, _)| t == ty).map(|(_, f)| f)
    }
}

/// `ausearch --raw ARGS` grouped into events by id.
fn ausearch(args: &[&str]) -> BTreeMap<String, AuditEvent> {
    let o = Command::new("ausearch").arg("--raw").args(args).output().expect("run ausearch");
    let mut events: BTreeMap<String, AuditEvent> = BTreeMap::new();
    for line in String::from_utf8_lossy(&o.stdout).lines() {
        // ENRICHED logs append interpreted fields after 0x1d: the raw ones are enough.
        let line = line.split('\x1d').next().unwrap();
        let Some(ty) = line.strip_prefix("type=").and_then(|l| l.split(' ').next()) else { continue };
        let Some(id) = line.split("msg=audit(").nth(1).and_then(|r| r.split(')').next()) else { continue };
        let rest = line.split_once("): ").map_or("", |(_, r)| r);
        let fields =
            rest.split(' ').filter_map(|kv| kv.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect();
        events.entry(id.to_string()).or_default().records.push((ty.to_string(), fields));
    }
    events
}

/// An untrusted audit string: "quoted" as is, otherwise hex.
fn untrusted(v: &str) -> Vec<u8> {
    if let Some(q) = v.strip_prefix('"') {
        return q.strip_suffix('"').unwrap_or(q).as_bytes().to_vec();
    }
    (0..v.len() / 2).map(|i| u8::from_str_radix(&v[2 * i..2 * i + 2], 16).expect("hex")).collect()
}

fn normalize(p: &[u8]) -> Vec<u8> {
    let mut parts: Vec<&[u8]> = Vec::new();
    for c in p.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    let mut out = Vec::new();
    for c in parts {
        out.push(b'/');
        out.extend_from_slice(c);
    }
    if out.is_empty() { b"/".to_vec() } else { out }
}

/// What auditd recorded for the login UID, in the shape of the tracer's report.
#[derive(Debug, Default)]
struct AuditView {
    syscalls: BTreeMap<String, u64>,
    files: BTreeMap<Vec<u8>, (u64, u64)>,
    commands: BTreeMap<Vec<u8>, u64>,
    connections: BTreeMap<Vec<u8>, (u64, u64)>,
    login_writes: u64,
}

/// audit's syscall names by (i386, number), from `ausyscall [i386] --dump`.
fn ausyscall_names() -> HashMap<(bool, u32), String> {
    let mut names = HashMap::new();
    for (i386, arch) in [(false, "x86_64"), (true, "i386")] {
        let o = Command::new("ausyscall").args([arch, "--dump"]).output().expect("run ausyscall");
        for (n, s) in String::from_utf8(o.stdout).unwrap().lines().filter_map(|l| l.split_once('\t')) {
            if let Ok(n) = n.parse() {
                names.entry((i386, n)).or_insert_with(|| s.to_string());
            }
        }
    }
    assert!(names.len() > 700, "ausyscall gave no tables");
    names
}

fn audit_view(key: &str, auid: u32, names: &HashMap<(bool, u32), String>) -> AuditView {
    // The syscall that set the loginuid, found by its LOGIN record: both tools count it for
    // the new auid (both evaluate at syscall exit).
    let logins: HashSet<String> = ausearch(&["-m", "LOGIN", "-ua", &auid.to_string()]).into_keys().collect();
    let mut v = AuditView::default();
    for (id, ev) in ausearch(&["-k", key]) {
        // Only the session's syscalls: not the harness's auditctl (CONFIG_CHANGE events).
        let Some(sc) = ev.first("SYSCALL").filter(|s| s.get("auid").map(String::as_str) == Some(&auid.to_string()))
        else {
            continue;
        };
        let nr: u32 = sc["syscall"].parse().unwrap();
        if logins.contains(&id) {
            v.login_writes += 1;
        }
        let i386 = match sc["arch"].as_str() {
            "c000003e" => false,
            "40000003" => true,
            a => panic!("arch {a}"),
        };
        let name = names.get(&(i386, nr)).cloned().unwrap_or_else(|| format!("unknown-syscall({nr})"));
        let label = if i386 { format!("{name} (i386)") } else { name };
        *v.syscalls.entry(label).or_default() += 1;
        if i386 {
            // The tracer reports 64-bit opens, execs and connects only.
            continue;
        }
        let failed = u64::from(sc.get("success").map(String::as_str) == Some("no"));
        match nr {
            // open, creat, openat, openat2: the PATH record of the file itself (creat
            // also logs the PARENT directory), made absolute with the CWD record.
            2 | 85 | 257 | 437 => {
                let path = ev
                    .all("PATH")
                    .find(|p| p.get("nametype").map(String::as_str) != Some("PARENT"))
                    .or_else(|| ev.first("PATH"))
                    .expect("PATH record");
                let name = untrusted(&path["name"]);
                let full = if name.starts_with(b"/") {
                    normalize(&name)
                } else {
                    let cwd = untrusted(&ev.first("CWD").expect("CWD record")["cwd"]);
                    normalize(&[cwd.as_slice(), b"/", &name].concat())
                };
                let e = v.files.entry(full).or_default();
                e.0 += 1;
                e.1 += failed;
            }
            // Audit writes EXECVE records for successful execs only.
            59 | 322 if failed == 0 => {
                let mut fields: HashMap<String, String> = HashMap::new();
                for r in ev.all("EXECVE") {
                    fields.extend(r.clone());
                }
                let argc: usize = fields["argc"].parse().unwrap();
                let argv: Vec<Vec<u8>> = (0..argc)
                    .map(|i| match fields.get(&format!("a{i}")) {
                        Some(a) => untrusted(a),
                        // Long arguments come in pieces: a0[0]=.. a0[1]=..
                        None => {
                            (0..).map_while(|j| fields.get(&format!("a{i}[{j}]"))).flat_map(|p| untrusted(p)).collect()
                        }
                    })
                    .collect();
                *v.commands.entry(argv.join(&0u8)).or_default() += 1;
            }
            42 => {
                let sa = untrusted(&ev.first("SOCKADDR").expect("SOCKADDR record")["saddr"]);
                let peer = match u16::from_le_bytes([sa[0], sa[1]]) {
                    2 => format!("{}.{}.{}.{}:{}", sa[4], sa[5], sa[6], sa[7], u16::from_be_bytes([sa[2], sa[3]]))
                        .into_bytes(),
                    10 => {
                        let a: [u8; 16] = sa[8..24].try_into().unwrap();
                        format!("{}:{}", std::net::Ipv6Addr::from(a), u16::from_be_bytes([sa[2], sa[3]])).into_bytes()
                    }
                    1 => {
                        let path = &sa[2..];
                        let path =
                            if path.first() == Some(&0) { path } else { path.split(|&b| b == 0).next().unwrap() };
                        [b"unix:".as_slice(), path].concat()
                    }
                    f => panic!("family {f}"),
                };
                let e = v.connections.entry(peer).or_default();
                e.0 += 1;
                e.1 += failed;
            }
            _ => {}
        }
    }
    v
}

/// `tracer report --auid` of `session` while auditd records it too: the report and what
/// auditd logged, once its log holds as many calls as the tracer counted.
fn with_auditd(audit: &Audit, names: &HashMap<(bool, u32), String>, session: &[OsString]) -> (Value, AuditView) {
    let lost_before = audit.inner.lost();
    let o = report(&["--auid", &audit.auid.to_string(), "--format", "json"], session);
    let r = json_report(&o);
    assert_eq!(r["lost_events"], 0);
    let tracer_total: u64 = syscall_counts(&r).values().sum();
    // auditd writes asynchronously, and slowly on a loaded machine: wait until its log holds
    // the whole session (at once when all is well).
    let deadline = Instant::now() + Duration::from_secs(60);
    let view = loop {
        let v = audit_view(&audit.key, audit.auid, names);
        if v.syscalls.values().sum::<u64>() >= tracer_total || Instant::now() > deadline {
            break v;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    let lost_after = audit.inner.lost();
    assert_eq!(lost_before, lost_after, "the kernel dropped audit records: the comparison would be meaningless");
    (r, view)
}

#[test]
fn agrees_with_auditd() {
    const AUID: u32 = 7105;
    let dir = TempDir::new("rep-audit");
    let d = dir.path().as_os_str().as_bytes();
    std::fs::write(dir.path().join("f"), "x").unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "x").unwrap();
    std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let audit = Audit::start(AUID);
    let names = ausyscall_names();
    let chdir = [b"chdir:".as_slice(), d].concat();
    let opens = [b"open-n:20:".as_slice(), d, b"/f"].concat();
    let denied = [b"open:".as_slice(), secret.as_os_str().as_bytes()].concat();
    // A scripted login session: loginuid set, privileges dropped, then the work.
    let session = as_user(
        AUID,
        &[
            &chdir,
            &opens,
            b"open:f",
            b"open:./sub/../f",
            &denied,
            b"open:/nonexistent/x",
            b"create:new",
            b"openat2:new",
            b"exec-n:4:/bin/true",
            b"connect-n:3:127.0.0.1:9",
            b"connect:[::1]:9",
            b"--",
            b"/bin/echo",
            b"hello",
            b"world",
        ],
    );
    let (r, view) = with_auditd(&audit, &names, &session);
    drop(audit);

    // Per-syscall counts agree exactly, the write(2) that set the loginuid included: both
    // tools attribute a call at its exit. Syscalls the workload made before that are
    // neither tool's 7105; the harness (auditctl, the tracer itself) never runs as 7105.
    assert_eq!(view.login_writes, 1, "one LOGIN event");
    assert_eq!(syscall_counts(&r), view.syscalls, "tracer (left) vs auditd (right) syscall counts");
    for s in ["openat", "openat2", "creat", "execve", "connect", "exit_group", "setuid"] {
        assert!(view.syscalls.contains_key(s), "{s} in the session");
    }
    // Files: auditd's PATH records, made absolute with CWD, with failures.
    let files = section(&r, "files");
    assert_eq!(files, view.files, "tracer (left) vs auditd (right) files");
    let f = [d, b"/f"].concat();
    // 20 + "f" + "./sub/../f"; the last fails (there is no sub/) yet both tools name it f.
    assert_eq!(files[&f], (22, 1));
    assert_eq!(files[secret.as_os_str().as_bytes()], (1, 1));
    // Commands: auditd logs successful execs only; the tracer marks failed ones.
    let commands: BTreeMap<Vec<u8>, u64> =
        section(&r, "commands").into_iter().filter(|(_, c)| c.0 > c.1).map(|(k, c)| (k, c.0 - c.1)).collect();
    assert_eq!(commands, view.commands, "tracer (left) vs auditd (right) commands");
    assert_eq!(commands[b"/bin/echo\0hello\0world".as_slice()], 1);
    assert_eq!(commands[b"/bin/true".as_slice()], 4);
    // Connections, from SOCKADDR records.
    let conns = section(&r, "connections");
    assert_eq!(conns[b"::1:9".as_slice()], (1, 1));
    assert_eq!(conns, view.connections, "tracer (left) vs auditd (right) connections");
}

/// `tests/tests/i386/signals.c` built as a static i386 program (no 32-bit libc needed).
fn build_signals32(dir: &Path) -> std::path::PathBuf {
    build_i386("signals", &dir.join("signals32"), &[])
}

/// Calls whose saved number the kernel rewrites before their exit, counted under the
/// number they were entered with, as audit does: rt_sigreturn (64-bit), i386 sigreturn and
/// rt_sigreturn, execveat, and execs across ABIs (64-bit execve of an i386 program, i386
/// execve of a 64-bit one); 32-bit calls named from audit's i386 table.
#[test]
fn agrees_with_auditd_on_signals_execs_and_32_bit_calls() {
    // No other test runs as this login UID (auditd's rule sees the whole machine).
    const AUID: u32 = 7117;
    let dir = TempDir::new("rep-audit32");
    let prog = build_signals32(dir.path());
    let audit = Audit::start(AUID);
    let names = ausyscall_names();
    let session = as_user(
        AUID,
        &[b"signals:12", b"execveat-n:5:/bin/true", b"exec-n:2:/bin/true", b"--", prog.as_os_str().as_bytes()],
    );
    let (r, view) = with_auditd(&audit, &names, &session);
    drop(audit);
    let sc = syscall_counts(&r);
    assert_eq!(sc, view.syscalls, "tracer (left) vs auditd (right) syscall counts");
    // What the session did, by audit's names (the tables agree with auditd's above).
    let want = [
        ("rt_sigreturn", 12),
        ("kill", 12),
        ("execveat", 5),
        // 2 forks + exec of the i386 program (entered as x86_64 execve).
        ("execve", 3),
        ("sigreturn (i386)", 5),
        ("rt_sigreturn (i386)", 6),
        ("kill (i386)", 11),
        ("getpid (i386)", 8),
        ("open (i386)", 6),
        ("rt_sigaction (i386)", 2),
        // The i386 program's exec of /bin/true (a 64-bit program).
        ("execve (i386)", 1),
    ];
    for (name, n) in want {
        assert_eq!(sc.get(name), Some(&n), "{name}: {sc:?}");
    }
    assert!(sc.keys().all(|k| !k.starts_with("unknown-syscall")), "{sc:?}");
}
