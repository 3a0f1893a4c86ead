//! What sshd writes to syslog (/dev/log datagrams) or to stderr (`sshd -e`), captured at
//! the system call so the guard needs no log file, rotation or syslog daemon. Only messages
//! of trusted sshd processes are captured (executable by inode, euid 0), each with the peer
//! of the connection socket that process holds, read from the kernel's socket.

/// Bytes of one message carried at most (syslog lines are far shorter).
pub const SSHLOG_MAX: u32 = 2048;

pub const VIA_SENDTO: u32 = 1;
pub const VIA_WRITE: u32 = 2;

/// `SshLogBody::peer_status`: the process holds no socket accepted by a trusted sshd.
pub const PEER_NONE: u32 = 0;
/// Exactly one peer address among the accepted sockets the process holds.
pub const PEER_FOUND: u32 = 1;
/// Accepted sockets of several peers: the message cannot be attributed.
pub const PEER_AMBIGUOUS: u32 = 2;

/// Trusted sshd executables hold at most this many entries.
pub const SSHD_EXES_MAX: u32 = 16;
/// sshd connection sockets remembered (an LRU map: see its definition).
pub const SSH_SOCKS_MAX: u32 = 65536;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SshLogBody {
    pub fd: i32,
    /// `VIA_SENDTO` or `VIA_WRITE`.
    pub via: u32,
    /// Bytes the call wrote; more than `len` when the message was cut.
    pub total: u32,
    /// Bytes that follow.
    pub len: u32,
    /// `PEER_*`.
    pub peer_status: u32,
    /// AF_INET or AF_INET6 when `PEER_FOUND`.
    pub peer_family: u16,
    /// Host byte order.
    pub peer_port: u16,
    /// IPv4 in the first 4 bytes, or IPv6; network byte order.
    pub peer_addr: [u8; 16],
}

/// A trusted executable: `inode.i_ino` and `inode.i_sb->s_dev` (the kernel's dev_t,
/// `major << 20 | minor`) of the file.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ExeKey {
    pub ino: u64,
    pub dev: u32,
    pub _pad: u32,
}

/// A socket accepted by a trusted sshd as root: its `struct sock *` and the inode number of
/// its `struct socket` (a freed and reused sock address alone would not identify it).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SockKey {
    pub sk: u64,
    pub ino: u64,
}

// SAFETY: #[repr(C)], integer fields only, padding explicit: every bit pattern is valid.
#[cfg(feature = "user")]
unsafe impl aya::Pod for SshLogBody {}
// SAFETY: #[repr(C)], a u64 and two u32 (the second explicit padding): every bit pattern is valid.
#[cfg(feature = "user")]
unsafe impl aya::Pod for ExeKey {}
// SAFETY: #[repr(C)], two u64, no padding: every bit pattern is valid.
#[cfg(feature = "user")]
unsafe impl aya::Pod for SockKey {}
