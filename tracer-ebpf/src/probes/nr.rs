//! The x86_64 system call numbers the programs watch. A leaf module: the dispatcher
//! (`syscalls.rs`) and the hook families both name them without importing each other.

pub(crate) const NR_READ: u32 = 0;
pub(crate) const NR_WRITE: u32 = 1;
pub(crate) const NR_OPEN: u32 = 2;
pub(crate) const NR_CONNECT: u32 = 42;
pub(crate) const NR_ACCEPT: u32 = 43;
pub(crate) const NR_BIND: u32 = 49;
pub(crate) const NR_SENDTO: u32 = 44;
pub(crate) const NR_RECVFROM: u32 = 45;
pub(crate) const NR_LISTEN: u32 = 50;
pub(crate) const NR_CLONE: u32 = 56;
pub(crate) const NR_FORK: u32 = 57;
pub(crate) const NR_VFORK: u32 = 58;
pub(crate) const NR_EXECVE: u32 = 59;
pub(crate) const NR_EXIT: u32 = 60;
pub(crate) const NR_EXIT_GROUP: u32 = 231;
pub(crate) const NR_CREAT: u32 = 85;
pub(crate) const NR_OPENAT: u32 = 257;
pub(crate) const NR_ACCEPT4: u32 = 288;
pub(crate) const NR_EXECVEAT: u32 = 322;
pub(crate) const NR_CLONE3: u32 = 435;
pub(crate) const NR_OPENAT2: u32 = 437;
pub(crate) const NR_RT_SIGRETURN: u32 = 15;

// i386 numbers (32-bit calls, TS_COMPAT).
pub(crate) const NR_IA32_EXIT: u32 = 1;
pub(crate) const NR_IA32_EXECVE: u32 = 11;
pub(crate) const NR_IA32_EXECVEAT: u32 = 358;
pub(crate) const NR_IA32_SIGRETURN: u32 = 119;
pub(crate) const NR_IA32_RT_SIGRETURN: u32 = 173;
pub(crate) const NR_IA32_EXIT_GROUP: u32 = 252;
