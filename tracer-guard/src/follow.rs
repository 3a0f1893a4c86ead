//! Follows a log file like `tail -F`: across rotation (rename + new file, by inode) and
//! truncation (copytruncate), starting at the end of the file by default.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

/// Longest line kept; longer lines are cut (a log line cannot make us buffer without bound).
const MAX_LINE: usize = 64 * 1024;
/// Bytes of the file's start remembered to detect truncate-and-rewrite.
const HEAD: usize = 64;

/// Splits a byte stream into log lines. A syslog file ends lines in `\n` (its writers escape
/// control characters inside messages). `sshd -e` writes each message followed by `\r\n` and
/// leaves a `\r` or `\n` inside a user name raw: once a line ended in `\r\n` (for a followed
/// file: its first line, sshd's `Server listening on ...`), only `\r\n` ends a line and a lone
/// `\n` or `\r` stays inside it (as a space), so a client cannot start a line of its own with a
/// bare newline. The decision survives rotation and truncation (the source keeps its format).
/// A `\r\n` inside a user name still looks exactly like sshd's own line end: see README
/// ("sshd -e files").
#[derive(Debug, Default)]
pub struct LineSplitter {
    partial: Vec<u8>,
    /// Decided by the first line's ending.
    crlf: Option<bool>,
}

impl LineSplitter {
    /// Whether lines end in `\r\n` (`sshd -e` output), once known.
    pub fn crlf(&self) -> Option<bool> {
        self.crlf
    }

    /// Forgets the partial line (a new or truncated file); the line-ending decision stays.
    pub fn reset(&mut self) {
        self.partial.clear();
    }

    /// Appends `data`; returns the lines it completes (without their ending).
    pub fn push(&mut self, data: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for &b in data {
            if b != b'\n' {
                if self.partial.len() < MAX_LINE {
                    self.partial.push(b);
                }
                continue;
            }
            let cr = self.partial.last() == Some(&b'\r');
            // Undecided, or LF so far: a CR LF line decides for CR LF (syslog writers never
            // end a line so), for good.
            if self.crlf != Some(true) {
                self.crlf = Some(cr);
            }
            let crlf = self.crlf == Some(true);
            if crlf && !cr {
                if self.partial.len() < MAX_LINE {
                    self.partial.push(b'\n');
                }
                continue;
            }
            out.push(self.take());
        }
        out
    }

    /// Decides the line ending from the start of a file read from its middle.
    pub fn detect(&mut self, head: &[u8]) {
        if self.crlf != Some(true)
            && let Some(i) = head.iter().position(|&b| b == b'\n')
        {
            self.crlf = Some(i > 0 && head[i - 1] == b'\r');
        }
    }

    /// The last line if the stream ended without a line end.
    pub fn finish(&mut self) -> Option<Vec<u8>> {
        (!self.partial.is_empty()).then(|| self.take())
    }

    fn take(&mut self) -> Vec<u8> {
        let mut line = std::mem::take(&mut self.partial);
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        // A CR or LF left inside is client text (sshd -e): never a line break.
        for b in &mut line {
            if *b == b'\r' || *b == b'\n' {
                *b = b' ';
            }
        }
        line
    }
}

pub struct Follower {
    path: PathBuf,
    file: Option<File>,
    id: (u64, u64),
    pos: u64,
    lines: LineSplitter,
    /// First bytes of the file as last seen: a changed head means it was truncated and
    /// rewritten past our position between two polls.
    head: Vec<u8>,
}

