//! `tracer trace` end to end: the real programs on the running kernel, watching the
//! `workload` program run as login UID 7005 with uid/gid 7005.
// Every test crate gets the whole dev-dependency list; each uses part of it.
#![allow(unused_crate_dependencies)]

use std::{
    ffi::OsString,
    io::Read,
    net::{SocketAddr, TcpListener},
    os::unix::{ffi::OsStrExt, net::UnixListener},
    process::Command,
};

use serde_json::Value;
use tracer_tests::*;

const W: &str = env!("CARGO_BIN_EXE_workload");

fn as_7005(ops: &[&[u8]]) -> Vec<OsString> {
    let mut args: Vec<&[u8]> = vec![b"--loginuid", b"7005", b"--ids", b"7005:7005"];
    args.extend_from_slice(ops);
    workload_cmd(W, &args)
}

fn assert_identity(e: &Value) {
    assert_eq!(e["auid"], 7005, "{e}");
    assert_eq!(e["uid"], 7005, "{e}");
    assert_eq!(e["gid"], 7005, "{e}");
    assert_eq!(e["euid"], 7005, "{e}");
    assert!(e["ses"].is_number() || e["ses"] == "unset", "{e}");
    assert!(e["mntns"].as_u64().unwrap() > 0, "{e}");
    assert_eq!(e["chrooted"], false, "{e}");
    assert!(e["ppid"].as_u64().unwrap() > 0, "{e}");
    assert!(e["time"].as_str().unwrap().ends_with('Z'), "{e}");
}

#[test]
fn exact_counts_of_opens_execs_connects_nothing_lost() {
    let dir = TempDir::new("counts");
    let file = dir.path().join("target-file");
    std::fs::write(&file, "x").unwrap();
    let open_op = [b"open-n:400:".as_slice(), file.as_os_str().as_bytes()].concat();
    let t = trace_json(&["--auid", "7005"], &as_7005(&[&open_op, b"exec-n:60:/bin/true", b"connect-n:70:127.0.0.1:9"]));
    assert!(t.output.status.success(), "{}", t.stderr());
    assert_eq!(t.lost(), 0);
    let file_bytes = file.as_os_str().as_bytes();
    let opens: Vec<_> = t.of_kind("open").into_iter().filter(|e| bytes_of(&e["path"]) == file_bytes).collect();
    assert_eq!(opens.len(), 400, "every open of the file is reported once");
    for e in &opens {
        assert_identity(e);
        assert!(e["ret"].as_i64().unwrap() >= 0);
        assert_eq!(e["comm"], "workload");
        assert!(e["exe"].as_str().unwrap().ends_with("/workload"), "{e}");
    }
    let execs: Vec<_> = t.of_kind("exec").into_iter().filter(|e| e["filename"] == "/bin/true").collect();
    assert_eq!(execs.len(), 60);
    for e in &execs {
        assert_identity(e);
        assert_eq!(e["ret"], 0);
        assert_eq!(e["argv"], serde_json::json!(["/bin/true"]));
        assert_eq!(e["comm"], "true");
    }
    let connects: Vec<_> = t.of_kind("connect").into_iter().filter(|e| e["port"] == 9).collect();
    assert_eq!(connects.len(), 70);
    for e in &connects {
        assert_identity(e);
        assert_eq!(e["family"], "inet");
        assert_eq!(e["address"], "127.0.0.1");
        assert_eq!(e["error"], "ECONNREFUSED");
        assert_eq!(e["ret"], -111);
    }
}

