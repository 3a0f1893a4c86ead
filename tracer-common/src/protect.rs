//! `tracer protect`'s kernel maps: files and sockets are named by (inode, device), the same
//! key the guard's trusted sshd executables use (`sshlog::ExeKey`), so a rename, a hard or
//! symbolic link or a relative name reaches the same entry.

pub use crate::sshlog::ExeKey as InodeKey;

/// Protected private-key files at most.
pub const PROTECTED_MAX: u32 = 4096;
/// Threads whose call an LSM program denied, until the call's exit reports it.
pub const DENIED_MAX: u32 = 16384;
/// Allowed executables at most.
pub const ALLOWED_MAX: u32 = 64;
/// Agent sockets watched at most.
pub const AGENTS_MAX: u32 = 1024;
