//! The x86_64 system call numbers the programs watch. A leaf module: the dispatcher
//! (`syscalls.rs`) and the hook families both name them without importing each other.

pub const NR_WRITE: u32 = 1;
pub const NR_OPEN: u32 = 2;
pub const NR_CONNECT: u32 = 42;
pub const NR_SENDTO: u32 = 44;
pub const NR_CLONE: u32 = 56;
pub const NR_FORK: u32 = 57;
pub const NR_VFORK: u32 = 58;
pub const NR_EXECVE: u32 = 59;
pub const NR_EXIT: u32 = 60;
pub const NR_EXIT_GROUP: u32 = 231;
pub const NR_CREAT: u32 = 85;
pub const NR_OPENAT: u32 = 257;
pub const NR_EXECVEAT: u32 = 322;
pub const NR_CLONE3: u32 = 435;
pub const NR_OPENAT2: u32 = 437;