#[test]
fn argv_of_a_hundred_arguments_is_complete() {
    let mut args: Vec<Vec<u8>> = vec![b"--".to_vec(), b"/bin/echo".to_vec()];
    for i in 0..100 {
        args.push(format!("arg-{i}-{}", "x".repeat(i)).into_bytes());
    }
    args.push(b"with space".to_vec());
    args.push(b"new\nline".to_vec());
    args.push(b"bad\xffutf8".to_vec());
    args.push(b"".to_vec());
    let refs: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
    let t = trace_json(&["--auid", "7005"], &as_7005(&refs));
    assert!(t.output.status.success(), "{}", t.stderr());
    let e = t.of_kind("exec").into_iter().find(|e| e["filename"] == "/bin/echo").expect("exec of echo");
    let argv: Vec<Vec<u8>> = e["argv"].as_array().unwrap().iter().map(bytes_of).collect();
    assert_eq!(argv, args[1..].to_vec());
    assert_eq!(e["argv_truncated"], false);
    assert_identity(e);
}

#[test]
fn long_command_line_is_flagged_truncated_not_cut_silently() {
    let big = "y".repeat(100_000);
    let t = trace_json(&[], &workload_cmd(W, &[b"--", b"/bin/true", big.as_bytes()]));
    let e = t.of_kind("exec").into_iter().find(|e| e["filename"] == "/bin/true").expect("exec");
    assert_eq!(e["argv_truncated"], true);
    let a1 = e["argv"][1].as_str().unwrap();
    assert!(a1.len() >= 32 * 1024 && big.starts_with(a1), "at least 32 KiB of argv kept, got {}", a1.len());
}

/// A failed exec's argument longer than the kernel copies of one (PATH_MAX) is cut: the
/// event says so instead of passing the cut argument off as the whole.
#[test]
fn failed_exec_with_a_cut_argument_is_flagged_truncated() {
    let long = "z".repeat(5000);
    let t = trace_json(&[], &workload_cmd(W, &[b"--", b"/nonexistent/prog", long.as_bytes(), b"after"]));
    let e = t.of_kind("exec").into_iter().find(|e| e["filename"] == "/nonexistent/prog").expect("failed exec");
    assert_eq!(e["error"], "ENOENT");
    assert_eq!(e["argv_truncated"], true, "{e}");
    let a1 = e["argv"][1].as_str().unwrap();
    assert!(a1.len() < long.len() && long.starts_with(a1), "{}", a1.len());
}

/// argc is the count the program got (or passed, for a failed exec), also when argv was
/// too long to carry whole: JSON `argc` and audit's EXECVE `argc=`.
#[test]
fn argc_is_the_real_count_when_argv_is_cut() {
    let arg = "a".repeat(400);
    for (prog, n) in [(b"/bin/true".as_slice(), 3000usize), (b"/nonexistent/prog".as_slice(), 200)] {
        let mut cmd: Vec<&[u8]> = vec![b"--", prog];
        cmd.extend(std::iter::repeat_n(arg.as_bytes(), n));
        let t = trace_json(&[], &workload_cmd(W, &cmd));
        let name = std::str::from_utf8(prog).unwrap();
        let e = t.of_kind("exec").into_iter().find(|e| e["filename"] == name).expect("exec");
        assert_eq!(e["argv_truncated"], true, "{name}");
        assert!(e["argv"].as_array().unwrap().len() < n + 1, "{name}: argv was cut");
        assert_eq!(e["argc"], n + 1, "{name}");
    }
    let dir = TempDir::new("argc");
    let log = dir.file("audit.log");
    let mut cmd: Vec<&[u8]> = vec![b"--", b"/bin/true"];
    cmd.extend(std::iter::repeat_n(arg.as_bytes(), 3000));
    let out = Command::new(tracer_bin())
        .args(["trace", "--format", "audit", "--output"])
        .arg(&log)
        .arg("--")
        .args(workload_cmd(W, &cmd))
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.lines().any(|l| l.starts_with("type=EXECVE ") && l.contains("): argc=3001 ")), "audit argc");
}

