//! `tracer daemon` end to end: the real daemon on the running kernel, logging into a temp
//! directory, rotated under a workload, reloaded, asked for its status, stopped. The daemon
//! is a machine-wide singleton (its lock is /run/tracer/daemon.lock): one test runs it.
// Every test crate gets the whole dev-dependency list; each uses part of it.
#![allow(unused_crate_dependencies)]

use std::{
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use tracer_tests::*;

const W: &str = env!("CARGO_BIN_EXE_workload");

fn kill(pid: u32, sig: i32) {
    // SAFETY: kill takes plain integers.
    unsafe { libc::kill(pid as i32, sig) };
}

fn status(format: &[&str]) -> std::process::Output {
    Command::new(tracer_bin()).arg("status").args(format).output().unwrap()
}

/// Polls `tracer status --format json` until it says running with our pid and COND holds.
fn wait_status(pid: u32, what: &str, cond: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        let out = status(&["--format", "json"]);
        if out.status.success() {
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            if v["pid"] == pid && cond(&v) {
                return v;
            }
        }
        assert!(Instant::now() < end, "status never showed {what}: {}", String::from_utf8_lossy(&out.stdout));
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn opens(marker: &Path, n: u32) {
    let op = format!("open-n:{n}:{}", marker.display());
    let st = Command::new(W).arg(op).status().unwrap();
    assert!(st.success());
}

/// A `rules = DIR` line whose one rule selects the opens of MARKER (made here) and nothing
/// else: the daemon traces the whole machine, and a test about its log's size must not
/// depend on what else runs meanwhile.
fn only_marker(dir: &TempDir, marker: &Path) -> String {
    std::fs::write(marker, "x").unwrap();
    let rules = dir.file("marker-rules.d");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(rules.join("10-marker.rules"), format!("-w {} -k marker\n", marker.display())).unwrap();
    format!("rules = {}\n", rules.display())
}

/// The log and its rotated files, oldest first (LOG.k … LOG.1, LOG).
fn log_set(log: &Path) -> Vec<PathBuf> {
    let mut rotated: Vec<(u32, PathBuf)> = std::fs::read_dir(log.parent().unwrap())
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().unwrap();
            let n = name.strip_prefix("tracer.log.")?.parse().ok()?;
            Some((n, e.path()))
        })
        .collect();
    rotated.sort();
    let mut files: Vec<PathBuf> = rotated.into_iter().rev().map(|(_, p)| p).collect();
    files.push(log.to_path_buf());
    files
}

