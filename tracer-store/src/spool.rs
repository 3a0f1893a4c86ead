//! The bounded on-disk spool: batches the database could not take, oldest first, one file
//! per batch (JSON lines named by the batch's first sequence number), so replay keeps order
//! and dropping the oldest is one unlink. Files are written to a temp name and renamed: a
//! crash leaves whole batches only.

use std::{
    collections::VecDeque,
    io::Write,
    path::{Path, PathBuf},
};

use crate::{Error, Row};

/// What a full spool does with a new batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnFull {
    /// Hold the sink until the database takes the spool (the kernel ring then fills and
    /// counts its own losses).
    Block,
    /// Make room by dropping the oldest batches, counted.
    DropOldest,
}

impl std::str::FromStr for OnFull {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "block" => Ok(OnFull::Block),
            "drop-oldest" => Ok(OnFull::DropOldest),
            _ => Err(format!("{s:?}: expected block or drop-oldest")),
        }
    }
}

struct Segment {
    path: PathBuf,
    bytes: u64,
    rows: u64,
}

pub struct Spool {
    dir: PathBuf,
    limit: u64,
    size: u64,
    segs: VecDeque<Segment>,
    dropped: u64,
}

fn io_err(path: &Path, err: std::io::Error) -> Error {
    Error::Spool { path: path.display().to_string(), err }
}

impl Spool {
    /// Opens DIR (creating it, mode 0700: events are sensitive), picking up batches an
    /// earlier run left.
    pub fn open(dir: &Path, limit: u64) -> Result<Spool, Error> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| io_err(dir, e))?;
        let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| io_err(dir, e))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
            .collect();
        names.sort();
        let mut segs = VecDeque::new();
        let mut size = 0;
        for path in names {
            let text = std::fs::read(&path).map_err(|e| io_err(&path, e))?;
            let rows = text.iter().filter(|&&b| b == b'\n').count() as u64;
            size += text.len() as u64;
            segs.push_back(Segment { path, bytes: text.len() as u64, rows });
        }
        Ok(Spool { dir: dir.to_owned(), limit, size, segs, dropped: 0 })
    }

    pub fn is_empty(&self) -> bool {
        self.segs.is_empty()
    }

    /// Events held.
    pub fn rows(&self) -> u64 {
        self.segs.iter().map(|s| s.rows).sum()
    }

    /// Events dropped to make room (OnFull::DropOldest).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Adds a batch. False when it does not fit and `on_full` is Block (nothing written);
    /// `force` stores it regardless of the limit (at exit, nothing may be lost).
    pub fn push(&mut self, rows: &[Row], on_full: OnFull, force: bool) -> Result<bool, Error> {
        let Some(first) = rows.first() else { return Ok(true) };
        let buf = encode(rows);
        let len = buf.len() as u64;
        if !force {
            while self.size + len > self.limit && !self.segs.is_empty() && on_full == OnFull::DropOldest {
                let s = self.segs.pop_front().unwrap();
                std::fs::remove_file(&s.path).map_err(|e| io_err(&s.path, e))?;
                self.size -= s.bytes;
                self.dropped += s.rows;
            }
            if self.size + len > self.limit {
                if on_full == OnFull::DropOldest {
                    self.dropped += rows.len() as u64;
                    return Ok(true);
                }
                return Ok(false);
            }
        }
        let path = self.dir.join(format!("{:020}.jsonl", first.seq));
        write_whole(&path, &buf)?;
        self.size += len;
        self.segs.push_back(Segment { path, bytes: len, rows: rows.len() as u64 });
        Ok(true)
    }

    /// The oldest batch.
    pub fn front(&self) -> Option<Result<Vec<Row>, Error>> {
        let s = self.segs.front()?;
        Some(read(&s.path))
    }

    /// Forgets the oldest batch (the database has it).
    pub fn pop_front(&mut self) -> Result<(), Error> {
        if let Some(s) = self.segs.pop_front() {
            std::fs::remove_file(&s.path).map_err(|e| io_err(&s.path, e))?;
            self.size -= s.bytes;
        }
        Ok(())
    }

    /// Keeps only ROWS of the oldest batch (the database has the rest), in place: same
    /// file name, so still first in order; empty ROWS forgets the batch.
    pub fn replace_front(&mut self, rows: &[Row]) -> Result<(), Error> {
        if rows.is_empty() {
            return self.pop_front();
        }
        let Some(s) = self.segs.front_mut() else { return Ok(()) };
        let buf = encode(rows);
        write_whole(&s.path, &buf)?;
        self.size = self.size - s.bytes + buf.len() as u64;
        s.bytes = buf.len() as u64;
        s.rows = rows.len() as u64;
        Ok(())
    }

    /// The highest sequence number held, so numbering goes on after it.
    pub fn max_seq(&self) -> Result<Option<i64>, Error> {
        match self.segs.back() {
            Some(s) => Ok(read(&s.path)?.iter().map(|r| r.seq).max()),
            None => Ok(None),
        }
    }
}

