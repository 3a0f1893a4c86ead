//! The header every record starts with.
//!
//! A record is `Header`, then the kind's fixed body, then variable-length byte strings
//! whose lengths the header and body give, in this order: exe, root, the body's strings.
//! Records are built in a per-CPU scratch area and copied into the ring buffer with their
//! real length, so a 200-byte open does not cost a 64 KiB reservation.

/// Kernel's "unset" loginuid / session id ((uid_t)-1).
pub const AUID_UNSET: u32 = u32::MAX;

#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    Exec = 1,
    Open = 2,
    Connect = 3,
    /// A write by sshd to syslog or stderr (the guard's source).
    SshLog = 4,
    /// Any other syscall a rule selected (`syscall::SyscallBody`).
    Syscall = 5,
    /// A process ended (`tracer ci`: exit status per process).
    Exit = 6,
    /// How a TCP connect ended (`tracer ci`).
    ConnectOutcome = 7,
    /// A DNS message a traced process sent or read (`tracer ci`).
    Dns = 8,
    /// A traced process made an IPv4/IPv6 socket listen (`tracer ci`).
    Listen = 9,
}

impl TryFrom<u32> for EventKind {
    type Error = u32;
    fn try_from(v: u32) -> Result<Self, u32> {
        match v {
            1 => Ok(Self::Exec),
            2 => Ok(Self::Open),
            3 => Ok(Self::Connect),
            4 => Ok(Self::SshLog),
            5 => Ok(Self::Syscall),
            6 => Ok(Self::Exit),
            7 => Ok(Self::ConnectOutcome),
            8 => Ok(Self::Dns),
            9 => Ok(Self::Listen),
            other => Err(other),
        }
    }
}

/// `Header::flags` bits.
pub const F_ARGV_TRUNCATED: u32 = 1 << 0;
/// A path walk hit its depth or length bound; the path is the deepest part.
pub const F_PATH_TRUNCATED: u32 = 1 << 1;
/// The process root (fs->root) is not its mount namespace's root.
pub const F_CHROOTED: u32 = 1 << 2;
/// Whether the process is chrooted could not be read.
pub const F_ROOT_UNKNOWN: u32 = 1 << 3;
/// The kernel has no loginuid/sessionid (no CONFIG_AUDIT or field missing).
pub const F_AUID_UNKNOWN: u32 = 1 << 4;
pub const F_MNTNS_UNKNOWN: u32 = 1 << 5;
pub const F_PPID_UNKNOWN: u32 = 1 << 6;
pub const F_CRED_UNKNOWN: u32 = 1 << 7;
/// `exe_len` bytes of exe path follow (sent with execs and a process's first event).
pub const F_EXE_PRESENT: u32 = 1 << 8;
/// A relative open whose base directory (cwd or dirfd) could not be resolved.
pub const F_BASE_UNKNOWN: u32 = 1 << 9;
/// The record's strings were cut to fit the record.
pub const F_DATA_TRUNCATED: u32 = 1 << 10;
/// `Header::args` holds the syscall's arguments.
pub const F_ARGS_PRESENT: u32 = 1 << 11;
/// The record ends with a `rules::RuleBits` trailer (`RULES_TRAILER` bytes, counted in
/// `size`): the rules whose kernel conditions held (`trace --rules`).
pub const F_RULES: u32 = 1 << 12;
/// The call is a 32-bit (i386) one: `syscall` is an i386 number.
pub const F_COMPAT: u32 = 1 << 13;
/// Bytes of the `F_RULES` trailer.
pub const RULES_TRAILER: usize = size_of::<crate::rules::RuleBits>();
/// The first record of a report entry counted in the kernel's `AGG` map (`AGGREGATE`).
pub const F_AGG: u32 = 1 << 14;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Header {
    /// `EventKind` as u32.
    pub kind: u32,
    pub flags: u32,
    /// CLOCK_BOOTTIME nanoseconds (bpf_ktime_get_boot_ns).
    pub time_ns: u64,
    /// Syscall return: fd, 0, or -errno.
    pub ret: i64,
    pub tgid: u32,
    pub tid: u32,
    pub ppid: u32,
    pub uid: u32,
    pub gid: u32,
    pub euid: u32,
    pub egid: u32,
    pub suid: u32,
    pub sgid: u32,
    pub fsuid: u32,
    pub fsgid: u32,
    pub auid: u32,
    pub ses: u32,
    pub mntns: u32,
    /// x86_64 syscall number that produced the event.
    pub syscall: u32,
    pub exe_len: u16,
    pub root_len: u16,
    pub comm: [u8; 16],
    /// The first four syscall arguments (registers, as audit logs a0..a3); valid with
    /// `F_ARGS_PRESENT`.
    pub args: [u64; 4],
    /// Total record length in bytes, header included.
    pub size: u32,
    pub _pad: u32,
}

pub const HEADER_SIZE: usize = size_of::<Header>();
/// Longest path a walk produces (PATH_MAX).
pub const PATH_MAX: usize = 4096;

// SAFETY: #[repr(C)], integer fields only, padding explicit: every bit pattern is valid.
#[cfg(feature = "user")]
unsafe impl aya::Pod for Header {}