/// Events of FILE that opened MARKER, as ausearch counts them (SYSCALL records of the
/// events it matches: an event split across two files would not match in either).
fn ausearch_opens(file: &Path, marker: &Path) -> usize {
    let out = Command::new("ausearch")
        .arg("-if")
        .arg(file)
        .arg("-f")
        .arg(marker)
        .arg("--raw")
        .output()
        .expect("ausearch (Debian's auditd package)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.code() == Some(0) || out.status.code() == Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    text.lines().filter(|l| l.starts_with("type=SYSCALL ")).count()
}

fn write_config(conf: &Path, log: &Path, num_logs: u32) {
    let text = format!(
        "# test configuration\nlog_file = {}\nlog_format = audit\nmax_log_file = 1\nnum_logs = {num_logs}\n\
         max_log_file_action = rotate\nflush = incremental_async\n",
        log.display()
    );
    std::fs::write(conf, text).unwrap();
}

/// One daemon at a time on a machine (the pid lock): the tests that start one take turns.
static ONE_DAEMON: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn daemon_rotates_reloads_reports_status_and_loses_no_event() {
    let _one = ONE_DAEMON.lock().unwrap_or_else(|e| e.into_inner());
    let dir = TempDir::new("daemon");
    let (conf, log, marker) = (dir.file("tracer.conf"), dir.file("log/tracer.log"), dir.file("marker"));
    std::fs::write(&marker, "x").unwrap();
    write_config(&conf, &log, 99);
    let mut daemon =
        Command::new(tracer_bin()).args(["daemon", "--config"]).arg(&conf).stderr(Stdio::piped()).spawn().unwrap();
    let pid = daemon.id();
    let _reap = KillOnPanic(pid);
    wait_status(pid, "the daemon", |_| true);
    assert_eq!(std::fs::metadata(&log).unwrap().permissions().mode() & 0o777, 0o600);

    // A second daemon refuses, naming the first.
    let second = Command::new(tracer_bin()).args(["daemon", "--config"]).arg(&conf).output().unwrap();
    let err = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(2), "{err}");
    assert!(err.contains(&format!("pid {pid}")), "{err}");

    // 3 x 2000 marker opens (about 1.5 MB of audit records), with a SIGUSR1 rotation and a
    // reload of a changed configuration in between and during the opens.
    opens(&marker, 2000);
    let before = wait_status(pid, "its events", |_| true)["rotations"].as_u64().unwrap();
    kill(pid, libc::SIGUSR1);
    wait_status(pid, "the SIGUSR1 rotation", |v| v["rotations"].as_u64().unwrap() > before);
    write_config(&conf, &log, 98);
    let w = std::thread::spawn({
        let marker = marker.clone();
        move || opens(&marker, 2000)
    });
    kill(pid, libc::SIGHUP);
    w.join().unwrap();
    wait_status(pid, "the reload", |v| v["reloads"] == 1);
    opens(&marker, 2000);

    let v = wait_status(pid, "several rotations", |v| v["rotations"].as_u64().unwrap() >= 3);
    assert_eq!(v["log_file"], log.to_str().unwrap());
    assert_eq!(v["lost"], 0);
    let text = status(&[]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.starts_with("running 1\n") && text.contains(&format!("\npid {pid}\n")), "{text}");

    kill(pid, libc::SIGTERM);
    let st = wait_exit(&mut daemon, 20);
    let mut err = String::new();
    std::io::Read::read_to_string(daemon.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert_eq!(st.code(), Some(0), "{err}");
    assert!(err.contains("daemon stopping: ") && err.contains(" 0 lost"), "closing counts: {err}");
    assert_eq!(status(&[]).status.code(), Some(3), "status: not running");

    let files = log_set(&log);
    assert!(files.len() >= 4, "rotated several times: {files:?}");
    let mut total = 0;
    for f in &files {
        assert_eq!(std::fs::metadata(f).unwrap().permissions().mode() & 0o777, 0o600, "{}", f.display());
        let body = std::fs::read_to_string(f).unwrap();
        assert!(body.is_empty() || (body.starts_with("type=SYSCALL ") && body.ends_with('\n')), "{}", f.display());
        total += ausearch_opens(f, &marker);
    }
    assert_eq!(total, 6000, "every marker open once, across {} files", files.len());
}

#[test]
fn bad_configuration_is_refused_with_file_and_line() {
    let dir = TempDir::new("daemon-conf");
    let conf = dir.file("bad.conf");
    let log = dir.file("never.log");
    for (body, needle) in [
        (format!("log_file = {}\nmax_log_files = 3\n", log.display()), ":2: max_log_files: unknown key"),
        (format!("log_file = {}\nnum_logs = many\n", log.display()), ":2: num_logs: 'many'"),
        (format!("log_file = {}\n\nflush = sometimes\n", log.display()), ":3: flush: 'sometimes'"),
    ] {
        std::fs::write(&conf, body).unwrap();
        let out = Command::new(tracer_bin()).args(["daemon", "--config"]).arg(&conf).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(&format!("{}{needle}", conf.display())), "{err}");
        assert!(!log.exists(), "nothing started");
    }
}

fn gid_of(path: &Path) -> u32 {
    std::os::unix::fs::MetadataExt::gid(&std::fs::metadata(path).unwrap())
}

