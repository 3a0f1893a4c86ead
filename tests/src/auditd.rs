//! The real auditd for the tests that compare with it (`report.rs`, `rules_auditd.rs`).
//!
//! auditd and the kernel's audit rules are one per machine, and test binaries run as
//! parallel processes: [`Auditd::start`] takes an exclusive `flock` on `/tmp/auditd.lock`,
//! held until drop, so one test at a time (in any process) uses it. Everything is undone on
//! drop: rules deleted, the backlog limit and the enabled flag put back, the daemon stopped
//! if this test started it, so other tests are not slowed by audit.

use std::{
    collections::{BTreeMap, HashMap},
    fs::File,
    os::fd::AsRawFd,
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

const LOCK: &str = "/tmp/auditd.lock";

pub struct Auditd {
    _lock: File,
    started: Option<u32>,
    was_enabled: String,
    old_backlog: String,
}

pub fn auditctl(args: &[&str]) -> String {
    let o = Command::new("auditctl").args(args).output().expect("run auditctl");
    assert!(o.status.success(), "auditctl {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn audit_status(field: &str) -> String {
    auditctl(&["-s"]).lines().find_map(|l| l.strip_prefix(&format!("{field} ")).map(String::from)).unwrap_or_default()
}

/// Debian's auditd, installed only if missing (`cargo xtask setup` installs it too).
fn ensure_auditd_installed() {
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

impl Auditd {
    /// auditd running, audit enabled, no rules; the machine-wide lock held until drop.
    pub fn start() -> Auditd {
        let lock = File::options().create(true).append(true).open(LOCK).expect("open the auditd lock");
        // SAFETY: flock on a descriptor we own; blocks until no other test holds the lock.
        let r = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) };
        assert_eq!(r, 0, "flock {LOCK}: {}", std::io::Error::last_os_error());
        ensure_auditd_installed();
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
        let a = Auditd { _lock: lock, started, was_enabled, old_backlog };
        // A test that died holding the lock may have left its rules.
        auditctl(&["-D"]);
        auditctl(&["-e", "1"]);
        // Bursts of events: a deep backlog so the kernel makes processes wait, not drop.
        auditctl(&["-b", "8192"]);
        a
    }

    /// One rule (auditctl's arguments).
    pub fn add(&self, args: &[&str]) {
        auditctl(args);
    }

    /// Every rule line of `file` given to auditctl one by one, as `auditctl -R` does; the
    /// lines auditctl refuses are returned with its reason (control lines are not sent).
    pub fn load_file(&self, file: &Path) -> Vec<(usize, String, String)> {
        let text = std::fs::read_to_string(file).expect("read rules");
        let mut refused = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if !(line.starts_with("-a") || line.starts_with("-w") || line.starts_with("-A")) {
                continue;
            }
            let o = Command::new("sh").arg("-c").arg(format!("auditctl {line}")).output().expect("run auditctl");
            if !o.status.success() {
                refused.push((i + 1, line.to_string(), String::from_utf8_lossy(&o.stderr).trim().to_string()));
            }
        }
        refused
    }

    /// Rules as auditctl -l lists them.
    pub fn list(&self) -> String {
        auditctl(&["-l"])
    }
}

impl Drop for Auditd {
    fn drop(&mut self) {
        let _ = Command::new("auditctl").arg("-D").output();
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

/// One audit event (records sharing `msg=audit(TIME:SERIAL)`), fields by record type.
#[derive(Default, Debug)]
pub struct AuditEvent {
    pub records: Vec<(String, HashMap<String, String>)>,
}

impl AuditEvent {
    pub fn first(&self, ty: &str) -> Option<&HashMap<String, String>> {
        self.records.iter().find(|(t, _)| t == ty).map(|(_, f)| f)
    }
    pub fn all(&self, ty: &str) -> impl Iterator<Item = &HashMap<String, String>> {
        self.records.iter().filter(move |(t, _)| t == ty).map(|(_, f)| f)
    }
}

/// `ausearch --raw ARGS` grouped into events by id.
pub fn ausearch(args: &[&str]) -> BTreeMap<String, AuditEvent> {
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
