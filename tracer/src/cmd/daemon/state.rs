//! What `tracer status` reads: `/run/tracer/daemon.lock` (held while the daemon runs; it
//! holds the pid) and `/run/tracer/daemon.json`, rewritten by the daemon every second and at
//! each change (written to a temporary file and renamed: a reader never sees half of it).

use std::{
    io::Write,
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use crate::runlock::RUN_DIR;

pub(crate) fn lock_path() -> PathBuf {
    Path::new(RUN_DIR).join("daemon.lock")
}

pub(crate) fn state_path() -> PathBuf {
    Path::new(RUN_DIR).join("daemon.json")
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct State {
    pub pid: u32,
    /// Unix seconds.
    pub started: u64,
    pub config: PathBuf,
    /// The rules directory from the configuration (not read yet: no rules language).
    pub rules: PathBuf,
    pub log_file: PathBuf,
    pub log_format: String,
    pub log_size: u64,
    pub writing: bool,
    pub events: u64,
    pub events_written: u64,
    /// Events the kernel could not hand over (ring buffer full).
    pub lost: u64,
    pub undecodable: u64,
    pub rotations: u64,
    /// Unix seconds; None: no rotation since the daemon started.
    pub last_rotation: Option<u64>,
    pub reloads: u64,
    /// SIGHUPs whose configuration was refused (the old one kept).
    pub reloads_refused: u64,
    /// Disk actions run (space_left, admin_space_left, disk_full).
    #[serde(default)]
    pub disk_actions: u64,
    /// The databases written beside the log (`output =`), in configuration order.
    #[serde(default)]
    pub outputs: Vec<OutputState>,
}

/// One `output` database: what its writer has done since it was opened (a reload that keeps
/// the output keeps its counts).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct OutputState {
    /// The URL without its password, or `sqlite:PATH`.
    pub target: String,
    pub stored: u64,
    /// Events waiting in the spool now (the database is down).
    pub spooled: u64,
    /// Events dropped from a full spool (spool_full_action = drop_oldest).
    pub dropped: u64,
    /// Milliseconds the daemon waited on a full spool (spool_full_action = block).
    pub blocked_ms: u64,
    /// Waiting on a full spool now.
    pub blocked: bool,
    /// The writer failed (said on stderr); events no longer go to this output.
    pub failed: bool,
}

pub(crate) fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl State {
    pub(crate) fn save(&self) -> std::io::Result<()> {
        let path = state_path();
        let tmp = path.with_extension("json.tmp");
        let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
        f.write_all(serde_json::to_string(self).map_err(std::io::Error::other)?.as_bytes())?;
        std::fs::rename(&tmp, &path)
    }

    pub(crate) fn load() -> std::io::Result<State> {
        let text = std::fs::read_to_string(state_path())?;
        serde_json::from_str(&text).map_err(std::io::Error::other)
    }
}
