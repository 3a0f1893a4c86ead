//! The daemon's lock and control socket, one pair per firewall table and network namespace
//! (firewall objects belong to the namespace): `/run/tracer/guard-<netns inode>-<table>.lock`
//! (an flock, so it never goes stale) and `.sock`, in a directory only root can write.
//!
//! A second daemon finds the lock held and names the first one's pid. `ban`/`unban`/`status`
//! send one JSON request line and read one JSON reply; the daemon also checks SO_PEERCRED
//! and answers only uid 0.

use std::{
    fs::File,
    io::{BufRead, BufReader, ErrorKind, Write},
    net::IpAddr,
    os::{
        fd::AsRawFd,
        unix::{
            fs::MetadataExt,
            net::{UnixListener, UnixStream},
        },
    },
    path::{Path, PathBuf},
    time::Duration,
};

use serde::{Deserialize, Serialize};

use crate::runlock::{self, RUN_DIR};
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt},
    sync::{mpsc, oneshot},
};

/// Largest request accepted (a request is a few dozen bytes).
const MAX_REQUEST: u64 = 4096;
/// How long a client may take to send its request, and the CLI waits for the reply.
const IO_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "kebab-case")]
pub(super) enum Request {
    Ban { jail: String, ip: IpAddr, force: bool },
    Unban { jail: String, ip: IpAddr },
    Status { jail: String, json: bool },
}

/// What the CLI prints and its exit status.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct Reply {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Reply {
    pub(super) fn ok(stdout: String) -> Self {
        Reply { code: 0, stdout, stderr: String::new() }
    }

    pub(super) fn fail(code: i32, stderr: String) -> Self {
        Reply { code, stdout: String::new(), stderr }
    }
}

/// `/run/tracer/guard-<netns inode>-<table>`: firewall objects belong to the network
/// namespace, so one daemon per table per namespace.
fn base(table: &str) -> std::io::Result<PathBuf> {
    let ns = std::fs::metadata("/proc/self/ns/net")?.ino();
    Ok(Path::new(RUN_DIR).join(format!("guard-{ns}-{table}")))
}

fn sock_path(table: &str) -> std::io::Result<PathBuf> {
    base(table).map(|b| b.with_extension("sock"))
}

/// Why `run` cannot take the lock.
#[derive(Debug, thiserror::Error)]
pub(super) enum LockError {
    #[error(
        "another `tracer guard run` (pid {0}) runs the jail of nftables table {1} in this network namespace; it is left untouched"
    )]
    Running(String, String),
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
}

/// The held lock (`runlock`), holding the daemon's pid. Dropping it removes both files.
pub(super) struct Lock {
    _file: File,
    lock: PathBuf,
    sock: PathBuf,
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.sock);
        let _ = std::fs::remove_file(&self.lock);
    }
}

/// Takes the lock and binds the control socket. Nothing else is touched before this succeeds.
pub(super) fn lock(table: &str) -> Result<(Lock, UnixListener), LockError> {
    let io = |what: &Path| {
        let what = what.display().to_string();
        move |e| LockError::Io(what, e)
    };
    let from_runlock = |e| match e {
        runlock::LockError::Held(pid) => LockError::Running(pid, table.to_string()),
        runlock::LockError::Io(what, e) => LockError::Io(what, e),
    };
    runlock::run_dir().map_err(from_runlock)?;
    let b = base(table).map_err(io(Path::new("/proc/self/ns/net")))?;
    let (lock, sock) = (b.with_extension("lock"), b.with_extension("sock"));
    let file = runlock::lock(&lock).map_err(from_runlock)?;
    // A socket left by a daemon that died: the lock says nobody uses it.
    let _ = std::fs::remove_file(&sock);
    let held = Lock { _file: file, lock, sock: sock.clone() };
    let listener = UnixListener::bind(&sock).map_err(io(&sock))?;
    listener.set_nonblocking(true).map_err(io(&sock))?;
    Ok((held, listener))
}

