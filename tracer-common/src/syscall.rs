//! Any syscall a rule selected that has no record of its own (`EventKind::Syscall`): its
//! names (audit's PATH items), the working directory (audit's CWD) and a socket address.
//!
//! Strings follow the body in this order: for each name its `path` then its `base`, then
//! `cwd`, then `sockaddr`.

/// `NameRec::flags`: the base directory of a relative name could not be resolved.
pub const NAME_BASE_UNKNOWN: u8 = 1 << 0;
/// `NameRec::{uid, gid, mode, ino, dev}` hold the object's inode (fd names).
pub const NAME_INODE: u8 = 1 << 1;

/// One name of the call, as `rules::NameSpec` located it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NameRec {
    /// `rules::NAME_*`; `NAME_NONE` for an unused slot.
    pub kind: u8,
    pub flags: u8,
    /// The name as passed (NAME_PATH*) or the host path of the fd's file (NAME_FD).
    pub path_len: u16,
    /// Host path of the directory a relative name is resolved against (0: absolute or none).
    pub base_len: u16,
    pub _pad: u16,
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
    /// The kernel's s_dev (major << 20 | minor).
    pub dev: u32,
    pub ino: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyscallBody {
    pub names: [NameRec; 2],
    /// Host path of the working directory.
    pub cwd_len: u16,
    /// Bytes of the socket address (bind/connect/accept-like calls).
    pub sockaddr_len: u16,
    pub _pad: u32,
}

// SAFETY: #[repr(C)], integer fields only, padding explicit: every bit pattern is valid.
#[cfg(feature = "user")]
unsafe impl aya::Pod for NameRec {}
// SAFETY: as above.
#[cfg(feature = "user")]
unsafe impl aya::Pod for SyscallBody {}