#[test]
fn log_group_keep_logs_suspend_and_a_refused_reload() {
    let _one = ONE_DAEMON.lock().unwrap_or_else(|e| e.into_inner());
    let dir = TempDir::new("daemon-actions");
    let (conf, log, marker) = (dir.file("tracer.conf"), dir.file("log/tracer.log"), dir.file("marker"));
    std::fs::write(&marker, "x").unwrap();
    let base = format!("log_file = {}\nmax_log_file = 1\nnum_logs = 2\nlog_group = adm\n", log.display());
    std::fs::write(&conf, format!("{base}max_log_file_action = keep_logs\n")).unwrap();
    let mut daemon =
        Command::new(tracer_bin()).args(["daemon", "--config"]).arg(&conf).stderr(Stdio::piped()).spawn().unwrap();
    let pid = daemon.id();
    let _reap = KillOnPanic(pid);
    wait_status(pid, "the daemon", |_| true);
    let adm = std::fs::read_to_string("/etc/group").unwrap();
    let adm: u32 =
        adm.lines().find_map(|l| l.strip_prefix("adm:x:")).unwrap().split(':').next().unwrap().parse().unwrap();
    assert_eq!(std::fs::metadata(&log).unwrap().permissions().mode() & 0o777, 0o640);
    assert_eq!(gid_of(&log), adm);

    // keep_logs: with num_logs 2, rotate would keep LOG.1 only; keep_logs removes nothing.
    opens(&marker, 6000);
    wait_status(pid, "three rotations", |v| v["rotations"].as_u64().unwrap() >= 3);
    assert!(numbered(&log, 3).exists(), "keep_logs kept LOG.3");
    for f in log_set(&log) {
        assert_eq!(std::fs::metadata(&f).unwrap().permissions().mode() & 0o777, 0o640, "{}", f.display());
    }

    // A bad configuration on reload: refused, the old one kept, the daemon runs on.
    std::fs::write(&conf, format!("{base}max_log_file_action = sometimes\n")).unwrap();
    kill(pid, libc::SIGHUP);
    let v = wait_status(pid, "the refused reload", |v| v["reloads_refused"] == 1);
    assert_eq!(v["reloads"], 0);

    // suspend: at max_log_file the log stops growing; events are still counted.
    std::fs::write(&conf, format!("{base}max_log_file_action = suspend\n")).unwrap();
    kill(pid, libc::SIGHUP);
    wait_status(pid, "the reload", |v| v["reloads"] == 1);
    opens(&marker, 6000);
    let v = wait_status(pid, "suspended writing", |v| v["writing"] == false);
    assert!(v["events"].as_u64().unwrap() > v["events_written"].as_u64().unwrap(), "{v}");
    let size = std::fs::metadata(&log).unwrap().len();
    opens(&marker, 2000);
    wait_status(pid, "more events", |v2| v2["events"].as_u64().unwrap() >= v["events"].as_u64().unwrap() + 2000);
    assert_eq!(std::fs::metadata(&log).unwrap().len(), size, "nothing written once suspended");

    kill(pid, libc::SIGTERM);
    assert_eq!(wait_exit(&mut daemon, 20).code(), Some(0));
    let mut err = String::new();
    std::io::Read::read_to_string(daemon.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(err.contains(&format!("{}:5: max_log_file_action: 'sometimes'", conf.display())), "{err}");
    assert!(err.contains("reload refused") && err.contains("suspended"), "{err}");
}

fn numbered(log: &Path, n: u32) -> PathBuf {
    let mut s = log.as_os_str().to_owned();
    s.push(format!(".{n}"));
    s.into()
}

/// A log that cannot be written (/dev/full: ENOSPC on every write): the error is said,
/// naming the file; disk_full_action suspend stops writing, events are still counted,
/// and the daemon stays up and stops cleanly.
#[test]
fn a_full_device_follows_disk_full_action() {
    let _one = ONE_DAEMON.lock().unwrap_or_else(|e| e.into_inner());
    let dir = TempDir::new("daemon-full");
    let conf = dir.file("tracer.conf");
    // No max_log_file: /dev/full must never be rotated (renamed).
    std::fs::write(&conf, "log_file = /dev/full\nmax_log_file = 0\ndisk_full_action = suspend\n").unwrap();
    let mut daemon =
        Command::new(tracer_bin()).args(["daemon", "--config"]).arg(&conf).stderr(Stdio::piped()).spawn().unwrap();
    let pid = daemon.id();
    let _reap = KillOnPanic(pid);
    wait_status(pid, "the daemon", |_| true);
    opens(&dir.file("marker"), 50);
    let v = wait_status(pid, "suspended writing", |v| v["writing"] == false);
    assert!(v["events"].as_u64().unwrap() > 0);
    kill(pid, libc::SIGTERM);
    assert_eq!(wait_exit(&mut daemon, 20).code(), Some(0));
    let mut err = String::new();
    std::io::Read::read_to_string(daemon.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(err.contains("error: writing /dev/full: No space left on device"), "{err}");
    assert!(err.contains("suspended"), "{err}");
    assert!(Path::new("/dev/full").exists() && !Path::new("/dev/full.1").exists());

    // write_logs = no: counted, nothing written, no file created.
    let log = dir.file("never.log");
    std::fs::write(&conf, format!("log_file = {}\nwrite_logs = no\n", log.display())).unwrap();
    let mut daemon =
        Command::new(tracer_bin()).args(["daemon", "--config"]).arg(&conf).stderr(Stdio::null()).spawn().unwrap();
    let pid = daemon.id();
    let _reap = KillOnPanic(pid);
    opens(&dir.file("marker"), 50);
    let v = wait_status(pid, "events counted", |v| v["events"].as_u64().unwrap() > 0);
    assert_eq!(v["writing"], false);
    assert_eq!(v["events_written"], 0);
    kill(pid, libc::SIGTERM);
    assert_eq!(wait_exit(&mut daemon, 20).code(), Some(0));
    assert!(!log.exists());
}

/// A 64 MiB tmpfs (room for the machine-wide events other work makes meanwhile) mounted on a directory for one test, unmounted when dropped.
struct SmallFs(PathBuf);

impl SmallFs {
    fn new(dir: PathBuf) -> Self {
        std::fs::create_dir_all(&dir).unwrap();
        let st = Command::new("mount").args(["-t", "tmpfs", "-o", "size=64m", "tmpfs"]).arg(&dir).status().unwrap();
        assert!(st.success(), "mount tmpfs on {}", dir.display());
        SmallFs(dir)
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Writes FILE with BYTES (or until the file system is full, when BYTES is None).
fn fill(file: &Path, bytes: Option<usize>) {
    use std::io::Write;
    let mut f = std::fs::File::create(file).unwrap();
    let chunk = [0x55u8; 4096];
    let mut left = bytes.unwrap_or(usize::MAX);
    while left > 0 {
        let n = left.min(chunk.len());
        match f.write(&chunk[..n]) {
            Ok(w) => left -= w,
            Err(e) if bytes.is_none() && e.raw_os_error() == Some(libc::ENOSPC) => return,
            Err(e) => panic!("filling {}: {e}", file.display()),
        }
    }
}

/// Fills the file system of `dir` with `file` until `free` bytes are left. The daemon logs
/// every event of the machine, so its log grows at the pace of whatever else runs: a filler
/// of a fixed size could hit ENOSPC on a busy machine, one sized from the free space cannot.
fn fill_until_free(dir: &Path, file: &Path, free: u64) {
    // SAFETY: statvfs fills the zeroed struct it is given; the path is a NUL-terminated CString.
    let avail = unsafe {
        let mut st: libc::statvfs = std::mem::zeroed();
        let p = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).unwrap();
        assert_eq!(libc::statvfs(p.as_ptr(), &mut st), 0, "statvfs {}", dir.display());
        st.f_bavail * st.f_frsize
    };
    fill(file, Some(avail.saturating_sub(free) as usize));
}

/// Kills the daemon when its test panics: left running it would hold the daemon lock and
/// fail the next test too.
struct KillOnPanic(u32);

impl Drop for KillOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            kill(self.0, libc::SIGKILL);
        }
    }
}

