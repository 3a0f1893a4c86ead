//! The daemon's log file: appended, never truncated, created 0600 (0640 with `log_group`),
//! rotated as auditd does (`LOG` → `LOG.1` → … `LOG.<num_logs-1>`), on size and on SIGUSR1.
//!
//! The sink writes into `LogWriter`, which only buffers; the file is written and rotated in
//! `flush`, which the daemon calls between events, so an event is never split across files.

use std::{
    fs::File,
    io::{self, Write},
    os::unix::fs::DirBuilderExt,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering::Relaxed},
    },
};

use super::{
    config::{Config, DiskAction, Flush, SizeAction},
    disk::{Then, Watch},
};

/// What the daemon's loop and `tracer status` see of the log (atomics: one writer, no locks).
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub size: AtomicU64,
    pub rotations: AtomicU64,
    /// Unix seconds of the last rotation; 0: none yet.
    pub last_rotation: AtomicU64,
    /// Set by SIGUSR1: rotate at the next flush.
    pub rotate_now: AtomicBool,
    /// The file reached max_log_file: flush (and act) before the next event.
    pub full: AtomicBool,
    /// Writing stopped (suspend actions): events are counted, not written.
    pub suspended: AtomicBool,
    /// Disk actions run (space_left, admin_space_left, disk_full).
    pub disk_actions: AtomicU64,
    /// Set by SIGUSR2 (auditd's "resume logging"): write again at the next flush.
    pub resume_now: AtomicBool,
}

pub(crate) struct LogWriter {
    path: PathBuf,
    file: Option<File>,
    buf: Vec<u8>,
    max_bytes: u64,
    num_logs: u32,
    action: SizeAction,
    disk_error: DiskAction,
    flush: Flush,
    gid: Option<u32>,
    write_logs: bool,
    shared: Arc<Shared>,
    said_full: bool,
    disk: Watch,
}

fn open(path: &Path, gid: Option<u32>) -> io::Result<File> {
    if let Some(dir) = path.parent().filter(|d| !d.exists()) {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    }
    let f = crate::sink::append(path, if gid.is_some() { 0o640 } else { 0o600 })?;
    if let Some(g) = gid {
        std::os::unix::fs::fchown(&f, None, Some(g))?;
    }
    Ok(f)
}

fn numbered(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    s.into()
}

impl LogWriter {
    /// Opens (creates) the log now, so a bad path is an error before anything runs.
    pub(crate) fn open(c: &Config, shared: Arc<Shared>) -> io::Result<Self> {
        let gid = c.log_group.as_ref().map(|g| g.1);
        let file = if c.write_logs { Some(open(&c.log_file, gid)?) } else { None };
        let size = match &file {
            Some(f) => f.metadata()?.len(),
            None => 0,
        };
        shared.size.store(size, Relaxed);
        // write_logs = no: nothing is written, as when suspended (events are counted only).
        shared.suspended.store(!c.write_logs, Relaxed);
        Ok(LogWriter {
            path: c.log_file.clone(),
            file,
            buf: Vec::with_capacity(1 << 16),
            max_bytes: c.max_log_file.saturating_mul(1 << 20),
            num_logs: c.num_logs,
            action: c.max_log_file_action,
            disk_error: c.disk_error_action,
            flush: c.flush,
            gid,
            write_logs: c.write_logs,
            shared,
            said_full: false,
            disk: Watch::new(c),
        })
    }

    /// auditd's rotation: LOG.(n-2) → LOG.(n-1) … LOG → LOG.1, then a new LOG. keep_logs
    /// shifts every existing file instead (none is removed).
    fn rotate(&mut self, keep_all: bool) -> io::Result<()> {
        self.file = None;
        let last = if keep_all {
            (1..).find(|&i| !numbered(&self.path, i).exists()).unwrap_or(1)
        } else {
            self.num_logs.max(2) - 1
        };
        for i in (1..last).rev() {
            let from = numbered(&self.path, i);
            if from.exists() {
                std::fs::rename(&from, numbered(&self.path, i + 1))?;
            }
        }
        if self.path.exists() {
            std::fs::rename(&self.path, numbered(&self.path, 1))?;
        }
        self.file = Some(open(&self.path, self.gid)?);
        self.shared.size.store(0, Relaxed);
        self.shared.rotations.fetch_add(1, Relaxed);
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        self.shared.last_rotation.store(now, Relaxed);
        self.said_full = false;
        self.disk.rearm();
        Ok(())
    }

