//! What ships beside the binary: the systemd units and the default configuration.
// Every test crate gets the whole dev-dependency list; each uses part of it.
#![allow(unused_crate_dependencies)]

use std::{path::Path, process::Command};

use tracer_tests::*;

fn dist(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist").join(name)
}

/// `systemd-analyze verify` on both units as shipped, with ExecStart pointed at the built
/// binary (verify requires the executable to exist) and no man page lookup.
#[test]
fn systemd_units_verify() {
    let dir = TempDir::new("units");
    let bin = tracer_bin().canonicalize().unwrap();
    for unit in ["tracer.service", "tracer-guard.service"] {
        let text = std::fs::read_to_string(dist(unit)).unwrap();
        assert!(text.contains("ExecStart=/usr/sbin/tracer ") && text.contains("ExecReload=/bin/kill -HUP $MAINPID"));
        let local = text.replace("/usr/sbin/tracer", bin.to_str().unwrap());
        let path = dir.file(unit);
        std::fs::write(&path, local).unwrap();
        let out = Command::new("systemd-analyze").args(["verify", "--man=no"]).arg(&path).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && err.trim().is_empty(), "{unit}: {err}");
    }
}

/// Every line of the shipped configuration is accepted: with one bad key appended, the
/// daemon's only complaint is that key, on the last line (the log is moved into a temp dir).
#[test]
fn default_configuration_is_accepted() {
    let dir = TempDir::new("defconf");
    let text = std::fs::read_to_string(dist("tracer.conf")).unwrap();
    let log = dir.file("tracer.log");
    let conf = dir.file("tracer.conf");
    std::fs::write(&conf, text.replace("/var/log/tracer/tracer.log", log.to_str().unwrap())).unwrap();
    // A bad key next to the shipped ones is refused with its line: the parser checks them all.
    std::fs::write(dir.file("bad.conf"), format!("{}\nbogus = 1\n", std::fs::read_to_string(&conf).unwrap())).unwrap();
    let out = Command::new(tracer_bin()).args(["daemon", "--config"]).arg(dir.file("bad.conf")).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bogus: unknown key"));
    assert!(!log.exists());
}
