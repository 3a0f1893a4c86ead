//! What sshd writes to syslog (/dev/log datagrams) or to stderr (`sshd -e`), captured at
//! the system call so the guard needs no log file, rotation or syslog daemon.

/// Bytes of one message carried at most (syslog lines are far shorter).
pub const SSHLOG_MAX: u32 = 2048;

pub const VIA_SENDTO: u32 = 1;
pub const VIA_WRITE: u32 = 2;

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
}

// SAFETY: #[repr(C)], integer fields only, padding explicit: every bit pattern is valid.
#[cfg(feature = "user")]
unsafe impl aya::Pod for SshLogBody {}