fn daemon_on(conf: &Path) -> Child {
    Command::new(tracer_bin()).args(["daemon", "--config"]).arg(conf).stderr(Stdio::piped()).spawn().unwrap()
}

fn stop(mut daemon: Child) -> String {
    kill(daemon.id(), libc::SIGTERM);
    assert_eq!(wait_exit(&mut daemon, 20).code(), Some(0));
    let mut err = String::new();
    std::io::Read::read_to_string(daemon.stderr.as_mut().unwrap(), &mut err).unwrap();
    err
}

/// space_left and admin_space_left on a real 64 MiB tmpfs: crossing space_left (50%) runs the
/// exec program; crossing admin_space_left (10%) suspends writing: events are still counted,
/// nothing more is written, status says so and counts both actions.
#[test]
fn space_left_runs_exec_then_admin_space_left_suspends() {
    let _one = ONE_DAEMON.lock().unwrap_or_else(|e| e.into_inner());
    let dir = TempDir::new("daemon-space");
    let fs = SmallFs::new(dir.file("fs"));
    let log = fs.0.join("tracer.log");
    let ran = dir.file("exec-ran");
    let script = dir.file("low.sh");
    std::fs::write(&script, format!("#!/bin/sh\necho low > {}\n", ran.display())).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let conf = dir.file("tracer.conf");
    let text = format!(
        "log_file = {}\nmax_log_file = 0\nspace_left = 50%\nspace_left_action = exec {}\n\
         admin_space_left = 10%\nadmin_space_left_action = suspend\ndisk_full_action = suspend\n{}",
        log.display(),
        script.display(),
        only_marker(&dir, &dir.file("marker"))
    );
    std::fs::write(&conf, text).unwrap();
    let daemon = daemon_on(&conf);
    let pid = daemon.id();
    let _reap = KillOnPanic(pid);
    wait_status(pid, "the daemon", |_| true);
    opens(&dir.file("marker"), 20);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(!ran.exists(), "exec ran with the file system nearly empty");
    // Between the two thresholds (space_left 32 MiB, admin_space_left 6.4 MiB free).
    fill_until_free(&fs.0, &fs.0.join("filler1"), 20 << 20);
    opens(&dir.file("marker"), 20);
    wait_status(pid, "the space_left action", |v| v["disk_actions"] == 1);
    let end = Instant::now() + Duration::from_secs(10);
    while !ran.exists() {
        assert!(Instant::now() < end, "the exec program never ran");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(std::fs::read_to_string(&ran).unwrap(), "low\n");
    assert_eq!(wait_status(pid, "writing", |_| true)["writing"], true);

    // Below admin_space_left, not full.
    fill_until_free(&fs.0, &fs.0.join("filler2"), 3 << 20);
    opens(&dir.file("marker"), 20);
    let v = wait_status(pid, "suspended", |v| v["writing"] == false);
    assert_eq!(v["disk_actions"], 2);
    let size = std::fs::metadata(&log).unwrap().len();
    let events = v["events"].as_u64().unwrap();
    let written = v["events_written"].as_u64().unwrap();
    opens(&dir.file("marker"), 50);
    let v = wait_status(pid, "more events counted", |v| v["events"].as_u64().unwrap() >= events + 50);
    assert_eq!(v["events_written"].as_u64().unwrap(), written);
    assert_eq!(std::fs::metadata(&log).unwrap().len(), size, "written while suspended");
    let text = String::from_utf8(status(&[]).stdout).unwrap();
    assert!(text.contains("writing 0\n") && text.contains("disk_actions 2\n"), "{text}");

    // SIGUSR2 resumes writing once there is room again (auditd's resume).
    std::fs::remove_file(fs.0.join("filler2")).unwrap();
    std::fs::remove_file(fs.0.join("filler1")).unwrap();
    kill(pid, libc::SIGUSR2);
    wait_status(pid, "writing again", |v| v["writing"] == true);
    opens(&dir.file("marker"), 20);
    wait_status(pid, "events written again", |v| v["events_written"].as_u64().unwrap() > written);
    assert!(std::fs::metadata(&log).unwrap().len() > size);
    let err = stop(daemon);
    assert!(err.contains("space_left reached") && err.contains("action exec"), "{err}");
    assert!(err.contains("admin_space_left reached") && err.contains("action suspend"), "{err}");
    assert!(err.contains("writing the log is suspended"), "{err}");
    assert!(err.contains("writing the log resumed (SIGUSR2)"), "{err}");
}

/// A full file system (ENOSPC): disk_full_action suspend keeps the daemon running and says
/// so; the thresholds' syslog actions are said on stderr. Then rotate frees space: a big
/// old LOG.1 is dropped by the space_left rotation (num_logs 2).
#[test]
fn disk_full_suspends_syslog_says_and_rotate_frees_space() {
    let _one = ONE_DAEMON.lock().unwrap_or_else(|e| e.into_inner());
    let dir = TempDir::new("daemon-diskfull");
    let fs = SmallFs::new(dir.file("fs"));
    let log = fs.0.join("tracer.log");
    let conf = dir.file("tracer.conf");
    let text = format!(
        "log_file = {}\nmax_log_file = 0\nspace_left = 8\nspace_left_action = syslog\n\
         admin_space_left = 0\nadmin_space_left_action = email\ndisk_full_action = suspend\n{}",
        log.display(),
        only_marker(&dir, &dir.file("marker"))
    );
    std::fs::write(&conf, text).unwrap();
    let daemon = daemon_on(&conf);
    let pid = daemon.id();
    let _reap = KillOnPanic(pid);
    wait_status(pid, "the daemon", |_| true);
    fill(&fs.0.join("filler1"), Some(58 << 20));
    opens(&dir.file("marker"), 20);
    wait_status(pid, "the space_left action", |v| v["disk_actions"] == 1);
    fill(&fs.0.join("filler2"), None);
    opens(&dir.file("marker"), 200);
    let v = wait_status(pid, "suspended", |v| v["writing"] == false);
    let events = v["events"].as_u64().unwrap();
    opens(&dir.file("marker"), 50);
    let v = wait_status(pid, "still counting", |v| v["events"].as_u64().unwrap() >= events + 50);
    assert!(v["disk_actions"].as_u64().unwrap() >= 3, "{v}");
    let err = stop(daemon);
    assert!(
        err.contains("No space left on device") && err.contains("disk full") && err.contains("action suspend"),
        "{err}"
    );
    assert!(err.contains("space_left reached") && err.contains("action syslog"), "{err}");
    assert!(err.contains("email acts as syslog"), "{err}");

    std::fs::remove_file(fs.0.join("filler1")).unwrap();
    std::fs::remove_file(fs.0.join("filler2")).unwrap();
    std::fs::remove_file(&log).unwrap();
    let old = numbered(&log, 1);
    fill(&old, Some(40 << 20));
    let text = format!(
        "log_file = {}\nmax_log_file = 0\nnum_logs = 2\nspace_left = 50%\nspace_left_action = rotate\n\
         admin_space_left = 0\nadmin_space_left_action = syslog\n{}",
        log.display(),
        only_marker(&dir, &dir.file("marker"))
    );
    std::fs::write(&conf, text).unwrap();
    let daemon = daemon_on(&conf);
    let pid = daemon.id();
    let _reap = KillOnPanic(pid);
    opens(&dir.file("marker"), 20);
    let v = wait_status(pid, "the rotation", |v| v["rotations"] == 1);
    assert_eq!(v["disk_actions"], 1);
    assert!(std::fs::metadata(&old).unwrap().len() < 40 << 20, "the old LOG.1 is still there");
    assert_eq!(v["writing"], true);
    let err = stop(daemon);
    assert!(err.contains("action rotate"), "{err}");
}

/// The configuration's `rules` directory: with `*.rules` in it the log holds exactly what
/// they select, with their keys (audit's `key=`); a bad rule file refuses to start.
#[test]
fn the_rules_directory_selects_and_keys_the_events() {
    let _one = ONE_DAEMON.lock().unwrap_or_else(|e| e.into_inner());
    let dir = TempDir::new("daemon-rules");
    let (conf, log, rules, marker) =
        (dir.file("tracer.conf"), dir.file("log/tracer.log"), dir.file("rules.d"), dir.file("marker"));
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(&marker, "x").unwrap();
    std::fs::write(rules.join("10-marker.rules"), format!("-w {} -p wa -k marker-watch\n", marker.display())).unwrap();
    std::fs::write(rules.join("README"), "not a rule file\n").unwrap();
    write_config(&conf, &log, 9);
    let mut text = std::fs::read_to_string(&conf).unwrap();
    text.push_str(&format!("rules = {}\n", rules.display()));
    std::fs::write(&conf, &text).unwrap();

    let daemon = daemon_on(&conf);
    let pid = daemon.id();
    let _reap = KillOnPanic(pid);
    wait_status(pid, "the daemon", |_| true);
    // Reads do not match -p wa; writes and a chmod do.
    let st = Command::new(W)
        .args([format!("open-n:5:{}", marker.display()), format!("call:2,s={},1", marker.display())])
        .arg(format!("call:90,s={},420", marker.display()))
        .status()
        .unwrap();
    assert!(st.success());
    wait_status(pid, "the events", |v| v["events"].as_u64().unwrap_or(0) >= 2);
    let err = stop(daemon);
    let body = std::fs::read_to_string(&log).unwrap();
    let keyed = body.lines().filter(|l| l.starts_with("type=SYSCALL ") && l.ends_with(" key=\"marker-watch\"")).count();
    assert_eq!(keyed, 2, "{body}\n{err}");
    assert_eq!(body.lines().filter(|l| l.starts_with("type=SYSCALL ")).count(), 2, "{body}");

    // A bad rule file: exit 2 naming it, nothing started.
    std::fs::write(rules.join("20-bad.rules"), "-a always,exit -F nosuchfield=1\n").unwrap();
    let o = Command::new(tracer_bin()).args(["daemon", "--config"]).arg(&conf).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains(&format!("{}:1:", rules.join("20-bad.rules").display())), "{err}");
}
