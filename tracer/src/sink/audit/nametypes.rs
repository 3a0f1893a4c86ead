//! The `nametype=` of each name a syscall record carries, as the kernel's audit marks it
//! (`audit_inode`'s NORMAL, `audit_inode_child`'s CREATE and DELETE). The tracer carries the
//! call's names, not the parent directories the kernel also logs, so only the names' own
//! types are listed, in the call's argument order.

/// Types for the names of `syscall` (audit's name); a name without one is NORMAL.
pub(super) fn of(syscall: &str, ok: bool) -> &'static [&'static str] {
    if !ok {
        // A failed call's names were looked up (or not) before it failed: the kernel's
        // record has no object for a name it never reached.
        return match syscall {
            "unlink" | "unlinkat" | "rmdir" | "rename" | "renameat" | "renameat2" | "mkdir" | "mkdirat" | "mknod"
            | "mknodat" | "link" | "linkat" | "symlink" | "symlinkat" => &["UNKNOWN", "UNKNOWN"],
            _ => &["NORMAL", "NORMAL"],
        };
    }
    match syscall {
        "unlink" | "unlinkat" | "rmdir" => &["DELETE"],
        "rename" | "renameat" | "renameat2" => &["DELETE", "CREATE"],
        "mkdir" | "mkdirat" | "mknod" | "mknodat" => &["CREATE"],
        "link" | "linkat" => &["NORMAL", "CREATE"],
        // Its one name is the new link (the target is a string stored in it).
        "symlink" | "symlinkat" => &["CREATE"],
        _ => &["NORMAL", "NORMAL"],
    }
}

#[cfg(test)]
mod tests {
    use super::of;

    #[test]
    fn deletes_creates_and_failures() {
        assert_eq!(of("unlinkat", true), ["DELETE"]);
        assert_eq!(of("renameat2", true), ["DELETE", "CREATE"]);
        assert_eq!(of("mkdir", true), ["CREATE"]);
        assert_eq!(of("symlink", true), ["CREATE"]);
        assert_eq!(of("chmod", true)[0], "NORMAL");
        assert_eq!(of("unlink", false)[0], "UNKNOWN");
        assert_eq!(of("chmod", false)[0], "NORMAL");
    }
}
