//! The real auditd as the reference of comparison tests: started if it is not running, audit
//! switched on with a deep backlog, rules loaded; all of it put back when the handle drops.
//!
//! auditd and the kernel's audit rules are one per machine, and test binaries run as parallel
//! processes: a handle holds an exclusive `flock` on [`LOCK`] for its whole life, so one test
//! at a time, in any binary, uses audit.

use std::{
    fs::File,
    os::fd::AsRawFd,
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

/// The lock every user of auditd in the tests takes (also `tracer-rules`' tests).
pub const LOCK: &str = "/tmp/auditd.lock";

/// `auditctl ARGS`, which must succeed; its stdout.
pub fn auditctl(args: &[&str]) -> String {
    let o = Command::new("auditctl").args(args).output().expect("run auditctl");
    assert!(o.status.success(), "auditctl {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// One field of `auditctl -s` ("enabled", "pid", "lost", "backlog_limit", ...).
pub fn audit_status(field: &str) -> String {
    auditctl(&["-s"]).lines().find_map(|l| l.strip_prefix(&format!("{field} ")).map(String::from)).unwrap_or_default()
}

/// Debian's auditd, installed only if missing (`cargo xtask setup` installs it too).
fn ensure_installed() {
    if Command::new("auditctl").arg("-v").output().is_ok() {
        return;
    }
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "auditd"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success())
    };
    if !install() {
        let _ = Command::new("apt-get").args(["update", "-qq"]).status();
        assert!(install(), "cannot install auditd (apt-get install auditd)");
    }
}

/// auditd running and audit on, for one test at a time (see the module doc).
pub struct Auditd {
    _lock: File,
    started: Option<u32>,
    was_enabled: String,
    old_backlog: String,
    /// Rules added one by one (`add_rule`), deleted one by one on drop.
    added: Vec<Vec<String>>,
    /// Whole rule files were loaded: every rule is deleted on drop (`auditctl -D`; under the
    /// lock no other test has rules in the kernel).
    loaded_files: bool,
}

impl Auditd {
    pub fn start() -> Auditd {
        let lock = File::options().create(true).append(true).open(LOCK).expect("open the auditd lock");
        // SAFETY: flock on a file descriptor the File owns; it blocks until the lock is ours.
        let rc = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) };
        assert_eq!(rc, 0, "flock {LOCK}: {}", std::io::Error::last_os_error());
        ensure_installed();
        // Read before auditd starts: it switches audit on itself.
        let was_enabled = audit_status("enabled");
        let old_backlog = audit_status("backlog_limit");
        let mut started = None;
        if audit_status("pid").trim() == "0" {
            // No systemd here: auditd forks into the background once it is ready.
            let st = Command::new("auditd").status().expect("run auditd");
            assert!(st.success(), "auditd failed to start");
            let deadline = Instant::now() + Duration::from_secs(10);
            while audit_status("pid").trim() == "0" {
                assert!(Instant::now() < deadline, "auditd did not register with the kernel");
                std::thread::sleep(Duration::from_millis(100));
            }
            started = audit_status("pid").trim().parse().ok();
        }
        let a = Auditd { _lock: lock, started, was_enabled, old_backlog, added: Vec::new(), loaded_files: false };
        auditctl(&["-e", "1"]);
        // Bursts of audited calls: a deep backlog so the kernel makes processes wait, not drop.
        auditctl(&["-b", "8192"]);
        a
    }

    /// `auditctl -a RULE...` (the rule without `-a`), removed again on drop.
    pub fn add_rule(&mut self, rule: &[&str]) {
        let mut args = vec!["-a"];
        args.extend_from_slice(rule);
        auditctl(&args);
        self.added.push(rule.iter().map(|s| s.to_string()).collect());
    }

    /// Every rule line of `file`, in order, as `auditctl -R` would load it, but line by line:
    /// a line auditctl refuses on this machine is skipped and returned with auditctl's
    /// reason, so the test can say which.
    pub fn load_file(&mut self, file: &Path) -> Vec<(usize, String, String)> {
        self.loaded_files = true;
        let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let mut refused = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            // The example files have no quoting: auditctl -R splits on blanks too.
            let args: Vec<&str> = line.split_whitespace().collect();
            let o = Command::new("auditctl").args(&args).output().expect("run auditctl");
            if !o.status.success() {
                refused.push((i + 1, line.to_string(), String::from_utf8_lossy(&o.stderr).trim().to_string()));
            }
        }
        refused
    }

    /// The kernel's count of audit records it could not queue (`auditctl -s`).
    pub fn lost(&self) -> u64 {
        audit_status("lost").trim().parse().unwrap_or(0)
    }
}

impl Drop for Auditd {
    fn drop(&mut self) {
        if self.loaded_files {
            let _ = Command::new("auditctl").arg("-D").output();
        }
        for rule in &self.added {
            let mut args = vec!["-d"];
            args.extend(rule.iter().map(String::as_str));
            let _ = Command::new("auditctl").args(&args).output();
        }
        let _ = Command::new("auditctl").args(["-b", self.old_backlog.trim()]).output();
        if let Some(pid) = self.started {
            // SAFETY: kill takes plain integers; an exited pid is an error, not UB.
            unsafe { libc::kill(pid as i32, libc::SIGTERM) };
            // Gone, or a zombie its reaper has not collected yet: either way it has exited.
            let exited = || {
                std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .map_or(true, |s| s.rsplit_once(") ").is_some_and(|(_, r)| r.starts_with('Z')))
            };
            let deadline = Instant::now() + Duration::from_secs(10);
            while !exited() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        // Audit back off as we found it, checked: nothing else may be slowed by it.
        let want = self.was_enabled.trim().to_string();
        for _ in 0..20 {
            let _ = Command::new("auditctl").args(["-e", &want]).output();
            if audit_status("enabled").trim() == want {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
