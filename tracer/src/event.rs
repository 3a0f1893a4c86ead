//! The user-side event: decoded, enriched and owned. Serialisation lives in the sinks; the
//! kernel layout lives in tracer-common. Strings are bytes: the kernel owes us no UTF-8.

use std::net::IpAddr;

pub(crate) use tracer_common::event::AUID_UNSET;

/// A loginuid or session id: the kernel's "unset" (-1) is a value of its own, and a kernel
/// without CONFIG_AUDIT gives none at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Id {
    Set(u32),
    Unset,
    Unknown,
}

impl Id {
    pub(crate) fn from_raw(v: u32, known: bool) -> Self {
        match (known, v) {
            (false, _) => Id::Unknown,
            (true, AUID_UNSET) => Id::Unset,
            (true, v) => Id::Set(v),
        }
    }
    /// The raw kernel value (-1 for unset/unknown), as audit logs it.
    pub(crate) fn raw(self) -> u32 {
        match self {
            Id::Set(v) => v,
            _ => AUID_UNSET,
        }
    }
}

impl std::fmt::Display for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            Id::Set(v) => write!(f, "{v}"),
            Id::Unset => f.write_str("unset"),
            Id::Unknown => f.write_str("unknown"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Event {
    /// Wall-clock time, nanoseconds since the Unix epoch.
    pub time_ns: u64,
    pub pid: u32,
    pub tid: u32,
    /// None when it could not be read.
    pub ppid: Option<u32>,
    pub uid: u32,
    pub gid: u32,
    pub euid: u32,
    pub egid: u32,
    pub suid: u32,
    pub sgid: u32,
    pub fsuid: u32,
    pub fsgid: u32,
    pub auid: Id,
    pub ses: Id,
    pub comm: Vec<u8>,
    /// None when neither the kernel nor /proc told us.
    pub exe: Option<Vec<u8>>,
    pub mntns: Option<u32>,
    /// None when the kernel could not tell.
    pub chrooted: Option<bool>,
    /// Host path of the process root: "/" unless chrooted.
    pub root: Vec<u8>,
    pub syscall: u32,
    /// The syscall's first four arguments (audit's a0..a3), when the kernel read them.
    pub args: Option<[u64; 4]>,
    /// fd, 0, or -errno.
    pub ret: i64,
    /// A 32-bit (i386) call: `syscall` is an i386 number.
    pub compat: bool,
    /// `trace --rules`: the rules whose kernel conditions held (the record's trailer).
    pub rules: Option<tracer_common::rules::RuleBits>,
    /// The keys of the rule that selected the event (`trace --rules`), in the rule's order.
    pub keys: Vec<String>,
    /// `tracer report`: the kernel counts this entry's further occurrences under this key.
    pub agg: Option<tracer_common::agg::AggKey>,
    pub detail: Detail,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Detail {
    Exec(Exec),
    Open(Open),
    Connect(Connect),
    /// A message sshd wrote (the guard's source).
    Log(LogLine),
    /// A traced process ended (`tracer ci`).
    Exit(Exit),
    /// How a traced TCP connect ended (`tracer ci`): `ret` is 0 or -errno.
    ConnectOutcome(ConnectOutcome),
    /// A DNS message sent to or read from port 53 (`tracer ci`).
    Dns(DnsMsg),
    /// A traced process made an IPv4/IPv6 socket listen (`tracer ci`).
    Listen(Listen),
    /// Any other syscall a rule selected (`trace --rules`).
    Syscall(Syscall),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Listen {
    pub fd: i32,
    pub local: std::net::SocketAddr,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DnsMsg {
    pub fd: i32,
    pub sent: bool,
    /// The message's first bytes (at most 512).
    pub data: Vec<u8>,
    pub truncated: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ConnectOutcome {
    pub peer: Peer,
    pub established: bool,
}

/// A process's end: `code` is wait(2)'s status word (None: the kernel could not tell).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Exit {
    pub code: Option<u32>,
}

impl Exit {
    /// The exit status of a normal exit.
    pub(crate) fn status(&self) -> Option<i32> {
        self.code.filter(|c| c & 0x7f == 0).map(|c| ((c >> 8) & 0xff) as i32)
    }
    /// The signal that killed the process.
    pub(crate) fn signal(&self) -> Option<i32> {
        self.code.map(|c| (c & 0x7f) as i32).filter(|&s| s != 0)
    }
}

/// A syscall with no record of its own: its names (audit's PATH items), the working
/// directory and the socket address it passed or got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Syscall {
    pub names: Vec<Name>,
    pub cwd: Option<Vec<u8>>,
    /// The raw `struct sockaddr` bytes (bind, accept).
    pub sockaddr: Vec<u8>,
}

/// One name of a syscall.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Name {
    /// Absolute, lexically normalised host path (the name as passed when its base is unknown).
    pub host_path: Vec<u8>,
    /// The name as the call passed it (an fd's path for `fd`).
    pub name: Vec<u8>,
    /// The name is an open descriptor's file.
    pub fd: bool,
    pub base_unknown: bool,
    /// The object's inode as the kernel read it (fd names).
    pub inode: Option<Inode>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Inode {
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
    pub ino: u64,
    /// The kernel's s_dev (major << 20 | minor).
    pub dev: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LogLine {
    pub fd: i32,
    /// Through sendto(2) to a syslog socket, or write(2) to stderr.
    pub via_syslog: bool,
    pub data: Vec<u8>,
    /// The call wrote more than was captured.
    pub truncated: bool,
    /// The remote end of the connection socket the sender holds, read by the kernel.
    pub peer: LogPeer,
}

/// Whom a captured sshd message is about, from the sockets the trusted sshd accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LogPeer {
    /// The sender holds no accepted connection socket (the listener, a startup message).
    None,
    /// Exactly one peer; IPv4-mapped IPv6 addresses are folded to IPv4.
    Found(std::net::SocketAddr),
    /// Sockets of several peers: the message cannot be attributed.
    Ambiguous,
}

impl LogPeer {
    /// The address, when there is exactly one.
    pub(crate) fn ip(&self) -> Option<IpAddr> {
        match self {
            LogPeer::Found(a) => Some(a.ip()),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Exec {
    /// The name given to exec (successes: as the kernel resolved it, e.g. /usr/bin/uname).
    pub filename: Vec<u8>,
    /// Host path of the working directory.
    pub cwd: Vec<u8>,
    pub argv: Vec<Vec<u8>>,
    pub argv_truncated: bool,
    /// The real argument count, when the kernel could tell (it exceeds `argv.len()` when
    /// argv was cut).
    pub argc: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Open {
    /// Absolute, lexically normalised host path.
    pub host_path: Vec<u8>,
    /// The name as the call passed it.
    pub name: Vec<u8>,
    pub flags: u32,
    pub mode: u32,
    pub dfd: i32,
    /// The name was relative and its base directory could not be resolved.
    pub base_unknown: bool,
    /// Host path of the working directory, when the kernel sent it (cwd-relative names,
    /// and every open with `--format audit`).
    pub cwd: Option<Vec<u8>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Peer {
    Inet {
        address: IpAddr,
        port: u16,
    },
    /// sun_path; abstract names start with NUL.
    Unix {
        path: Vec<u8>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Connect {
    pub fd: i32,
    pub peer: Peer,
    /// A connected unix socket: the (inode, device) of the socket file it reached, read by the
    /// kernel at the call (the name in `peer` may have been re-pointed since).
    pub unix_file: Option<tracer_common::protect::InodeKey>,
}

impl Event {
    pub(crate) fn ok(&self) -> bool {
        self.ret >= 0
    }

    pub(crate) fn error(&self) -> Option<&'static str> {
        crate::errno::name(self.ret)
    }

    /// A path as the process itself sees it: the host path with the chroot prefix removed.
    pub(crate) fn in_root<'a>(&self, host: &'a [u8]) -> &'a [u8] {
        if self.root == b"/" {
            return host;
        }
        match host.strip_prefix(self.root.as_slice()) {
            Some(b"") => b"/",
            Some(rest) if rest.starts_with(b"/") => rest,
            _ => host,
        }
    }
}

impl Detail {
    /// The event's kind as `trace` names it (text and JSON `event`).
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Detail::Exec(_) => "exec",
            Detail::Open(_) => "open",
            Detail::Connect(_) => "connect",
            Detail::Log(_) => "log",
            Detail::Exit(_) => "exit",
            Detail::ConnectOutcome(_) => "connect_outcome",
            Detail::Dns(_) => "dns",
            Detail::Listen(_) => "listen",
            Detail::Syscall(_) => "syscall",
        }
    }
}

impl Peer {
    pub(crate) fn family(&self) -> &'static str {
        match self {
            Peer::Inet { address: IpAddr::V4(_), .. } => "inet",
            Peer::Inet { address: IpAddr::V6(_), .. } => "inet6",
            Peer::Unix { .. } => "unix",
        }
    }
}

/// Lexical normalisation of an absolute path: `.` dropped, `..` pops (never above `/`),
/// repeated slashes folded. Symlinks are not followed: this is what the call named.
pub(crate) fn normalize(path: &[u8]) -> Vec<u8> {
    let mut parts: Vec<&[u8]> = Vec::new();
    for c in path.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    let mut out = Vec::with_capacity(path.len() + 1);
    for p in parts {
        out.push(b'/');
        out.extend_from_slice(p);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    out
}

/// `base` + `/` + `name`, normalised; `name` wins when absolute.
pub(crate) fn join(base: &[u8], name: &[u8]) -> Vec<u8> {
    if name.starts_with(b"/") {
        return normalize(name);
    }
    let mut p = base.to_vec();
    p.push(b'/');
    p.extend_from_slice(name);
    normalize(&p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_lexically() {
        assert_eq!(normalize(b"/a/./b//c/../d"), b"/a/b/d");
        assert_eq!(normalize(b"/../.."), b"/");
        assert_eq!(normalize(b"/"), b"/");
        assert_eq!(join(b"/tmp/x", b"../y/z"), b"/tmp/y/z");
        assert_eq!(join(b"/tmp", b"/etc/passwd"), b"/etc/passwd");
        assert_eq!(join(b"/", b"a b\nc"), b"/a b\nc");
    }

    #[test]
    fn ids() {
        assert_eq!(Id::from_raw(u32::MAX, true), Id::Unset);
        assert_eq!(Id::from_raw(7005, true), Id::Set(7005));
        assert_eq!(Id::from_raw(7005, false), Id::Unknown);
        assert_eq!(Id::Unset.to_string(), "unset");
    }
}
