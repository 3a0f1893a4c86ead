//! The sshd executables the guard's kernel source trusts. The kernel compares the running
//! executable's (inode, device) with these, so a program merely named sshd, or an sshd
//! binary a user could rewrite, never speaks for sshd.

use std::{
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
};

use tracer_common::sshlog::{ExeKey, SSHD_EXES_MAX};

/// OpenSSH's binaries on Debian (`/usr/lib/openssh`) and RHEL (`/usr/libexec/openssh`):
/// the listener, and the per-connection session and pre-auth binaries of OpenSSH >= 9.8.
pub const DEFAULT_SSHD_EXES: &[&str] = &[
    "/usr/sbin/sshd",
    "/usr/lib/openssh/sshd-session",
    "/usr/lib/openssh/sshd-auth",
    "/usr/libexec/openssh/sshd-session",
    "/usr/libexec/openssh/sshd-auth",
];

/// Vets `paths` (or, when empty, those of `DEFAULT_SSHD_EXES` that exist): each must be a
/// regular file owned by root and writable by no group or other user, else an error naming
/// it. An explicit path that does not exist is an error too.
pub fn trusted(paths: &[PathBuf]) -> Result<Vec<ExeKey>, String> {
    let defaults: Vec<PathBuf>;
    let list = if paths.is_empty() {
        defaults = DEFAULT_SSHD_EXES.iter().map(PathBuf::from).filter(|p| p.exists()).collect();
        if defaults.is_empty() {
            return Err(format!(
                "no sshd executable found (looked for {}); name it with --sshd-exe",
                DEFAULT_SSHD_EXES.join(", ")
            ));
        }
        &defaults
    } else {
        paths
    };
    if list.len() > SSHD_EXES_MAX as usize {
        return Err(format!("at most {SSHD_EXES_MAX} sshd executables can be trusted"));
    }
    list.iter().map(|p| vet(p)).collect()
}

fn vet(p: &Path) -> Result<ExeKey, String> {
    let m = std::fs::metadata(p).map_err(|e| format!("sshd executable {}: {e}", p.display()))?;
    if !m.is_file() {
        return Err(format!("sshd executable {}: not a regular file", p.display()));
    }
    if m.uid() != 0 {
        return Err(format!("sshd executable {}: owned by uid {}, not root: not trusted", p.display(), m.uid()));
    }
    if m.mode() & 0o022 != 0 {
        return Err(format!(
            "sshd executable {}: writable by group or others (mode {:o}): not trusted",
            p.display(),
            m.mode() & 0o7777
        ));
    }
    Ok(ExeKey { ino: m.ino(), dev: kernel_dev(m.dev()), _pad: 0 })
}

/// stat(2)'s st_dev as the kernel's internal dev_t (`MKDEV`: major << 20 | minor), which is
/// what `inode->i_sb->s_dev` holds.
fn kernel_dev(st_dev: u64) -> u32 {
    let (major, minor) = (libc::major(st_dev), libc::minor(st_dev));
    (major << 20) | (minor & 0xf_ffff)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn kernel_dev_encoding() {
        // 8:1 (sda1) and 259:3 (nvme0n1p3) as stat reports them.
        assert_eq!(kernel_dev(libc::makedev(8, 1)), (8 << 20) | 1);
        assert_eq!(kernel_dev(libc::makedev(259, 3)), (259 << 20) | 3);
        assert_eq!(kernel_dev(libc::makedev(0, 300)), 300);
    }

    #[test]
    fn refuses_writable_or_foreign_executables() {
        let dir = std::env::temp_dir().join(format!("tracer-sshd-exe-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("sshd");
        std::fs::write(&f, b"#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o757)).unwrap();
        let e = trusted(std::slice::from_ref(&f)).unwrap_err();
        let owner = std::fs::metadata(&f).unwrap().uid();
        if owner == 0 {
            assert!(e.contains("writable by group or others"), "{e}");
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755)).unwrap();
            assert_eq!(trusted(std::slice::from_ref(&f)).unwrap().len(), 1);
        } else {
            assert!(e.contains("not root"), "{e}");
        }
        assert!(e.contains(f.to_str().unwrap()), "{e}");
        let missing = dir.join("missing");
        assert!(trusted(&[missing]).unwrap_err().contains("No such file"));
        assert!(trusted(std::slice::from_ref(&dir)).unwrap_err().contains("not a regular file"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
