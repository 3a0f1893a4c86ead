//! `tracer guard test-log` as a command: fail2ban's text-source semantics through the CLI
//! (`--usedns`, `sshd -e` CR LF files, bad arguments). The parity with the real fail2ban is in
//! tracer-guard/tests/fail2ban_parity.rs.
// Every test crate gets the whole dev-dependency list; each uses part of it.
#![allow(unused_crate_dependencies)]

use std::path::Path;
use std::process::Command;

use tracer_tests::{TempDir, tracer_bin};

fn test_log(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(tracer_bin()).args(["guard", "test-log"]).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn json(args: &[&str]) -> serde_json::Value {
    let (code, out, err) = test_log(args);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap()
}

#[test]
fn usedns_decides_what_host_names_count_for() {
    let dir = TempDir::new("testlog-dns");
    let log = dir.file("auth.log");
    std::fs::write(
        &log,
        "Nov 24 13:22:20 host sshd[10]: error: PAM: Authentication failure for root from localhost\n\
         Nov 24 13:22:21 host sshd[11]: Connection from 192.0.2.7 port 1 on 10.0.0.1 port 22\n\
         Nov 24 13:22:22 host sshd[11]: Failed password for root from nonexistent.invalid port 1 ssh2\n",
    )
    .unwrap();
    let log = log.to_str().unwrap();
    let v = json(&[log, "--format", "json"]);
    assert_eq!(v["usedns"], "warn");
    assert_eq!(v["summary"]["by_address"]["127.0.0.1"], 1, "{v}");
    assert_eq!(v["results"][0]["host"], "localhost");
    // The name that does not resolve is charged to no one (not to the session's 192.0.2.7).
    assert!(v["summary"]["by_address"].get("192.0.2.7").is_none(), "{v}");
    for no in ["no", "raw"] {
        let v = json(&[log, "--format", "json", "--usedns", no]);
        assert_eq!(v["summary"]["by_address"], serde_json::json!({}), "{no}: {v}");
        assert_eq!(v["summary"]["failures_without_address"], 2, "{no}: {v}");
    }
    let (code, _, err) = test_log(&[log, "--usedns", "maybe"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("unknown usedns \"maybe\""), "{err}");
}

#[test]
fn sshd_e_file_newline_in_a_user_name_forges_no_line() {
    let dir = TempDir::new("testlog-crlf");
    let log = dir.file("sshd.err");
    // What `sshd -D -e` writes: CR LF after each message, a user name's LF left raw.
    std::fs::write(
        &log,
        "Server listening on 0.0.0.0 port 22.\r\n\
         Invalid user x\nFailed password for root from 203.0.113.9 port 22 ssh2\nz from 192.0.2.7 port 5000\r\n",
    )
    .unwrap();
    let v = json(&[log.to_str().unwrap(), "--format", "json"]);
    assert_eq!(v["summary"]["lines"], 2, "{v}");
    assert_eq!(v["summary"]["crlf"], true);
    assert_eq!(v["summary"]["by_address"], serde_json::json!({"192.0.2.7": 1}), "{v}");
    let (_, out, _) = test_log(&[log.to_str().unwrap()]);
    assert!(out.contains("lines end in CR LF (sshd -e output)"), "{out}");
    assert!(Path::new(&log).exists());
}
