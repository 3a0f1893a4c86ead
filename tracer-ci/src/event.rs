//! The engine's input: one small event per fact the kernel reported, already decoded.
//! Strings are bytes (the kernel owes no UTF-8); they are escaped only when rendered.

use std::net::SocketAddr;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Wall-clock nanoseconds since the Unix epoch.
    pub time_ns: u64,
    pub pid: u32,
    /// None when the kernel could not read it.
    pub ppid: Option<u32>,
    pub comm: Vec<u8>,
    pub what: What,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum What {
    /// An execve; `filename` as the kernel resolved it.
    Exec {
        filename: Vec<u8>,
        argv: Vec<Vec<u8>>,
        ok: bool,
    },
    /// An open with its flags (O_ACCMODE, O_CREAT, O_TRUNC, O_EXCL as in open(2)).
    Open {
        path: Vec<u8>,
        flags: u32,
        error: Option<String>,
    },
    Connect {
        peer: Peer,
        result: ConnectResult,
    },
    /// How a TCP connect ended, seen by the kernel after (or, for a blocking connect, just
    /// before) connect(2) returned: it settles an `InProgress` connect to the same peer.
    ConnectOutcome {
        peer: SocketAddr,
        result: ConnectResult,
    },
    /// The process ended: its exit status, or the signal that killed it.
    Exit {
        status: Option<i32>,
        signal: Option<i32>,
    },
    /// A socket made to listen on this address.
    Listen {
        local: SocketAddr,
    },
    /// A DNS message sent to or read from port 53, as captured (untrusted bytes).
    Dns {
        message: Vec<u8>,
    },
    /// A file-system change other than a write through open(2).
    Fs {
        op: FsOp,
        path: Vec<u8>,
        to: Option<Vec<u8>>,
        error: Option<String>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FsOp {
    Delete,
    Rename,
    Chmod,
    Mkdir,
}

impl FsOp {
    pub fn name(self) -> &'static str {
        match self {
            FsOp::Delete => "deleted",
            FsOp::Rename => "renamed",
            FsOp::Chmod => "chmod",
            FsOp::Mkdir => "mkdir",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Peer {
    Inet(SocketAddr),
    /// sun_path; abstract names start with NUL.
    Unix(Vec<u8>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnectResult {
    /// connect(2) returned 0.
    Connected,
    /// A non-blocking connect that had not finished when connect(2) returned.
    InProgress,
    /// The errno name.
    Failed(String),
}

/// open(2) flag bits the model reads.
pub const O_ACCMODE: u32 = 0o3;
pub const O_WRONLY: u32 = 0o1;
pub const O_RDWR: u32 = 0o2;
pub const O_CREAT: u32 = 0o100;
pub const O_EXCL: u32 = 0o200;
pub const O_TRUNC: u32 = 0o1000;

/// Bytes as printable ASCII: `\\` and `\xNN` for everything else, so a hostile name can
/// neither break a table nor pose as another name.
pub fn escape(b: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(b.len());
    for &c in b {
        match c {
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(c as char),
            _ => {
                let _ = write!(s, "\\x{c:02x}");
            }
        }
    }
    s
}

/// Signal names for a summary ("SIGTERM"); numbers for the rest.
pub fn signal_name(sig: i32) -> String {
    const NAMES: [&str; 31] = [
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGILL",
        "SIGTRAP",
        "SIGABRT",
        "SIGBUS",
        "SIGFPE",
        "SIGKILL",
        "SIGUSR1",
        "SIGSEGV",
        "SIGUSR2",
        "SIGPIPE",
        "SIGALRM",
        "SIGTERM",
        "SIGSTKFLT",
        "SIGCHLD",
        "SIGCONT",
        "SIGSTOP",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGURG",
        "SIGXCPU",
        "SIGXFSZ",
        "SIGVTALRM",
        "SIGPROF",
        "SIGWINCH",
        "SIGIO",
        "SIGPWR",
        "SIGSYS",
    ];
    usize::try_from(sig)
        .ok()
        .and_then(|i| i.checked_sub(1))
        .and_then(|i| NAMES.get(i))
        .map_or_else(|| format!("signal {sig}"), |n| (*n).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_everything_unprintable() {
        assert_eq!(escape(b"a b|c"), "a b|c");
        assert_eq!(escape(b"x\n\x1b[31m\\\xff"), "x\\x0a\\x1b[31m\\\\\\xff");
        assert_eq!(signal_name(15), "SIGTERM");
        assert_eq!(signal_name(0), "signal 0");
        assert_eq!(signal_name(64), "signal 64");
    }
}
