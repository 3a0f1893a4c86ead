//! Free space on the log's file system and auditd's disk actions (auditd.conf(5)): the
//! space is read with statvfs from the log's flush at most once a second, never per event.
//! An action runs once when its threshold is crossed and is re-armed when space comes back.

use std::{
    ffi::CString,
    io,
    os::unix::ffi::OsStrExt,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use super::config::{Config, DiskAction, Space};

/// What the log writer must do after an action (the rest is done here).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Then {
    Nothing,
    Rotate,
    Suspend,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Enough,
    SpaceLeft,
    AdminSpaceLeft,
}

pub(crate) struct Watch {
    dir: PathBuf,
    space_left: (Space, DiskAction, Option<PathBuf>),
    admin: (Space, DiskAction, Option<PathBuf>),
    full: (DiskAction, Option<PathBuf>),
    last: Option<Instant>,
    level: Level,
    /// disk_full_action ran: not again until a rotation.
    was_full: bool,
}

const EVERY: Duration = Duration::from_secs(1);

/// (available to unprivileged writers, total) bytes of the file system holding `dir`.
fn statvfs(dir: &Path) -> io::Result<(u64, u64)> {
    let c = CString::new(dir.as_os_str().as_bytes()).map_err(io::Error::other)?;
    // SAFETY: statvfs is plain data the call fills in; all-zero is a valid value for it.
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: c is a valid NUL-terminated path and s a valid statvfs for the call.
    if unsafe { libc::statvfs(c.as_ptr(), &raw mut s) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let unit = s.f_frsize;
    Ok((s.f_bavail.saturating_mul(unit), s.f_blocks.saturating_mul(unit)))
}

fn bytes(s: Space, total: u64) -> u64 {
    match s {
        Space::Mib(m) => m.saturating_mul(1 << 20),
        Space::Percent(p) => total / 100 * u64::from(p),
    }
}

impl Watch {
    pub(crate) fn new(c: &Config) -> Self {
        Watch {
            dir: c.log_file.parent().unwrap_or(Path::new("/")).to_path_buf(),
            space_left: (c.space_left, c.space_left_action, c.space_left_exec.clone()),
            admin: (c.admin_space_left, c.admin_space_left_action, c.admin_space_left_exec.clone()),
            full: (c.disk_full_action, c.disk_full_exec.clone()),
            last: None,
            level: Level::Enough,
            was_full: false,
        }
    }

    /// Checks the free space if the last check is a second old; the action of a newly
    /// crossed threshold is run and returned (None: nothing crossed).
    pub(crate) fn check(&mut self) -> Option<Then> {
        if self.last.is_some_and(|t| t.elapsed() < EVERY) {
            return None;
        }
        self.last = Some(Instant::now());
        let (free, total) = match statvfs(&self.dir) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("tracer: warning: cannot read the free space of {}: {e}", self.dir.display());
                return None;
            }
        };
        let level = if free <= bytes(self.admin.0, total) {
            Level::AdminSpaceLeft
        } else if free <= bytes(self.space_left.0, total) {
            Level::SpaceLeft
        } else {
            Level::Enough
        };
        let crossed = level > self.level;
        self.level = level;
        if !crossed {
            return None;
        }
        let mib = free >> 20;
        let (key, (_, action, exec)) = match level {
            Level::AdminSpaceLeft => ("admin_space_left", self.admin.clone()),
            _ => ("space_left", self.space_left.clone()),
        };
        Some(act(&format!("{key} reached ({mib} MiB free on {})", self.dir.display()), action, exec.as_deref()))
    }

    /// The log's file system is full (ENOSPC): disk_full_action, once until a rotation.
    pub(crate) fn full(&mut self) -> Option<Then> {
        if std::mem::replace(&mut self.was_full, true) {
            return None;
        }
        Some(act(&format!("disk full ({})", self.dir.display()), self.full.0, self.full.1.as_deref()))
    }

    /// After a rotation the thresholds are re-armed at the next check.
    pub(crate) fn rearm(&mut self) {
        self.level = Level::Enough;
        self.last = None;
        self.was_full = false;
    }
}

/// Runs `program` without waiting for it (a thread reaps it), as auditd forks it.
fn spawn(program: &Path, args: &[&str]) {
    match Command::new(program).args(args).spawn() {
        Ok(mut child) => {
            std::thread::spawn(move || child.wait());
        }
        Err(e) => eprintln!("tracer: error: cannot run {}: {e}", program.display()),
    }
}

/// Says `what` and the action on stderr (the journal) and does the part that is not the log's.
fn act(what: &str, action: DiskAction, exec: Option<&Path>) -> Then {
    let name = format!("{action:?}").to_lowercase();
    eprintln!("tracer: warning: {what}: action {name}");
    match action {
        DiskAction::Ignore | DiskAction::Syslog => Then::Nothing,
        DiskAction::Email => {
            eprintln!("tracer: warning: no mail program is configured: email acts as syslog");
            Then::Nothing
        }
        DiskAction::Rotate => Then::Rotate,
        DiskAction::Exec => {
            if let Some(p) = exec {
                spawn(p, &[]);
            }
            Then::Nothing
        }
        DiskAction::Suspend => Then::Suspend,
        // auditd: `init 1` / `init 0`; writing stops first so nothing is lost half-written.
        DiskAction::Single => {
            spawn(Path::new("/sbin/init"), &["1"]);
            Then::Suspend
        }
        DiskAction::Halt => {
            spawn(Path::new("/sbin/init"), &["0"]);
            Then::Suspend
        }
    }
}