#[test]
fn failed_exec_is_reported_with_filename_argv_and_error() {
    let t = trace_json(&["--auid", "7005"], &as_7005(&[b"--", b"/nonexistent/prog", b"first arg", b"second"]));
    let e = t.of_kind("exec").into_iter().find(|e| e["filename"] == "/nonexistent/prog").expect("failed exec");
    assert_eq!(e["error"], "ENOENT");
    assert_eq!(e["ret"], -2);
    assert_eq!(e["argv"], serde_json::json!(["/nonexistent/prog", "first arg", "second"]));
    assert_eq!(e["argv_truncated"], false);
    assert_identity(e);
    // The failing process is still the workload's child, not yet another image.
    assert_eq!(e["comm"], "workload");
}

#[test]
fn relative_opens_resolve_against_cwd_and_dirfd() {
    let dir = TempDir::new("rel");
    std::fs::create_dir_all(dir.path().join("sub/deeper")).unwrap();
    std::fs::write(dir.path().join("sub/deeper/f"), "x").unwrap();
    let d = dir.path().as_os_str().as_bytes();
    let chdir = [b"chdir:".as_slice(), d].concat();
    let openat = [b"openat:".as_slice(), d, b"/sub:./deeper/../deeper/f"].concat();
    let t = trace_json(
        &["--auid", "7005"],
        &as_7005(&[
            &chdir,
            b"open:sub/./deeper/f",
            b"open:sub/../missing",
            b"openat2:sub/deeper/f",
            &openat,
            b"create:new-file",
        ]),
    );
    assert!(t.output.status.success(), "{}", t.stderr());
    let paths: Vec<(Vec<u8>, i64)> = t
        .of_kind("open")
        .into_iter()
        .filter(|e| e["comm"] == "workload")
        .map(|e| (bytes_of(&e["path"]), e["ret"].as_i64().unwrap()))
        .collect();
    let f = [d, b"/sub/deeper/f"].concat();
    let want = |p: &[u8], ok: bool| paths.iter().any(|(q, r)| q == p && (*r >= 0) == ok);
    assert!(want(&f, true), "cwd-relative open resolved: {paths:?}");
    assert!(want(&[d, b"/missing"].concat(), false), "failing relative open resolved: {paths:?}");
    assert_eq!(
        paths.iter().filter(|(q, r)| *q == f && *r >= 0).count(),
        3,
        "open, openat2 and dirfd-relative openat: {paths:?}"
    );
    assert!(want(&[d, b"/new-file"].concat(), true), "creat: {paths:?}");
    let e = t.of_kind("open").into_iter().find(|e| e["name"] == "./deeper/../deeper/f").expect("openat");
    assert_eq!(bytes_of(&e["path"]), f);
    assert_eq!(e["syscall"], 257);
}

#[test]
fn failing_opens_report_errno() {
    let dir = TempDir::new("fail");
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "x").unwrap();
    std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let op = [b"open:".as_slice(), secret.as_os_str().as_bytes()].concat();
    let t = trace_json(&["--auid", "7005"], &as_7005(&[&op, b"open:/nonexistent/x"]));
    let by_path = |p: &[u8]| t.of_kind("open").into_iter().find(|e| bytes_of(&e["path"]) == p).cloned().expect("event");
    let e = by_path(secret.as_os_str().as_bytes());
    assert_eq!(e["error"], "EACCES");
    assert_eq!(e["ret"], -13);
    let e = by_path(b"/nonexistent/x");
    assert_eq!(e["error"], "ENOENT");
}

