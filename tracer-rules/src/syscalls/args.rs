//! Which arguments of a syscall are names (audit PATH items), by audit's syscall name: the
//! argument positions are the same in the x86_64 and i386 ABIs for every call listed here.
//! A call not listed has none (its rules' name conditions never hold, as in the kernel for
//! a call that looks nothing up).

use tracer_common::rules::{NAME_FD, NAME_PATH, NAME_PATH_AT, NameSpec};

const NONE: NameSpec = NameSpec { kind: 0, arg: 0, dirfd_arg: 0, _pad: 0 };

const fn path(arg: u8) -> NameSpec {
    NameSpec { kind: NAME_PATH, arg, dirfd_arg: 0, _pad: 0 }
}

const fn at(dirfd_arg: u8, arg: u8) -> NameSpec {
    NameSpec { kind: NAME_PATH_AT, arg, dirfd_arg, _pad: 0 }
}

const fn fd(arg: u8) -> NameSpec {
    NameSpec { kind: NAME_FD, arg, dirfd_arg: 0, _pad: 0 }
}

/// The names of the call audit calls `name`.
pub(super) fn names(name: &str) -> [NameSpec; 2] {
    match name {
        // One path, relative to the cwd.
        "open" | "creat" | "truncate" | "truncate64" | "chmod" | "chown" | "lchown" | "chown32" | "lchown32"
        | "mkdir" | "rmdir" | "unlink" | "mknod" | "setxattr" | "lsetxattr" | "getxattr" | "lgetxattr"
        | "listxattr" | "llistxattr" | "removexattr" | "lremovexattr" | "execve" | "umount2" | "umount" | "acct"
        | "swapon" | "swapoff" | "readlink" | "stat" | "lstat" | "stat64" | "lstat64" | "access" | "chdir"
        | "chroot" | "utime" | "utimes" | "uselib" | "statfs" | "statfs64" => [path(0), NONE],
        // One path relative to a directory fd.
        "openat" | "openat2" | "mkdirat" | "mknodat" | "unlinkat" | "fchmodat" | "fchmodat2" | "fchownat"
        | "execveat" | "readlinkat" | "newfstatat" | "fstatat64" | "statx" | "faccessat" | "faccessat2"
        | "utimensat" | "futimesat" | "name_to_handle_at" => [at(0, 1), NONE],
        // An open file (the kernel's audit_file makes it the call's PATH item).
        "fchmod" | "fchown" | "fchown32" | "fsetxattr" | "fgetxattr" | "flistxattr" | "fremovexattr"
        | "finit_module" => [fd(0), NONE],
        // ftruncate, fallocate, fchdir: the kernel records no PATH item (items=0, checked on
        // 6.18), so no path=/dir= rule can match them in audit; none here either.
        // Two names: the old and the new.
        "rename" | "link" => [path(0), path(1)],
        "renameat" | "renameat2" | "linkat" => [at(0, 1), at(2, 3)],
        // The new link is the name (the target is only a string stored in it).
        "symlink" => [path(1), NONE],
        "symlinkat" => [at(1, 2), NONE],
        // The mount point; quotactl's block device.
        "mount" | "quotactl" => [path(1), NONE],
        _ => [NONE; 2],
    }
}
