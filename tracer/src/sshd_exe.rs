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
pub(crate) const DEFAULT_SSHD_EXES: &[&str] = &[
    "/usr/sbin/sshd",
    "/usr/lib/openssh/sshd-session",
    "/usr/lib/openssh/sshd-auth",
    "/usr/libexec/openssh/sshd-session",
    "/usr/libexec/openssh/sshd-auth",
];

/// The trusted executables of a running daemon, vetted again by `refresh`: a package upgrade
/// that replaces a binary (a new inode) is trusted without a restart, the replaced inode stays
/// trusted for the processes still running it, and a file that stops passing the vetting
/// (made writable, given away) is trusted no more.
pub(crate) struct Trusted {
    /// As given; empty: the defaults that exist at each refresh.
    given: Vec<PathBuf>,
    current: Vec<(PathBuf, ExeKey)>,
    /// Inodes of replaced files, oldest first.
    retired: Vec<ExeKey>,
}

/// What a refresh changed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Change {
    /// The path holds another file than before (or is new): its inode is trusted now.
    Trusted(PathBuf),
    /// The path no longer passes the vetting: its inode is not trusted any more.
    Refused(String),
}

impl Trusted {
    /// Vets `paths` (or, when empty, those of `DEFAULT_SSHD_EXES` that exist): each must be a
    /// regular file owned by root and writable by no group or other user, else an error naming
    /// it. An explicit path that does not exist is an error too.
    pub(crate) fn new(paths: &[PathBuf]) -> Result<Self, String> {
        let list = Self::list(paths);
        if list.is_empty() {
            return Err(format!(
                "no sshd executable found (looked for {}); name it with --sshd-exe",
                DEFAULT_SSHD_EXES.join(", ")
            ));
        }
        if list.len() > SSHD_EXES_MAX as usize {
            return Err(format!("at most {SSHD_EXES_MAX} sshd executables can be trusted"));
        }
        let current = list.into_iter().map(|p| vet(&p, WHAT).map(|k| (p, k))).collect::<Result<_, _>>()?;
        Ok(Trusted { given: paths.to_vec(), current, retired: Vec::new() })
    }

    fn list(paths: &[PathBuf]) -> Vec<PathBuf> {
        if paths.is_empty() {
            DEFAULT_SSHD_EXES.iter().map(PathBuf::from).filter(|p| p.exists()).collect()
        } else {
            paths.to_vec()
        }
    }

    /// What the kernel is to trust: every current inode, then the newest retired ones.
    pub(crate) fn keys(&self) -> Vec<ExeKey> {
        let mut keys: Vec<ExeKey> = self.current.iter().map(|(_, k)| *k).collect();
        for k in self.retired.iter().rev() {
            if keys.len() >= SSHD_EXES_MAX as usize {
                break;
            }
            if !keys.contains(k) {
                keys.push(*k);
            }
        }
        keys
    }

    /// Vets every path again.
    pub(crate) fn refresh(&mut self) -> Vec<Change> {
        let mut changes = Vec::new();
        let mut current = Vec::new();
        let mut refused = Vec::new();
        for p in Self::list(&self.given) {
            let before = self.current.iter().find(|(q, _)| *q == p).map(|(_, k)| *k);
            match (vet(&p, WHAT), before) {
                (Ok(k), Some(b)) if k == b => current.push((p, k)),
                (Ok(k), _) => {
                    changes.push(Change::Trusted(p.clone()));
                    current.push((p, k));
                }
                (Err(e), Some(_)) => {
                    changes.push(Change::Refused(e));
                    refused.push(p);
                }
                (Err(_), None) => {}
            }
        }
        // A replaced or vanished file's inode stays trusted for the processes still running it;
        // a refused one does not.
        for (p, k) in std::mem::take(&mut self.current) {
            let kept = current.iter().any(|(_, c)| *c == k);
            if !kept && !refused.contains(&p) && !self.retired.contains(&k) {
                self.retired.push(k);
            }
        }
        let drop = self.retired.len().saturating_sub(SSHD_EXES_MAX as usize);
        self.retired.drain(..drop);
        self.current = current;
        changes
    }
}

const WHAT: &str = "sshd executable";

/// A trusted executable's (inode, device): a root-owned regular file no group or other user
/// can write, else an error naming it as `what`. Shared with `tracer protect`'s allow-list.
pub(crate) fn vet(p: &Path, what: &str) -> Result<ExeKey, String> {
    let m = std::fs::metadata(p).map_err(|e| format!("{what} {}: {e}", p.display()))?;
    if !m.is_file() {
        return Err(format!("{what} {}: not a regular file", p.display()));
    }
    if m.uid() != 0 {
        return Err(format!("{what} {}: owned by uid {}, not root: not trusted", p.display(), m.uid()));
    }
    if m.mode() & 0o022 != 0 {
        return Err(format!(
            "{what} {}: writable by group or others (mode {:o}): not trusted",
            p.display(),
            m.mode() & 0o7777
        ));
    }
    Ok(ExeKey { ino: m.ino(), dev: kernel_dev(m.dev()), _pad: 0 })
}

/// stat(2)'s st_dev as the kernel's internal dev_t (`MKDEV`: major << 20 | minor), which is
/// what `inode->i_sb->s_dev` holds.
pub(crate) fn kernel_dev(st_dev: u64) -> u32 {
    let (major, minor) = (libc::major(st_dev), libc::minor(st_dev));
    (major << 20) | (minor & 0xf_ffff)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn trusted(paths: &[PathBuf]) -> Result<Vec<ExeKey>, String> {
        Trusted::new(paths).map(|t| t.keys())
    }

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

    #[test]
    fn refresh_follows_replaced_files_and_drops_refused_ones() {
        let dir = std::env::temp_dir().join(format!("tracer-sshd-refresh-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("sshd");
        let write = |text: &[u8]| {
            let tmp = dir.join("sshd.new");
            std::fs::write(&tmp, text).unwrap();
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).unwrap();
            std::fs::rename(&tmp, &f).unwrap();
        };
        write(b"v1");
        let Ok(mut t) = Trusted::new(std::slice::from_ref(&f)) else {
            // Not root: the file is not root-owned (the refusal is tested above).
            return;
        };
        let v1 = t.keys();
        assert_eq!(v1.len(), 1);
        assert!(t.refresh().is_empty(), "nothing changed");
        write(b"v2");
        assert_eq!(t.refresh(), vec![Change::Trusted(f.clone())]);
        let v2 = t.keys();
        assert_eq!(v2.len(), 2, "the new inode, and the replaced one for processes still running it");
        assert_eq!(v2[1], v1[0]);
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(matches!(&t.refresh()[..], [Change::Refused(e)] if e.contains("writable by group or others")));
        assert_eq!(t.keys(), v1, "only the replaced inode is left");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(t.refresh(), vec![Change::Trusted(f.clone())]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
