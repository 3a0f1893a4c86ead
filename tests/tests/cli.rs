//! The command line's edges: output files, signals, pipes and bad arguments, each as a user
//! meets them with the real binary.
// Every test crate gets the whole dev-dependency list; each uses part of it.
#![allow(unused_crate_dependencies)]

use std::{
    io::{BufRead, BufReader},
    os::unix::fs::PermissionsExt,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use tracer_tests::*;

fn tracer() -> Command {
    Command::new(tracer_bin())
}

fn kill(pid: u32, sig: i32) {
    // SAFETY: kill takes plain integers.
    unsafe { libc::kill(pid as i32, sig) };
}

/// Any process whose command line holds ARG.
fn running_with_arg(arg: &str) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
        std::fs::read(e.path().join("cmdline")).is_ok_and(|c| c.split(|&b| b == 0).any(|a| a == arg.as_bytes()))
    })
}

#[test]
fn output_is_appended_created_0600_and_untouched_when_the_command_is_bad() {
    let dir = TempDir::new("append");
    let f = dir.file("keep.txt");
    std::fs::write(&f, "kept line\n").unwrap();
    let out = tracer().args(["trace", "--output"]).arg(&f).args(["--", "/nonexistent/cmd"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read_to_string(&f).unwrap(), "kept line\n", "a refused run leaves the file alone");
    let out = tracer().args(["trace", "--format", "json", "--output"]).arg(&f).args(["--", "true"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&f).unwrap();
    assert!(text.starts_with("kept line\n") && text.contains("\"exec\""), "appended, not truncated: {text}");

    let new = dir.file("new.json");
    let out = tracer().args(["trace", "--output"]).arg(&new).args(["--", "true"]).output().unwrap();
    assert!(out.status.success());
    assert_eq!(std::fs::metadata(&new).unwrap().permissions().mode() & 0o777, 0o600);
}

#[test]
fn sighup_ends_a_trace_with_its_summary() {
    let dir = TempDir::new("hup");
    for with_command in [false, true] {
        let f = dir.file(&format!("hup-{with_command}.txt"));
        let mut cmd = tracer();
        cmd.args(["trace", "--output"]).arg(&f).stderr(Stdio::piped());
        if with_command {
            cmd.args(["--", "sleep", "30"]);
        } else {
            cmd.args(["--duration", "30s"]);
        }
        let mut child = cmd.spawn().unwrap();
        // The output file is opened once the programs are attached.
        let end = Instant::now() + Duration::from_secs(20);
        while !f.exists() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(300));
        kill(child.id(), libc::SIGHUP);
        let st = wait_exit(&mut child, 60);
        let mut err = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
        // With a command: its own status (killed by SIGHUP: 128+1); without: a clean end.
        assert_eq!(st.code(), Some(if with_command { 129 } else { 0 }), "{st:?} {err}");
        assert_eq!(lost_in(&err), 0, "the closing counts are written: {err}");
    }
}

#[test]
fn a_closed_pipe_ends_the_trace_quietly_with_status_0() {
    let mut child =
        tracer().args(["trace", "--duration", "60s"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut first = String::new();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    // Events of this machine; make some in case it is idle.
    let poke = std::thread::spawn(|| {
        for _ in 0..50 {
            let _ = std::fs::read("/etc/hostname");
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    stdout.read_line(&mut first).unwrap();
    assert!(!first.is_empty());
    drop(stdout); // as `| head -1` does
    let st = wait_exit(&mut child, 20);
    poke.join().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert_eq!(st.code(), Some(0), "{err}");
    assert!(!err.contains("error"), "{err}");
}

#[test]
fn a_failing_output_exits_2_naming_it_and_the_command_does_not_run_on_untraced() {
    let marker = format!("{}.{}", 300 + uniq(), std::process::id());
    let mut child = tracer()
        .args(["trace", "--output", "/dev/full", "--", "sleep", &marker])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let st = wait_exit(&mut child, 20);
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert_eq!(st.code(), Some(2), "{err}");
    assert!(err.contains("/dev/full") && err.contains("killed"), "{err}");
    assert!(!running_with_arg(&marker), "the traced command was stopped");
}

#[test]
fn pids_that_trace_nothing_or_everything_and_an_empty_command_are_refused() {
    assert!(!std::path::Path::new("/proc/999999").exists());
    for args in [
        vec!["trace", "--pid", "999999"],
        vec!["trace", "--pid", "0"],
        vec!["trace", "--pid", "1,999999"],
        vec!["trace", "--"],
        vec!["report", "--"],
        vec!["trace", "--uid", "no-such-user-here"],
        vec!["trace", "--auid", "no-such-user-here"],
    ] {
        let out = tracer().args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(!err.is_empty(), "{args:?}");
    }
}

#[test]
fn users_by_name_and_several_pids() {
    let me = std::process::id().to_string();
    for args in [
        vec!["trace", "--uid", "root", "--duration", "100ms"],
        vec!["trace", "--auid", "root", "--duration", "100ms"],
        vec!["trace", "--pid", &format!("1,{me}"), "--duration", "100ms"],
    ] {
        let out = tracer().args(&args).stdout(Stdio::null()).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

/// `report --input` over rotated sets of JSON and of audit logs (given in shell-glob order)
/// counts every file; a bad audit line is an error naming file and line.
#[test]
fn report_input_reads_rotated_json_and_audit_logs() {
    let dir = TempDir::new("input-set");
    let marker = dir.file("marker");
    std::fs::write(&marker, "x").unwrap();
    let w = env!("CARGO_BIN_EXE_workload");
    let op = format!("open-n:{{}}:{}", marker.display());
    for (file, n) in [("t.log.2", 3), ("t.log.1", 5), ("t.log", 7)] {
        let out = tracer()
            .args(["trace", "--format", "json", "--output"])
            .arg(dir.file(file))
            .args(["--", w, "--loginuid", "7005", &op.replace("{}", &n.to_string())])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let out = tracer()
        .args(["report", "--format", "json", "--auid", "7005", "--input"])
        .args(["t.log", "t.log.1", "t.log.2"].map(|f| dir.file(f)))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let files = v["files"].as_array().unwrap();
    let m = files.iter().find(|f| f["path"] == marker.to_str().unwrap()).expect("marker in the report");
    assert_eq!(m["count"], 15, "3 + 5 + 7 opens from the three files");

    // The same from audit.log records (trace --format audit, the daemon's default format),
    // rotated too: opens, execs and connects.
    for (file, n) in [("a.log.1", 4), ("a.log", 6)] {
        let out = tracer()
            .args(["trace", "--format", "audit", "--output"])
            .arg(dir.file(file))
            .args(["--", w, "--loginuid", "7005", &op.replace("{}", &n.to_string()), "exec-n:2:/bin/true"])
            .args(["connect:127.0.0.1:9"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let out = tracer()
        .args(["report", "--format", "json", "--auid", "7005", "--input"])
        .args(["a.log", "a.log.1"].map(|f| dir.file(f)))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let m = v["files"].as_array().unwrap().iter().find(|f| f["path"] == marker.to_str().unwrap()).expect("marker");
    assert_eq!(m["count"], 10, "{v}");
    let t = v["commands"].as_array().unwrap().iter().find(|c| c["argv"] == serde_json::json!(["/bin/true"]));
    assert_eq!(t.expect("the execs")["count"], 4, "{v}");
    let c = &v["connections"].as_array().unwrap()[0];
    assert_eq!((c["count"].clone(), c["failed"].clone()), (2.into(), 2.into()), "{v}");

    // A line that is not an audit record: FILE:LINE, exit 2, no report.
    let bad = dir.file("bad.log");
    let mut text = std::fs::read_to_string(dir.file("a.log")).unwrap();
    text.push_str("type=SYSCALL garbage\n");
    std::fs::write(&bad, &text).unwrap();
    let out = tracer().args(["report", "--input"]).arg(&bad).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(&format!("{}:{}: ", bad.display(), text.lines().count())), "{err}");
    assert!(out.stdout.is_empty());
}

/// Open flags by name beside the number: JSON `flags_names`, text `flags=0oNNN(NAMES)`.
#[test]
fn open_flags_are_named_in_json_and_text() {
    let dir = TempDir::new("flags");
    let (created, d) = (dir.file("created"), dir.path().to_str().unwrap().to_string());
    let w = env!("CARGO_BIN_EXE_workload");
    let create = format!("create:{}", created.display());
    let openat = format!("openat:{d}:nothere");
    let t = trace_json(&[], &[w.into(), create.clone().into(), openat.clone().into()]);
    assert!(t.output.status.success(), "{}", t.stderr());
    let opens = t.of_kind("open");
    let c = opens.iter().find(|e| e["path"] == created.to_str().unwrap()).expect("the creat");
    assert_eq!(c["flags"], 0o1101);
    assert_eq!(c["flags_names"], "O_WRONLY|O_CREAT|O_TRUNC");
    let dir_open = opens.iter().find(|e| e["path"] == d.as_str()).expect("the directory open");
    assert_eq!(dir_open["flags_names"], "O_RDONLY|O_DIRECTORY", "{dir_open}");

    let out = tracer().args(["trace", "--", w, &create]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(" flags=0o1101(O_WRONLY|O_CREAT|O_TRUNC)"), "{text}");
}

/// logrotate's copytruncate empties the file under a running trace: with O_APPEND the next
/// write lands at the new end, so the file never starts with a run of NUL bytes.
#[test]
fn a_copytruncated_output_has_no_hole() {
    let dir = TempDir::new("copytruncate");
    let f = dir.file("trace.txt");
    let mut child =
        tracer().args(["trace", "--duration", "4s", "--output"]).arg(&f).stderr(Stdio::piped()).spawn().unwrap();
    let end = Instant::now() + Duration::from_secs(3);
    let mut truncated = false;
    while Instant::now() < end {
        let _ = std::fs::read("/etc/hostname");
        if !truncated && std::fs::metadata(&f).map(|m| m.len()).unwrap_or(0) > 0 {
            std::thread::sleep(Duration::from_millis(300));
            std::fs::OpenOptions::new().write(true).open(&f).unwrap().set_len(0).unwrap();
            truncated = true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(truncated, "the trace wrote something");
    let st = wait_exit(&mut child, 30);
    assert!(st.success());
    let body = std::fs::read(&f).unwrap();
    assert!(!body.is_empty(), "events after the truncation");
    assert_ne!(body[0], 0, "no hole of NULs where the old content was");
}
