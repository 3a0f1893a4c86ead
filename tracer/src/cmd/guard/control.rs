//! The daemon's lock and control socket: one abstract unix socket,
//! `@tracer-guard/<nft table>`, bound by `tracer guard run`.
//!
//! Abstract names live in the network namespace, as the firewall objects do, and vanish
//! with the process, so the lock is exactly "one daemon per firewall table per namespace"
//! and never goes stale. A second daemon finds the name taken and learns the first one's
//! pid from SO_PEERCRED. `ban`/`unban`/`status` send one JSON request line and read one
//! JSON reply; the daemon accepts them only from uid 0.

use std::{
    io::{BufRead, BufReader, Write},
    net::IpAddr,
    os::{
        linux::net::SocketAddrExt,
        unix::net::{SocketAddr, UnixListener, UnixStream},
    },
    time::Duration,
};

use serde::{Deserialize, Serialize};
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
pub enum Request {
    Ban { jail: String, ip: IpAddr, force: bool },
    Unban { jail: String, ip: IpAddr },
    Status { jail: String, json: bool },
}

/// What the CLI prints and its exit status.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Reply {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Reply {
    pub fn ok(stdout: String) -> Self {
        Reply { code: 0, stdout, stderr: String::new() }
    }

    pub fn fail(code: i32, stderr: String) -> Self {
        Reply { code, stdout: String::new(), stderr }
    }
}

fn name(table: &str) -> String {
    format!("tracer-guard/{table}")
}

fn addr(table: &str) -> std::io::Result<SocketAddr> {
    SocketAddr::from_abstract_name(name(table).as_bytes())
}

/// Why `run` cannot take the lock.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another `tracer guard run` (pid {0}) runs the jail of nftables table {1} in this network namespace; it is left untouched"
    )]
    Running(i32, String),
    #[error("control socket @{0}: {1}")]
    Io(String, std::io::Error),
}

/// Takes the lock: binds the control socket. Nothing else is touched before this succeeds.
pub fn lock(table: &str) -> Result<UnixListener, LockError> {
    let io = |e| LockError::Io(name(table), e);
    let a = addr(table).map_err(io)?;
    match UnixListener::bind_addr(&a) {
        Ok(l) => {
            l.set_nonblocking(true).map_err(io)?;
            Ok(l)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            let s = UnixStream::connect_addr(&a).map_err(io)?;
            Err(LockError::Running(peer_pid(&s).unwrap_or(0), table.to_string()))
        }
        Err(e) => Err(io(e)),
    }
}

/// The peer's credentials (for a client: the daemon's, as of its listen()).
fn peer_cred(s: &UnixStream) -> std::io::Result<libc::ucred> {
    use std::os::fd::AsRawFd;
    let mut cred = libc::ucred { pid: 0, uid: 0, gid: 0 };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
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
pub fn call(table: &str, req: &Request) -> anyhow::Result<Option<Reply>> {
    let a = addr(table)?;
    let mut s = match UnixStream::connect_addr(&a) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => return Ok(None),
        Err(e) => return Err(anyhow::anyhow!("cannot reach the guard daemon at @{}: {e}", name(table))),
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
pub struct Pending {
    pub request: Request,
    pub reply: oneshot::Sender<Reply>,
}

/// Accepts connections for the daemon's lifetime: each request (from uid 0 only) is passed
/// to the loop through the returned channel, one at a time, so requests never race with
/// each other or with the jail.
pub fn serve(listener: UnixListener) -> std::io::Result<mpsc::Receiver<Pending>> {
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