    fn write_out(&mut self) -> io::Result<()> {
        let Some(f) = self.file.as_mut() else { return Ok(()) };
        f.write_all(&self.buf)?;
        match self.flush {
            Flush::Data => f.sync_data()?,
            Flush::Sync => f.sync_all()?,
            _ => {}
        }
        self.shared.size.fetch_add(self.buf.len() as u64, Relaxed);
        Ok(())
    }

    /// What a disk action left to the log: rotate or stop writing.
    fn then(&mut self, then: Then) {
        self.shared.disk_actions.fetch_add(1, Relaxed);
        match then {
            Then::Nothing => {}
            Then::Rotate => {
                if let Err(e) = self.rotate(false) {
                    self.failed("rotating", &e);
                }
            }
            Then::Suspend => {
                eprintln!("tracer: warning: writing the log is suspended; events are still counted");
                self.shared.suspended.store(true, Relaxed);
            }
        }
    }

    /// A failed write or rotation: said on stderr (the journal), then disk_full_action for
    /// ENOSPC, else disk_error_action.
    fn failed(&mut self, what: &str, e: &io::Error) {
        if e.raw_os_error() == Some(libc::ENOSPC) {
            eprintln!("tracer: error: {what} {}: {e}", self.path.display());
            if let Some(then) = self.disk.full() {
                self.then(then);
            }
            return;
        }
        eprintln!("tracer: error: {what} {}: {e} (disk_error_action {:?})", self.path.display(), self.disk_error);
        if !matches!(self.disk_error, DiskAction::Ignore | DiskAction::Syslog) {
            eprintln!("tracer: error: writing the log is suspended; events are still counted");
            self.shared.suspended.store(true, Relaxed);
        }
    }

    fn at_limit(&mut self) {
        match self.action {
            SizeAction::Rotate | SizeAction::KeepLogs => {
                if let Err(e) = self.rotate(self.action == SizeAction::KeepLogs) {
                    self.failed("rotating", &e);
                }
            }
            SizeAction::Ignore => {}
            SizeAction::Syslog | SizeAction::Suspend if !self.said_full => {
                self.said_full = true;
                eprintln!("tracer: warning: {} reached max_log_file", self.path.display());
                if self.action == SizeAction::Suspend {
                    eprintln!("tracer: warning: writing the log is suspended (max_log_file_action suspend)");
                    self.shared.suspended.store(true, Relaxed);
                }
            }
            SizeAction::Syslog | SizeAction::Suspend => {}
        }
    }
}

impl Write for LogWriter {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        if self.write_logs && !self.shared.suspended.load(Relaxed) {
            self.buf.extend_from_slice(b);
            let size = self.shared.size.load(Relaxed) + self.buf.len() as u64;
            if self.max_bytes > 0 && size >= self.max_bytes && !self.said_full {
                self.shared.full.store(true, Relaxed);
            }
        }
        Ok(b.len())
    }

    /// Writes what the sink gave since the last flush (whole events), then rotates if asked
    /// or if the file is full. Errors are handled here by the configured action.
    fn flush(&mut self) -> io::Result<()> {
        if self.shared.resume_now.swap(false, Relaxed) && self.write_logs {
            // The thresholds are checked again right away: still too little space suspends again.
            self.shared.suspended.store(false, Relaxed);
            self.said_full = false;
            self.disk.rearm();
            eprintln!("tracer: writing the log resumed (SIGUSR2)");
        }
        if !self.buf.is_empty() {
            if let Err(e) = self.write_out() {
                self.failed("writing", &e);
            }
            self.buf.clear();
        }
        if self.shared.rotate_now.swap(false, Relaxed) && self.write_logs {
            if let Err(e) = self.rotate(self.action == SizeAction::KeepLogs) {
                self.failed("rotating", &e);
            }
        } else if self.shared.full.swap(false, Relaxed) {
            self.at_limit();
        }
        if self.file.is_some()
            && let Some(then) = self.disk.check()
        {
            self.then(then);
        }
        Ok(())
    }
}
