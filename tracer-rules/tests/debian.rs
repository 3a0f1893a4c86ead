//! Debian's own example rule files (auditd's /usr/share/doc/auditd/examples/rules/).

use std::path::PathBuf;
use thiserror as _;

const DIR: &str = "/usr/share/doc/auditd/examples/rules";

fn files() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(DIR)
        .expect("auditd's example rules (apt-get install auditd)")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "rules"))
        .collect();
    v.sort();
    assert!(v.len() >= 30, "Debian ships 30+ example files, found {}", v.len());
    v
}

/// A user name this machine does not have is refused as auditctl does ("Unknown user").
fn user_missing_here(why: &str) -> bool {
    why.strip_prefix("uid: unknown user: ").is_some_and(|u| {
        let c = std::ffi::CString::new(u).unwrap();
        // SAFETY: `c` is a NUL-terminated name; only the pointer's nullness is read.
        unsafe { libc::getpwnam(c.as_ptr()) }.is_null()
    })
}

/// Every file parses; the only problems are calls x86_64 does not have (and users this
/// machine lacks: 22-ignore-chrony.rules names `uid=chrony`).
#[test]
fn every_debian_file_checks() {
    let mut lacks = 0;
    for f in files() {
        let c = tracer_rules::check(std::slice::from_ref(&f));
        for (at, why) in &c.problems {
            eprintln!("{at}: {why}");
            assert!(why.starts_with("unsupported: x86_64 has no syscall ") || user_missing_here(why), "{at}: {why}");
            lacks += 1;
        }
        for r in &c.set.rules {
            println!("{}: {}", r.at, r.describe());
        }
        for n in &c.set.notes {
            println!("{}: note: {}", n.at, n.text);
        }
    }
    eprintln!("{lacks} problems");
}

/// The shipped sets the issue names load and compile into the kernel tables.
#[test]
fn debian_sets_load_and_compile() {
    for name in [
        "30-stig",
        "30-pci-dss-v31",
        "42-injection",
        "43-module-load",
        "71-networking",
        "32-power-abuse",
        "30-ospp-v42",
    ] {
        let path = PathBuf::from(format!("{DIR}/{name}.rules"));
        let set = tracer_rules::load(std::slice::from_ref(&path)).unwrap_or_else(|e| panic!("{e}"));
        assert!(!set.rules.is_empty(), "{name}");
        let c = tracer_rules::compile(&set).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.rules.len(), set.rules.len());
        assert!(!c.nrs.is_empty(), "{name}: {} RULE_NRS entries", c.nrs.len());
        assert!(c.nrs.len() <= tracer_common::rules::RULE_NRS_MAX as usize, "{name}: {} entries", c.nrs.len());
        for (i, r) in set.rules.iter().enumerate() {
            assert_eq!(c.keys(i), r.keys.as_slice());
        }
    }
}