/// A batch as the spool holds it: JSON lines.
fn encode(rows: &[Row]) -> Vec<u8> {
    let mut buf = Vec::new();
    for r in rows {
        serde_json::to_writer(&mut buf, r).expect("a Row serialises");
        buf.push(b'\n');
    }
    buf
}

/// Writes BUF to PATH whole or not at all: a synced temp file renamed over it.
fn write_whole(path: &Path, buf: &[u8]) -> Result<(), Error> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(|e| io_err(&tmp, e))?;
    f.write_all(buf).and_then(|()| f.sync_data()).map_err(|e| io_err(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| io_err(path, e))
}

fn read(path: &Path) -> Result<Vec<Row>, Error> {
    let text = std::fs::read(path).map_err(|e| io_err(path, e))?;
    text.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            serde_json::from_slice(l).map_err(|e| io_err(path, std::io::Error::new(std::io::ErrorKind::InvalidData, e)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(first: i64, n: i64) -> Vec<Row> {
        (first..first + n).map(|seq| Row { seq, comm: "x".repeat(50), ..Row::default() }).collect()
    }

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("tracer-spool-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn replays_in_order_and_survives_reopen() {
        let d = dir("order");
        let mut s = Spool::open(&d, 1 << 20).unwrap();
        for i in 0..12 {
            assert!(s.push(&batch(i * 10 + 1, 10), OnFull::Block, false).unwrap());
        }
        drop(s);
        let mut s = Spool::open(&d, 1 << 20).unwrap();
        assert_eq!(s.rows(), 120);
        assert_eq!(s.max_seq().unwrap(), Some(120));
        let mut seen = Vec::new();
        while let Some(b) = s.front() {
            seen.extend(b.unwrap().into_iter().map(|r| r.seq));
            s.pop_front().unwrap();
        }
        assert_eq!(seen, (1..=120).collect::<Vec<_>>());
        assert!(Spool::open(&d, 1 << 20).unwrap().is_empty());
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn the_front_keeps_only_what_is_left_in_place() {
        let d = dir("front");
        let mut s = Spool::open(&d, 1 << 20).unwrap();
        assert!(s.push(&batch(1, 10), OnFull::Block, false).unwrap());
        assert!(s.push(&batch(11, 10), OnFull::Block, false).unwrap());
        let left: Vec<Row> = batch(1, 10).into_iter().filter(|r| r.seq % 2 == 0).collect();
        s.replace_front(&left).unwrap();
        assert_eq!(s.rows(), 15);
        drop(s);
        let mut s = Spool::open(&d, 1 << 20).unwrap();
        assert_eq!(s.rows(), 15);
        let seqs = |b: Vec<Row>| b.into_iter().map(|r| r.seq).collect::<Vec<_>>();
        assert_eq!(seqs(s.front().unwrap().unwrap()), vec![2, 4, 6, 8, 10], "still first, the rest only");
        s.replace_front(&[]).unwrap();
        assert_eq!(seqs(s.front().unwrap().unwrap())[0], 11);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn full_blocks_or_drops_the_oldest_counted() {
        let d = dir("full");
        let one = serde_json::to_vec(&batch(1, 1)[0]).unwrap().len() as u64 + 1;
        let mut s = Spool::open(&d, one * 25).unwrap();
        assert!(s.push(&batch(1, 10), OnFull::Block, false).unwrap());
        assert!(s.push(&batch(11, 10), OnFull::Block, false).unwrap());
        assert!(!s.push(&batch(21, 10), OnFull::Block, false).unwrap(), "no room: block");
        assert_eq!(s.rows(), 20);
        assert!(s.push(&batch(21, 10), OnFull::DropOldest, false).unwrap());
        assert_eq!((s.rows(), s.dropped()), (20, 10));
        assert_eq!(s.front().unwrap().unwrap()[0].seq, 11, "the oldest went");
        let _ = std::fs::remove_dir_all(&d);
    }
}
