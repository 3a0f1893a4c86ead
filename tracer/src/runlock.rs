//! Daemons' pid locks in root's run directory, shared by `guard run` and `daemon`: an flock
//! (released by the kernel when the holder dies, so it never goes stale) on a file holding
//! the holder's pid, in a 0700 directory only root can write (no other user can create,
//! squat or reach the files).

use std::{
    fs::{File, OpenOptions},
    io::{ErrorKind, Read, Write},
    os::{
        fd::AsRawFd,
        unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt},
    },
    path::Path,
};

/// Root's directory for locks, sockets and state files.
pub(crate) const RUN_DIR: &str = "/run/tracer";

/// Why a lock cannot be taken.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LockError {
    /// Another process holds it: its pid, as it wrote it.
    #[error("held by pid {0}")]
    Held(String),
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
}

fn io(what: &Path) -> impl FnOnce(std::io::Error) -> LockError {
    let what = what.display().to_string();
    move |e| LockError::Io(what, e)
}

/// Creates `RUN_DIR` (0700) if needed and checks that only root can write it.
pub(crate) fn run_dir() -> Result<&'static Path, LockError> {
    let dir = Path::new(RUN_DIR);
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(io(dir))?;
    let meta = std::fs::metadata(dir).map_err(io(dir))?;
    if meta.uid() != 0 || meta.mode() & 0o022 != 0 {
        let e = std::io::Error::other("must be owned by root and writable by root only");
        return Err(LockError::Io(RUN_DIR.into(), e));
    }
    Ok(dir)
}

fn try_flock(file: &mut File, path: &Path, op: i32) -> Result<(), LockError> {
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(file.as_raw_fd(), op | libc::LOCK_NB) } != 0 {
        let e = std::io::Error::last_os_error();
        if e.kind() != ErrorKind::WouldBlock {
            return Err(io(path)(e));
        }
        let mut pid = String::new();
        let _ = file.read_to_string(&mut pid);
        return Err(LockError::Held(pid.trim().to_string()));
    }
    Ok(())
}

/// Takes the exclusive lock on `path` (in `run_dir()`) and writes our pid into it. Keep the
/// file open for as long as the lock is held.
pub(crate) fn lock(path: &Path) -> Result<File, LockError> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(io(path))?;
    try_flock(&mut file, path, libc::LOCK_EX)?;
    file.set_len(0).map_err(io(path))?;
    write!(file, "{}", std::process::id()).map_err(io(path))?;
    Ok(file)
}

/// The pid of the process holding the lock on `path`, or None when nobody holds it.
pub(crate) fn holder(path: &Path) -> Result<Option<String>, LockError> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(path)(e)),
    };
    match try_flock(&mut file, path, libc::LOCK_SH) {
        Ok(()) => Ok(None),
        Err(LockError::Held(pid)) => Ok(Some(pid)),
        Err(e) => Err(e),
    }
}
