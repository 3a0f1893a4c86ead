//! A gzipped newc cpio archive, written here rather than with cpio(1) so the host needs
//! one tool fewer. The kernel unpacks it as the guest's root file system.

use std::{io::Write, path::Path};

use flate2::{Compression, write::GzEncoder};

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;
const S_IFCHR: u32 = 0o020000;

pub(super) struct Cpio<W: Write> {
    out: W,
    ino: u32,
}

impl<W: Write> Cpio<W> {
    pub(super) fn new(out: W) -> Self {
        Cpio { out, ino: 1 }
    }

    /// One newc entry: header, NUL-terminated name and data, each padded to 4 bytes.
    fn entry(&mut self, name: &str, mode: u32, rdev: (u32, u32), data: &[u8]) -> std::io::Result<()> {
        self.ino += 1;
        let nlink = if mode & S_IFDIR != 0 { 2 } else { 1 };
        let fields =
            [self.ino, mode, 0, 0, nlink, 0, data.len() as u32, 0, 0, rdev.0, rdev.1, name.len() as u32 + 1, 0];
        let mut head = String::from("070701");
        for f in fields {
            head.push_str(&format!("{f:08x}"));
        }
        self.out.write_all(head.as_bytes())?;
        self.out.write_all(name.as_bytes())?;
        self.out.write_all(&[0])?;
        self.pad(head.len() + name.len() + 1)?;
        self.out.write_all(data)?;
        self.pad(data.len())
    }

    fn pad(&mut self, len: usize) -> std::io::Result<()> {
        self.out.write_all(&[0; 3][..(4 - len % 4) % 4])
    }

    pub(super) fn dir(&mut self, name: &str, perm: u32) -> std::io::Result<()> {
        self.entry(name, S_IFDIR | perm, (0, 0), &[])
    }

    pub(super) fn file(&mut self, name: &str, perm: u32, data: &[u8]) -> std::io::Result<()> {
        self.entry(name, S_IFREG | perm, (0, 0), data)
    }

    pub(super) fn symlink(&mut self, name: &str, target: &str) -> std::io::Result<()> {
        self.entry(name, S_IFLNK | 0o777, (0, 0), target.as_bytes())
    }

    pub(super) fn char_dev(&mut self, name: &str, perm: u32, major: u32, minor: u32) -> std::io::Result<()> {
        self.entry(name, S_IFCHR | perm, (major, minor), &[])
    }

    pub(super) fn finish(mut self) -> std::io::Result<W> {
        self.entry("TRAILER!!!", 0, (0, 0), &[])?;
        Ok(self.out)
    }
}

const STIG: &str = "/usr/share/doc/auditd/examples/rules/30-stig.rules";

/// The guest root: the test init as /init, the tracer, the workload, and busybox (its
/// applets as symlinks) for the chroot jail and the programs the workload execs.
pub(super) fn write(out: &Path, init: &Path, tracer: &Path, workload: &Path, busybox: &Path) -> anyhow::Result<()> {
    let read = |p: &Path| std::fs::read(p).map_err(|e| anyhow::anyhow!("read {}: {e}", p.display()));
    let gz = GzEncoder::new(std::io::BufWriter::new(std::fs::File::create(out)?), Compression::fast());
    let mut c = Cpio::new(gz);
    for d in ["bin", "dev", "etc", "proc", "sys", "root"] {
        c.dir(d, 0o755)?;
    }
    c.dir("tmp", 0o1777)?;
    // The kernel opens it for init's stdio before /dev is mounted.
    c.char_dev("dev/console", 0o600, 5, 1)?;
    c.file("init", 0o755, &read(init)?)?;
    c.file("bin/tracer", 0o755, &read(tracer)?)?;
    c.file("bin/workload", 0o755, &read(workload)?)?;
    c.file("bin/busybox", 0o755, &read(busybox)?)?;
    for applet in ["sh", "cat", "chroot", "echo", "true"] {
        c.symlink(&format!("bin/{applet}"), "busybox")?;
    }
    c.file("etc/hostname", 0o644, b"vmtest\n")?;
    // Debian's STIG rules for the guest's `trace --rules` check (the guest fails that check
    // if the host lacks them: auditd is in `cargo xtask setup`'s packages).
    if let Ok(stig) = std::fs::read(STIG) {
        c.file("etc/30-stig.rules", 0o644, &stig)?;
    }
    c.finish()?.finish()?.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newc_entries_are_padded_to_four_bytes() {
        let mut c = Cpio::new(Vec::new());
        c.file("abc", 0o644, b"hello").unwrap();
        let out = c.finish().unwrap();
        assert!(out.starts_with(b"070701"));
        // 110-byte header + "abc\0" = 114, padded to 116; 5 data bytes padded to 8.
        assert_eq!(&out[110..114], b"abc\0");
        assert_eq!(&out[116..121], b"hello");
        assert_eq!(&out[124..130], b"070701");
        assert_eq!(out.len() % 4, 0);
        assert!(out.windows(10).any(|w| w == b"TRAILER!!!"));
    }
}
