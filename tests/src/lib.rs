//! Helpers for the end-to-end tests: run the real `tracer` binary (as root, against the
//! running kernel) on the `workload` program and read what it wrote.

use std::{
    ffi::OsString,
    path::{Path, PathBuf},
    process::{Command, Output},
    sync::atomic::{AtomicU32, Ordering},
};

use serde_json::Value;

// Dev-dependencies of the test binaries (store*.rs), not of this library's own tests.
#[cfg(test)]
use postgres as _;
#[cfg(test)]
use rusqlite as _;
#[cfg(test)]
use tracer_store as _;
// Likewise (ci.rs).
#[cfg(test)]
use pulldown_cmark as _;

pub mod auditd;
pub mod netns;
pub mod pg;

/// A number not handed out before in this process: with the pid, it makes names of temp
/// dirs, namespaces and interfaces unique across parallel tests and test binaries.
pub fn uniq() -> u32 {
    static N: AtomicU32 = AtomicU32::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// The tracer binary: $TRACER_BIN (set by `cargo xtask test`), else target/debug/tracer.
pub fn tracer_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("TRACER_BIN") {
        return p.into();
    }
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/tracer");
    assert!(p.exists(), "{} missing: run `cargo xtask test` (it builds the tracer first)", p.display());
    p
}

/// A fresh directory under the system temp dir, removed on drop (so also when a test panics).
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!("tracer-test-{tag}-{}-{}", std::process::id(), uniq()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        // World-accessible so workloads that drop to uid 7005 can work in it.
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    pub fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub struct Traced {
    pub events: Vec<Value>,
    pub output: Output,
    pub raw: Vec<u8>,
}

impl Traced {
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }
    /// The lost-event count from the tracer's closing summary line.
    pub fn lost(&self) -> u64 {
        lost_in(&self.stderr())
    }
    pub fn of_kind(&self, kind: &str) -> Vec<&Value> {
        self.events.iter().filter(|e| e["event"] == kind).collect()
    }
}

/// The lost-event count from a tracer's closing summary line on stderr.
pub fn lost_in(stderr: &str) -> u64 {
    let line = stderr
        .lines()
        .rev()
        .find(|l| l.starts_with("tracer: ") && l.contains(" lost"))
        .unwrap_or_else(|| panic!("no summary line in stderr: {stderr}"));
    line.split(", ").find_map(|p| p.strip_suffix(" lost")).and_then(|n| n.parse().ok()).expect("lost count")
}

/// Runs `tracer trace --format json --output FILE ARGS... -- CMD...` and parses FILE.
pub fn trace_json(args: &[&str], cmd: &[OsString]) -> Traced {
    let dir = TempDir::new("out");
    let out = dir.path().join("events.json");
    let output = Command::new(tracer_bin())
        .arg("trace")
        .args(["--format", "json", "--output"])
        .arg(&out)
        .args(args)
        .arg("--")
        .args(cmd)
        .output()
        .expect("run tracer");
    let raw = std::fs::read(&out).unwrap_or_default();
    let events = parse_json_lines(&raw);
    Traced { events, output, raw }
}

/// Parses JSON lines; lone `\udcXX` escapes (the tracer's encoding of bytes that are not
/// UTF-8) become U+10FFFF + two hex digits, which `bytes_of` turns back into the byte.
pub fn parse_json_lines(raw: &[u8]) -> Vec<Value> {
    let text = std::str::from_utf8(raw).expect("tracer JSON output is UTF-8");
    text.lines()
        .map(|l| {
            let l = escape_surrogates(l);
            serde_json::from_str(&l).unwrap_or_else(|e| panic!("bad JSON line {l}: {e}"))
        })
        .collect()
}

fn escape_surrogates(l: &str) -> String {
    let mut out = String::with_capacity(l.len());
    let mut rest = l;
    while let Some(i) = rest.find("\\udc") {
        // Count backslashes before: an escaped backslash followed by "udc" is not an escape.
        let before = &rest[..i];
        let slashes = before.chars().rev().take_while(|&c| c == '\\').count();
        out.push_str(before);
        if slashes % 2 == 0 && rest.len() >= i + 8 {
            out.push_str("\\udbff\\udfff");
            out.push_str(&rest[i + 4..i + 6]);
            rest = &rest[i + 6..];
        } else {
            out.push_str("\\udc");
            rest = &rest[i + 4..];
        }
    }
    out.push_str(rest);
    out
}

const MARK: &[u8] = "\u{10FFFF}".as_bytes();

/// The exact bytes of a JSON string field written by the tracer.
pub fn bytes_of(v: &Value) -> Vec<u8> {
    let s = v.as_str().unwrap_or_else(|| panic!("not a string: {v}"));
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(MARK) && i + MARK.len() + 2 <= b.len() {
            let hex = std::str::from_utf8(&b[i + MARK.len()..i + MARK.len() + 2]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += MARK.len() + 2;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

pub fn workload_cmd(workload: &str, args: &[&[u8]]) -> Vec<OsString> {
    use std::os::unix::ffi::OsStringExt;
    let mut v = vec![OsString::from(workload)];
    v.extend(args.iter().map(|a| OsString::from_vec(a.to_vec())));
    v
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Waits for CHILD to exit, at most `secs`; kills it and panics if it does not.
pub fn wait_exit(child: &mut std::process::Child, secs: u64) -> std::process::ExitStatus {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if std::time::Instant::now() > end {
            let _ = child.kill();
            panic!("process {} did not exit within {secs}s", child.id());
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// `tests/tests/i386/NAME.c` built as a freestanding static i386 program `out` (`gcc -m32`),
/// for the tests of 32-bit system calls; `defines` are extra `-D` arguments.
pub fn build_i386(name: &str, out: &Path, defines: &[String]) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/i386/{name}.c"));
    let st = Command::new("gcc")
        .args(["-m32", "-static", "-nostdlib", "-ffreestanding", "-fno-pic", "-fno-stack-protector", "-O1"])
        .args(defines)
        .arg("-o")
        .arg(out)
        .arg(&src)
        .status()
        .expect("run gcc");
    assert!(st.success(), "gcc -m32 {}", src.display());
    out.to_path_buf()
}