/// The peer's credentials (for a client: the daemon's, as of its listen()).
fn peer_cred(s: &UnixStream) -> std::io::Result<libc::ucred> {
    let mut cred = libc::ucred { pid: 0, uid: 0, gid: 0 };
    let mut len = size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: SO_PEERCRED writes at most `len` bytes into the ucred we own.
    let rc = unsafe {
        libc::getsockopt(s.as_raw_fd(), libc::SOL_SOCKET, libc::SO_PEERCRED, (&raw mut cred).cast(), &mut len)
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(cred)
}

fn peer_pid(s: &UnixStream) -> Option<i32> {
    peer_cred(s).ok().map(|c| c.pid)
}

/// Sends `req` to the running daemon. Ok(None): no daemon runs the jail of `table` here.
pub(super) fn call(table: &str, req: &Request) -> anyhow::Result<Option<Reply>> {
    let path = sock_path(table)?;
    let mut s = match UnixStream::connect(&path) {
        Ok(s) => s,
        Err(e) if matches!(e.kind(), ErrorKind::ConnectionRefused | ErrorKind::NotFound) => return Ok(None),
        Err(e) if e.kind() == ErrorKind::PermissionDenied => {
            anyhow::bail!("permission denied: only root controls the guard ({}: {e})", path.display())
        }
        Err(e) => anyhow::bail!("cannot reach the guard daemon at {}: {e}", path.display()),
    };
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut line = serde_json::to_string(req)?;
    line.push('\n');
    // A daemon that refuses the peer answers without reading: its answer still counts.
    let sent = s.write_all(line.as_bytes());
    let mut reply = String::new();
    BufReader::new(&s).read_line(&mut reply)?;
    if reply.is_empty() {
        sent?;
    }
    let r = serde_json::from_str(&reply)
        .map_err(|e| anyhow::anyhow!("the guard daemon (pid {:?}) sent no valid reply: {e}", peer_pid(&s)))?;
    Ok(Some(r))
}

/// A request waiting for the daemon's loop, which answers through `reply`.
pub(super) struct Pending {
    pub request: Request,
    pub reply: oneshot::Sender<Reply>,
}

/// Accepts connections for the daemon's lifetime: each request (from uid 0 only) is passed
/// to the loop through the returned channel, one at a time, so requests never race with
/// each other or with the jail.
pub(super) fn serve(listener: UnixListener) -> std::io::Result<mpsc::Receiver<Pending>> {
    let listener = tokio::net::UnixListener::from_std(listener)?;
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(client(stream, tx.clone()));
        }
    });
    Ok(rx)
}

async fn client(mut stream: tokio::net::UnixStream, tx: mpsc::Sender<Pending>) {
    let reply = match stream.peer_cred() {
        Ok(c) if c.uid() == 0 => {
            let mut line = String::new();
            let mut r = tokio::io::BufReader::new(&mut stream).take(MAX_REQUEST);
            match tokio::time::timeout(IO_TIMEOUT, r.read_line(&mut line)).await {
                Ok(Ok(_)) => match serde_json::from_str::<Request>(&line) {
                    Ok(request) => {
                        let (reply, rx) = oneshot::channel();
                        if tx.send(Pending { request, reply }).await.is_err() {
                            return;
                        }
                        rx.await.unwrap_or_else(|_| Reply::fail(1, "the guard daemon is stopping".into()))
                    }
                    Err(e) => Reply::fail(2, format!("bad request: {e}")),
                },
                _ => return,
            }
        }
        Ok(c) => Reply::fail(1, format!("permission denied: uid {} (only root controls the guard)", c.uid())),
        Err(_) => return,
    };
    if let Ok(mut line) = serde_json::to_string(&reply) {
        line.push('\n');
        let _ = stream.write_all(line.as_bytes()).await;
    }
}