impl Follower {
    /// Opens `path`; reads from its start if `from_start`, else only lines written from now on.
    /// A missing file is fine: it is picked up (from its start) when it appears.
    pub fn open(path: &Path, from_start: bool) -> io::Result<Self> {
        let mut f = Follower {
            path: path.into(),
            file: None,
            id: (0, 0),
            pos: 0,
            lines: LineSplitter::default(),
            head: Vec::new(),
        };
        match File::open(path) {
            Ok(file) => {
                let md = file.metadata()?;
                f.id = (md.dev(), md.ino());
                f.pos = if from_start { 0 } else { md.len() };
                let mut start = vec![0u8; 4096];
                let n = file.read_at(&mut start, 0)?;
                f.lines.detect(&start[..n]);
                f.file = Some(file);
                f.head = f.read_head()?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok(f)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Returns the complete lines written since the last call (without their newline).
    pub fn poll(&mut self) -> io::Result<Vec<Vec<u8>>> {
        let mut lines = Vec::new();
        if self.file.is_some() {
            self.read_current(&mut lines)?;
        }
        // Rotated (the path now names another file) or appeared?
        match std::fs::metadata(&self.path) {
            Ok(md) if self.file.is_none() || (md.dev(), md.ino()) != self.id => {
                if let Ok(file) = File::open(&self.path) {
                    // The old file may have got its last lines between our read and the rename.
                    if self.file.is_some() {
                        self.read_current(&mut lines)?;
                    }
                    lines.extend(self.lines.finish());
                    self.lines.reset();
                    let md = file.metadata()?;
                    self.id = (md.dev(), md.ino());
                    self.file = Some(file);
                    self.pos = 0;
                    self.head.clear();
                    self.read_current(&mut lines)?;
                }
            }
            _ => {}
        }
        Ok(lines)
    }

    fn read_current(&mut self, lines: &mut Vec<Vec<u8>>) -> io::Result<()> {
        let Some(file) = self.file.as_mut() else {
            return Ok(());
        };
        let len = file.metadata()?.len();
        let head_changed = !self.head.is_empty() && {
            let mut now = vec![0u8; self.head.len()];
            file.seek(SeekFrom::Start(0))?;
            file.read_exact(&mut now).is_err() || now != self.head
        };
        if len < self.pos || head_changed {
            // copytruncate: the file was emptied in place.
            self.pos = 0;
            self.lines.reset();
            self.head.clear();
        }
        if len == self.pos {
            return Ok(());
        }
        file.seek(SeekFrom::Start(self.pos))?;
        let mut data = Vec::new();
        file.take(len - self.pos).read_to_end(&mut data)?;
        self.pos += data.len() as u64;
        lines.extend(self.lines.push(&data));
        if self.head.len() < HEAD {
            self.head = self.read_head()?;
        }
        Ok(())
    }

    fn read_head(&mut self) -> io::Result<Vec<u8>> {
        let Some(file) = self.file.as_mut() else {
            return Ok(Vec::new());
        };
        let n = self.pos.min(HEAD as u64) as usize;
        let mut buf = vec![0u8; n];
        file.seek(SeekFrom::Start(0))?;
        file.read_exact(&mut buf)?;
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn append(p: &Path, s: &str) {
        std::fs::OpenOptions::new().create(true).append(true).open(p).unwrap().write_all(s.as_bytes()).unwrap();
    }

    fn text(v: Vec<Vec<u8>>) -> Vec<String> {
        v.into_iter().map(|l| String::from_utf8(l).unwrap()).collect()
    }

    #[test]
    fn follows_rotation_and_truncation() {
        let dir = std::env::temp_dir().join(format!("tg-follow-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("auth.log");
        append(&log, "old line\n");
        let mut f = Follower::open(&log, false).unwrap();
        assert!(f.poll().unwrap().is_empty(), "starts at end");
        append(&log, "one\ntw");
        assert_eq!(text(f.poll().unwrap()), ["one"]);
        append(&log, "o\n");
        assert_eq!(text(f.poll().unwrap()), ["two"]);
        // Rotation: rename, write a last line to the old file, create a new one.
        std::fs::rename(&log, dir.join("auth.log.1")).unwrap();
        append(&dir.join("auth.log.1"), "late\n");
        assert_eq!(text(f.poll().unwrap()), ["late"]);
        append(&log, "new1\n");
        assert_eq!(text(f.poll().unwrap()), ["new1"]);
        // copytruncate.
        std::fs::OpenOptions::new().write(true).truncate(true).open(&log).unwrap();
        append(&log, "after\n");
        assert_eq!(text(f.poll().unwrap()), ["after"]);
        // Missing file, then created.
        std::fs::remove_file(&log).unwrap();
        assert!(f.poll().unwrap().is_empty());
        append(&log, "back\n");
        assert_eq!(text(f.poll().unwrap()), ["back"]);
        let mut g = Follower::open(&log, true).unwrap();
        assert_eq!(text(g.poll().unwrap()), ["back"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// `sshd -e` output: a bare LF (or CR) inside a user name does not start a line, and the
    /// decision comes from the file's first line even when following from its end.
    #[test]
    fn crlf_files_split_only_at_crlf() {
        let mut s = LineSplitter::default();
        let forged =
            "Invalid user x\nFailed password for root from 203.0.113.9 port 22 ssh2\rz from 192.0.2.7 port 5\r\n";
        let got = text(s.push(format!("Server listening on 0.0.0.0 port 22.\r\n{forged}").as_bytes()));
        assert_eq!(
            got,
            [
                "Server listening on 0.0.0.0 port 22.",
                "Invalid user x Failed password for root from 203.0.113.9 port 22 ssh2 z from 192.0.2.7 port 5"
            ]
        );
        assert_eq!(s.crlf(), Some(true));
        // A syslog file: LF ends lines, a stray CR before it is dropped.
        let mut s = LineSplitter::default();
        assert_eq!(text(s.push(b"a\nb\r\nc")), ["a", "b"]);
        assert_eq!(s.finish().map(|l| String::from_utf8(l).unwrap()).as_deref(), Some("c"));

        let dir = std::env::temp_dir().join(format!("tg-crlf-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("sshd.log");
        append(&log, "Server listening on :: port 22.\r\n");
        let mut f = Follower::open(&log, false).unwrap();
        append(&log, forged);
        let got = text(f.poll().unwrap());
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(got[0].ends_with("from 192.0.2.7 port 5"), "{got:?}");
        // copytruncate, then the client's message first: the file's format is still CR LF.
        std::fs::OpenOptions::new().write(true).truncate(true).open(&log).unwrap();
        append(&log, forged);
        assert_eq!(f.poll().unwrap().len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