#[test]
fn connects_inet_inet6_unix_with_results() {
    let v4 = TcpListener::bind("127.0.0.1:0").unwrap();
    let v4port = v4.local_addr().unwrap().port();
    let v6 = TcpListener::bind("[::1]:0").unwrap();
    let v6port = v6.local_addr().unwrap().port();
    let dir = TempDir::new("unix");
    let sock = dir.path().join("s.sock");
    let _ul = UnixListener::bind(&sock).unwrap();
    // connect(2) needs write permission on the socket file; the workload runs as 7005.
    std::fs::set_permissions(&sock, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let ops: Vec<Vec<u8>> = vec![
        format!("connect:127.0.0.1:{v4port}").into_bytes(),
        format!("connect:127.0.0.1:{closed}").into_bytes(),
        format!("connect:[::1]:{v6port}").into_bytes(),
        format!("connect:[::ffff:127.0.0.1]:{v4port}").into_bytes(),
        [b"unix:".as_slice(), sock.as_os_str().as_bytes()].concat(),
        b"abstract:tracer-test-abstract".to_vec(),
    ];
    let refs: Vec<&[u8]> = ops.iter().map(Vec::as_slice).collect();
    let t = trace_json(&["--auid", "7005"], &as_7005(&refs));
    let c = t.of_kind("connect");
    let find = |f: &dyn Fn(&&Value) -> bool| {
        c.iter().find(|e| f(e)).copied().unwrap_or_else(|| panic!("missing connect in {c:?}"))
    };
    let e = find(&|e| e["address"] == "127.0.0.1" && e["port"] == v4port);
    assert_eq!(e["ret"], 0);
    assert_identity(e);
    let e = find(&|e| e["port"] == closed);
    assert_eq!(e["error"], "ECONNREFUSED");
    let e = find(&|e| e["address"] == "::1");
    assert_eq!(
        (e["family"].as_str(), e["port"].as_u64(), e["ret"].as_i64()),
        (Some("inet6"), Some(u64::from(v6port)), Some(0))
    );
    let e = find(&|e| e["address"] == "::ffff:127.0.0.1");
    assert_eq!(e["family"], "inet6");
    assert_eq!(e["ret"], 0);
    let e = find(&|e| e["family"] == "unix" && bytes_of(&e["path"]) == sock.as_os_str().as_bytes());
    assert_eq!(e["ret"], 0);
    let e = find(&|e| e["family"] == "unix" && bytes_of(&e["path"]).starts_with(b"\0"));
    assert_eq!(bytes_of(&e["path"]), b"\0tracer-test-abstract");
    assert_eq!(e["error"], "ECONNREFUSED");
    drop((v4, v6));
}

#[test]
fn hostile_file_names_round_trip_exactly() {
    let dir = TempDir::new("names");
    let names: [&[u8]; 5] = [b"with space", b"new\nline", b"quo\"te", b"bad\xff\xfeutf8", b"back\\slash \\udcff"];
    let mut ops = Vec::new();
    for n in names {
        let p = [dir.path().as_os_str().as_bytes(), b"/", n].concat();
        std::fs::write(std::ffi::OsStr::from_bytes(&p), "x").unwrap();
        ops.push([b"open:".as_slice(), &p].concat());
    }
    let refs: Vec<&[u8]> = ops.iter().map(Vec::as_slice).collect();
    let t = trace_json(&["--auid", "7005"], &as_7005(&refs));
    let got: Vec<Vec<u8>> = t.of_kind("open").into_iter().map(|e| bytes_of(&e["path"])).collect();
    for op in &ops {
        let want = &op[5..];
        assert!(got.iter().any(|g| g == want), "{:?} not reported exactly in {got:?}", String::from_utf8_lossy(want));
    }
    // Text output escapes them: one event per line, whatever the name.
    let out =
        Command::new(tracer_bin()).args(["trace", "--format", "text", "--"]).args(as_7005(&refs)).output().unwrap();
    let text = String::from_utf8(out.stdout).expect("text output is UTF-8");
    let lines: Vec<&str> =
        text.lines().filter(|l| l.contains(" open ") && l.contains(dir.path().to_str().unwrap())).collect();
    assert_eq!(lines.len(), names.len(), "{text}");
    assert!(lines.iter().any(|l| l.contains("new\\nline")));
    assert!(lines.iter().any(|l| l.contains("bad\\xff\\xfeutf8")));
}

#[test]
fn exit_status_of_the_command_is_passed_through() {
    let t = trace_json(&[], &[OsString::from("sh"), OsString::from("-c"), OsString::from("exit 7")]);
    assert_eq!(t.output.status.code(), Some(7));
    let out = Command::new(tracer_bin()).args(["trace", "--", "/nonexistent-command"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("command not found"));
}

#[test]
fn only_the_command_tree_and_never_the_tracer() {
    // A concurrent process outside the tree must not appear.
    let mut outsider = Command::new("sh")
        .args(["-c", "for i in $(seq 50); do cat /etc/hostname >/dev/null; sleep 0.02; done"])
        .spawn()
        .unwrap();
    let t = trace_json(&[], &workload_cmd(W, &[b"open-n:20:/etc/hostname", b"sleep:300", b"exec-n:3:/bin/true"]));
    outsider.wait().unwrap();
    let me = u64::from(std::process::id());
    for e in &t.events {
        assert_ne!(e["comm"], "cat", "outsider leaked: {e}");
        assert_ne!(e["comm"], "tracer", "the tracer reported itself: {e}");
        assert_ne!(e["pid"], me);
    }
    assert_eq!(t.of_kind("exec").iter().filter(|e| e["filename"] == "/bin/true").count(), 3);
}

#[test]
fn pid_filter_follows_descendants_through_fork() {
    let dir = TempDir::new("pid");
    let go = dir.path().join("go");
    let script = format!(
        "while [ ! -e {0} ]; do sleep 0.05; done; sh -c 'cat /etc/hostname > /dev/null'; echo done > {0}.done",
        go.display()
    );
    let mut target = Command::new("sh").args(["-c", &script]).spawn().unwrap();
    let out = dir.path().join("ev.json");
    let mut tracer = Command::new(tracer_bin())
        .args(["trace", "--format", "json", "--pid", &target.id().to_string(), "--output"])
        .arg(&out)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Attached once the target's polling `sleep`s show up (exec is attached last, after the
    // syscall hooks): a fixed wait lost the race on a loaded machine.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let sleeps_seen = || {
        let b = std::fs::read(&out).unwrap_or_default();
        let complete = &b[..b.iter().rposition(|&c| c == b'\n').map_or(0, |i| i + 1)];
        parse_json_lines(complete).iter().any(|e| e["event"] == "exec" && e["comm"] == "sleep")
    };
    while !sleeps_seen() {
        assert!(std::time::Instant::now() < deadline, "the tracer never reported the target's sleeps");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::fs::write(&go, "").unwrap();
    target.wait().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    // SAFETY: kill takes plain integers; the tracer is our child, not yet reaped.
    unsafe { libc::kill(tracer.id() as i32, libc::SIGINT) };
    let status = tracer.wait().unwrap();
    let mut err = String::new();
    tracer.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(status.success(), "{err}");
    let events = parse_json_lines(&std::fs::read(&out).unwrap());
    let cat = events.iter().find(|e| e["event"] == "exec" && e["comm"] == "cat").expect("grandchild's exec seen");
    assert_eq!(cat["argv"], serde_json::json!(["cat", "/etc/hostname"]));
    assert!(events.iter().any(|e| e["event"] == "open" && e["path"] == "/etc/hostname" && e["comm"] == "cat"));
    assert!(err.contains(" 0 lost"), "{err}");
}

#[test]
fn comm_and_uid_filters_apply_in_kernel() {
    let t = trace_json(&["--comm", "true"], &as_7005(&[b"exec-n:2:/bin/true", b"open:/etc/hostname"]));
    assert!(!t.events.is_empty());
    assert!(t.events.iter().all(|e| e["comm"] == "true"), "{:?}", t.events);
    let t = trace_json(&["--uid", "0"], &as_7005(&[b"open:/etc/hostname"]));
    assert!(t.events.iter().all(|e| e["uid"] == 0), "uid 7005 events leaked");
    // Several names: any of them, and only them (sh's events are left out).
    let t = trace_json(
        &["--comm", "true", "--comm", "workload"],
        &as_7005(&[b"exec-n:2:/bin/true", b"exec-n:1:/bin/sh", b"open:/etc/hostname"]),
    );
    assert!(t.events.iter().all(|e| e["comm"] == "true" || e["comm"] == "workload"), "{:?}", t.events);
    assert!(t.events.iter().any(|e| e["comm"] == "true"));
    assert!(t.events.iter().any(|e| e["comm"] == "workload" && e["event"] == "open"));
}

#[test]
fn bad_input_exits_2_with_a_clear_error() {
    for args in [
        vec!["trace", "--auid", "bob"],
        vec!["trace", "--comm", "this-name-is-far-too-long"],
        vec!["trace", "--format", "yaml"],
        vec!["trace", "--buffer-size", "3"],
    ] {
        let out = Command::new(tracer_bin()).args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!out.stderr.is_empty());
    }
    let out =
        Command::new(tracer_bin()).args(["trace", "--output", "/nonexistent/dir/x", "--", "true"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/dir/x"));
}

#[test]
fn not_root_is_a_clear_error() {
    assert!(is_root(), "the suite runs as root (CI does)");
    let out = Command::new("setpriv")
        .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .arg(tracer_bin())
        .args(["trace", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("root"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn durations_that_overflow_are_usage_errors_not_panics() {
    for d in ["99999999999999999999h", "1e400s", "-5s", "5d"] {
        for cmd in ["trace", "report"] {
            let arg = format!("--duration={d}");
            let out = Command::new(tracer_bin()).args([cmd, &arg, "--", "true"]).output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{cmd} --duration {d}: {err}");
            assert!(err.contains(d) && !err.contains("panicked"), "{cmd} --duration {d}: {err}");
        }
    }
}

#[allow(dead_code)]
fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn loss_is_counted_and_shown_never_silent() {
    // The reader stalls (stdout is a pipe nobody reads for 2 s), the 1 MiB ring buffer
    // fills, and every record the kernel could not reserve must be counted.
    let dir = TempDir::new("loss");
    let file = dir.path().join("f");
    std::fs::write(&file, "x").unwrap();
    const N: u64 = 200_000;
    let op = [format!("open-n:{N}:").as_bytes(), file.as_os_str().as_bytes()].concat();
    let mut tracer = Command::new(tracer_bin())
        .args(["trace", "--format", "json", "--buffer-size", "1", "--"])
        .args(workload_cmd(W, &[&op]))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(2));
    let mut out = Vec::new();
    tracer.stdout.take().unwrap().read_to_end(&mut out).unwrap();
    let mut err = String::new();
    tracer.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(tracer.wait().unwrap().success(), "{err}");
    let events = parse_json_lines(&out);
    let seen =
        events.iter().filter(|e| e["event"] == "open" && bytes_of(&e["path"]) == file.as_os_str().as_bytes()).count()
            as u64;
    let lost = lost_in(&err);
    assert!(lost > 0, "the stalled reader must have caused loss: {err}");
    assert!(seen < N, "{seen}");
    // Every open of the file is either reported or counted as lost (the few other records
    // of the workload's start-up are the only slack).
    assert!(seen + lost >= N && seen + lost <= N + 50, "seen {seen} + lost {lost} vs {N}");
    assert!(err.contains("events lost so far"), "a warning as soon as loss happens: {err}");
}

#[test]
fn kernel_fields_a_kernel_lacks_degrade_to_unknown_never_a_load_failure() {
    // As if the kernel had no loginuid (no CONFIG_AUDIT), no mount-namespace inode, no
    // fs_struct.root and no credentials: the programs still load and events still flow.
    let dir = TempDir::new("forget");
    let file = dir.path().join("events.json");
    let out = Command::new(tracer_bin())
        .env("TRACER_FORGET_FIELDS", "task_struct.loginuid,mnt_namespace.ns.inum,fs_struct.root,task_struct.cred")
        .args(["trace", "--format", "json", "--output"])
        .arg(&file)
        .args(["--", "cat", "/etc/hostname"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("kernel lacks task_struct.loginuid"), "a warning names each field: {err}");
    let events = parse_json_lines(&std::fs::read(&file).unwrap());
    let open = events.iter().find(|e| e["event"] == "open" && e["path"] == "/etc/hostname").expect("events still flow");
    assert_eq!(open["auid"], Value::Null, "unknown, not unset: {open}");
    assert_eq!(open["ses"], Value::Null);
    assert_eq!(open["mntns"], Value::Null);
    assert_eq!(open["chrooted"], Value::Null);
    assert_eq!(open["euid"], u32::MAX, "creds unknown: {open}");
    assert!(open["pid"].as_u64().unwrap() > 0);
    // A field every event needs is refused up front, with exit 2.
    let out = Command::new(tracer_bin())
        .env("TRACER_FORGET_FIELDS", "task_struct.tgid")
        .args(["trace", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("task_struct.tgid"));
}

/// `sh -c SCRIPT` in a private mount namespace, so what it mounts or hides stays there.
fn in_private_mounts(script: &str) -> std::process::Output {
    Command::new("unshare").args(["-m", "--propagation", "private", "sh", "-c", script]).output().unwrap()
}

#[test]
fn missing_btf_is_a_clear_error() {
    let out = in_private_mounts(&format!(
        "mount -t tmpfs none /sys/kernel/btf && exec {} trace -- true",
        tracer_bin().display()
    ));
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("BTF"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn tracefs_is_mounted_when_missing() {
    // A fresh machine has no tracefs mounted: the tracer mounts it and traces.
    let script = format!(
        "umount /sys/kernel/tracing 2>/dev/null; umount /sys/kernel/debug/tracing 2>/dev/null; umount /sys/kernel/debug 2>/dev/null; \
         test ! -e /sys/kernel/tracing/events || exit 90; \
         {} trace --format json -- cat /etc/hostname >/dev/null || exit 91; \
         test -d /sys/kernel/tracing/events || exit 92",
        tracer_bin().display()
    );
    let out = in_private_mounts(&script);
    assert!(out.status.success(), "status {:?}: {}", out.status.code(), String::from_utf8_lossy(&out.stderr));
}

/// `TRACER_PROG_STATS=1`: the kernel times every program run and the closing lines say how
/// often each program ran; the families' tail-called programs count in `raw_sys_exit`'s runs.
#[test]
fn prog_stats_count_every_program_run() {
    let dir = TempDir::new("progstats");
    let file = dir.path().join("f");
    std::fs::write(&file, "x").unwrap();
    let open_op = [b"open-n:300:".as_slice(), file.as_os_str().as_bytes()].concat();
    let out = Command::new(tracer_bin())
        .env("TRACER_PROG_STATS", "1")
        .args(["trace", "--auid", "7005", "--format", "json", "--output", "/dev/null", "--"])
        .args(as_7005(&[&open_op]))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let runs = |prog: &str| -> Option<(u64, u64)> {
        let line = stderr.lines().find(|l| l.starts_with(&format!("tracer: program {prog}: ")))?;
        let num = |k: &str| line.split(&format!("{k}=")).nth(1)?.split_whitespace().next()?.parse::<u64>().ok();
        Some((num("runs")?, num("run_ns")?))
    };
    let (n, ns) = runs("raw_sys_exit").unwrap_or_else(|| panic!("no raw_sys_exit line: {stderr}"));
    // 300 opens and their closes at least, each one exit.
    assert!(n >= 600 && ns > 0, "{stderr}");
    assert!(runs("exit_open").is_none(), "a tail-called program has no runs of its own: {stderr}");
    // Without the variable, nothing is counted or printed.
    let t = trace_json(&["--auid", "7005"], &as_7005(&[&open_op]));
    assert!(!t.stderr().contains("tracer: program "), "{}", t.stderr());
}
