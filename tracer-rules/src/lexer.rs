//! Reading rule files as auditctl -R does: one rule per line, `#` comments, blank lines,
//! words split on blanks (`\ ` keeps a blank inside a word). Memory stays bounded: a line
//! longer than auditctl's buffer is refused without being kept.

use std::{
    fs,
    io::{BufRead, BufReader, Read},
    path::{Path, PathBuf},
};

use crate::RulesError;

/// auditctl's line buffer (`LINE_SIZE`).
pub(crate) const LINE_MAX: usize = 6144;

/// One line of a file: its number and its words, or why it cannot be read.
pub(crate) type Line = (usize, Result<Vec<String>, String>);

/// The lines of `path` that hold something (not blank, not a comment).
pub(crate) fn read_lines(path: &Path) -> Result<Vec<Line>, RulesError> {
    let io = |source| RulesError::Io { path: path.to_path_buf(), source };
    let meta = fs::metadata(path).map_err(io)?;
    if !meta.is_file() {
        return Err(io(std::io::Error::other("not a regular file")));
    }
    let mut r = BufReader::new(fs::File::open(path).map_err(io)?);
    let mut out = Vec::new();
    let mut line = Vec::with_capacity(256);
    let mut lineno = 0;
    loop {
        line.clear();
        lineno += 1;
        // Read at most LINE_MAX + 1 bytes of the line; drain the rest of a longer one.
        let n = (&mut r).take(LINE_MAX as u64 + 1).read_until(b'\n', &mut line).map_err(io)?;
        if n == 0 {
            break;
        }
        if line.last() == Some(&b'\n') {
            line.pop();
        } else if line.len() > LINE_MAX {
            skip_line(&mut r).map_err(io)?;
            out.push((lineno, Err(format!("line longer than {LINE_MAX} bytes (auditctl's limit)"))));
            continue;
        }
        match std::str::from_utf8(&line) {
            Err(e) => out.push((lineno, Err(format!("not UTF-8 (byte {} of the line)", e.valid_up_to() + 1)))),
            Ok(text) => {
                let words = split(text);
                if words.first().is_some_and(|w| !w.starts_with('#')) {
                    out.push((lineno, Ok(words)));
                }
            }
        }
    }
    Ok(out)
}

fn skip_line(r: &mut impl BufRead) -> std::io::Result<()> {
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Ok(());
        }
        if let Some(i) = buf.iter().position(|&b| b == b'\n') {
            r.consume(i + 1);
            return Ok(());
        }
        let n = buf.len();
        r.consume(n);
    }
}

/// Words separated by blanks; `\ ` is a blank inside a word and `\\` a backslash.
pub(crate) fn split(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if matches!(chars.peek(), Some(' ' | '\\')) => cur.extend(chars.next()),
            ' ' | '\t' | '\r' => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
            }
            _ => cur.push(c),
        }
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
}

/// `paths` with each directory replaced by its `*.rules` files in augenrules' order (natural
/// sort of the names, as `ls -v`); `true` for a file that came from a directory.
pub(crate) fn expand(paths: &[PathBuf]) -> Result<Vec<(PathBuf, bool)>, RulesError> {
    let mut out = Vec::new();
    for p in paths {
        let io = |source| RulesError::Io { path: p.clone(), source };
        if fs::metadata(p).map_err(io)?.is_dir() {
            let mut files: Vec<PathBuf> = fs::read_dir(p)
                .map_err(io)?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|f| f.extension().is_some_and(|x| x == "rules"))
                .collect();
            files.sort_by(|a, b| natural(a.as_os_str().as_encoded_bytes(), b.as_os_str().as_encoded_bytes()));
            out.extend(files.into_iter().map(|f| (f, true)));
        } else {
            out.push((p.clone(), false));
        }
    }
    Ok(out)
}

/// Runs of digits compare as numbers, the rest bytewise.
fn natural(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i].is_ascii_digit() && b[j].is_ascii_digit() {
            let si = i;
            let sj = j;
            while i < a.len() && a[i].is_ascii_digit() {
                i += 1;
            }
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            let (x, y) = (trim0(&a[si..i]), trim0(&b[sj..j]));
            let o = x.len().cmp(&y.len()).then_with(|| x.cmp(y));
            if o.is_ne() {
                return o;
            }
        } else {
            if a[i] != b[j] {
                return a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
        }
    }
    (a.len() - i).cmp(&(b.len() - j))
}

fn trim0(d: &[u8]) -> &[u8] {
    let k = d.iter().position(|&c| c != b'0').unwrap_or(d.len());
    &d[k..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_and_escapes() {
        assert_eq!(split("  -w /a\\ b  -k\tx "), ["-w", "/a b", "-k", "x"]);
        assert!(natural(b"9-a.rules", b"10-a.rules").is_lt());
        assert!(natural(b"10-a.rules", b"10-b.rules").is_lt());
    }
}
