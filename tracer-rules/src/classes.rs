//! audit's syscall classes (`perm=`, `-w -p`): the kernel's `audit_match_perm`.
//!
//! The static classes are the kernel's `include/asm-generic/audit_{dir_write,write,read,
//! change_attr}.h` (write = dir_write + write), the same lists for both ABIs, by name. The
//! open family is classified by the access mode of its flags (`ACC_MODE`), execve by exec,
//! and i386's socketcall is a write when it is a bind.

use tracer_common::rules::{
    PERM_ATTR, PERM_EXEC, PERM_OPEN_FLAGS, PERM_OPEN_HOW, PERM_READ, PERM_SOCKETCALL, PERM_STATIC, PERM_WRITE,
};

use crate::{Arch, syscalls};

// As the running kernel's audit has them (6.18, probed by number with `-S all -F perm=`
// rules, both ABIs): the write class has renameat2, ftruncate(64) and fallocate, the
// attribute class link and linkat, and calls newer than audit's name table are below by
// number. Older kernels' headers lack some of these (fchmodat2, the *xattrat calls).
const DIR_WRITE: &[&str] = &[
    "rename",
    "mkdir",
    "rmdir",
    "creat",
    "link",
    "unlink",
    "symlink",
    "mknod",
    "mkdirat",
    "mknodat",
    "unlinkat",
    "renameat",
    "linkat",
    "symlinkat",
    "renameat2",
];
const WRITE: &[&str] =
    &["acct", "swapon", "quotactl", "truncate", "truncate64", "bind", "ftruncate", "ftruncate64", "fallocate"];
const READ: &[&str] = &[
    "readlink",
    "quotactl",
    "listxattr",
    "llistxattr",
    "flistxattr",
    "getxattr",
    "lgetxattr",
    "fgetxattr",
    "readlinkat",
];
const ATTR: &[&str] = &[
    "chmod",
    "fchmod",
    "chown",
    "fchown",
    "lchown",
    "setxattr",
    "lsetxattr",
    "fsetxattr",
    "removexattr",
    "lremovexattr",
    "fremovexattr",
    "fchownat",
    "fchmodat",
    "chown32",
    "fchown32",
    "lchown32",
    "link",
    "linkat",
];

/// How a call's permission class is found: `RuleNr::{perm_from, perm_arg, perm}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PermClass {
    pub from: u8,
    pub arg: u8,
    /// `PERM_*` bits when `from` is `PERM_STATIC`.
    pub perm: u32,
}

/// Calls audit 3.0.9's tables do not name, by number (the same in both ABIs since 5.1's
/// unified numbering): fchmodat2, setxattrat, getxattrat, listxattrat, removexattrat.
const NUMBERED: &[(u32, u32)] =
    &[(452, PERM_ATTR), (463, PERM_ATTR), (464, PERM_READ), (465, PERM_READ), (466, PERM_ATTR)];

/// The class of call `nr` in `arch`.
pub fn perm_class(arch: Arch, nr: u32) -> PermClass {
    let stat = |perm| PermClass { from: PERM_STATIC, arg: 0, perm };
    let Some(name) = syscalls::name(arch, nr) else {
        return stat(NUMBERED.iter().find(|(n, _)| *n == nr).map_or(0, |(_, p)| *p));
    };
    match (arch, name) {
        (_, "open") => PermClass { from: PERM_OPEN_FLAGS, arg: 1, perm: 0 },
        (_, "openat") => PermClass { from: PERM_OPEN_FLAGS, arg: 2, perm: 0 },
        (_, "openat2") => PermClass { from: PERM_OPEN_HOW, arg: 2, perm: 0 },
        (_, "execve" | "execveat") => stat(PERM_EXEC),
        (Arch::B32, "socketcall") => PermClass { from: PERM_SOCKETCALL, arg: 0, perm: 0 },
        _ => {
            let mut perm = 0;
            if DIR_WRITE.contains(&name) || WRITE.contains(&name) {
                perm |= PERM_WRITE;
            }
            if READ.contains(&name) {
                perm |= PERM_READ;
            }
            if ATTR.contains(&name) {
                perm |= PERM_ATTR;
            }
            stat(perm)
        }
    }
}

/// `ACC_MODE(flags)`: O_RDONLY reads, O_WRONLY writes, O_RDWR (and 3) both.
pub fn acc_mode(flags: u64) -> u32 {
    [PERM_READ, PERM_WRITE, PERM_READ | PERM_WRITE, PERM_READ | PERM_WRITE][(flags & 3) as usize]
}

/// Whether some call of class `c` can satisfy `perm=mask` (a perm rule is compiled only into
/// the calls that can).
pub(crate) fn can_satisfy(c: PermClass, mask: u32) -> bool {
    match c.from {
        PERM_STATIC => c.perm & mask != 0,
        PERM_OPEN_FLAGS | PERM_OPEN_HOW => mask & (PERM_READ | PERM_WRITE) != 0,
        PERM_SOCKETCALL => mask & PERM_WRITE != 0,
        _ => false,
    }
}

/// `audit_match_perm` for one call: `args` are its first arguments, `open_how_flags` the
/// `flags` of openat2's `struct open_how`.
pub(crate) fn match_perm(c: PermClass, mask: u32, args: &[u64; 4], open_how_flags: u64) -> bool {
    let arg = args.get(usize::from(c.arg)).copied().unwrap_or(0);
    match c.from {
        PERM_STATIC => c.perm & mask != 0,
        PERM_OPEN_FLAGS => acc_mode(arg) & mask != 0,
        PERM_OPEN_HOW => acc_mode(open_how_flags) & mask != 0,
        PERM_SOCKETCALL => mask & PERM_WRITE != 0 && arg == 2,
        _ => false,
    }
}
