//! chroot and mount-namespace roots, with a real busybox-static jail.
// Every test crate gets the whole dev-dependency list; each uses part of it.
#![allow(unused_crate_dependencies)]

use std::{ffi::OsString, process::Command};

use tracer_tests::*;

/// DIR/bin/busybox and DIR/etc/hostname: enough of a root to run `busybox cat`.
fn jail() -> TempDir {
    let dir = TempDir::new("jail");
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("busybox-static (cargo xtask setup installs it)");
    std::fs::create_dir_all(dir.path().join("bin")).unwrap();
    std::fs::create_dir_all(dir.path().join("etc")).unwrap();
    std::fs::copy(busybox, dir.path().join("bin/busybox")).unwrap();
    std::fs::write(dir.path().join("etc/hostname"), "jailed\n").unwrap();
    dir
}

fn os(v: &[&str]) -> Vec<OsString> {
    v.iter().map(OsString::from).collect()
}

#[test]
fn chrooted_exec_and_open_carry_the_root_and_host_paths() {
    let jail = jail();
    let root = jail.path().to_str().unwrap();
    let t = trace_json(&[], &os(&["chroot", root, "/bin/busybox", "cat", "/etc/hostname"]));
    assert!(t.output.status.success(), "{}", t.stderr());
    assert_eq!(String::from_utf8_lossy(&t.output.stdout), "jailed\n");
    let exec = t.of_kind("exec").into_iter().find(|e| e["filename"] == "/bin/busybox").expect("exec in the jail");
    assert_eq!(exec["root"], root);
    assert_eq!(exec["chrooted"], true);
    assert_eq!(exec["exe"], format!("{root}/bin/busybox"));
    let open = t.of_kind("open").into_iter().find(|e| e["name"] == "/etc/hostname").expect("open in the jail");
    assert_eq!(open["path"], "/etc/hostname", "the path as the jailed process sees it");
    assert_eq!(open["host_path"], format!("{root}/etc/hostname"));
    assert_eq!(open["root"], root);
    assert_eq!(open["chrooted"], true);
    // The chroot(8) process itself, before it called chroot(2), was not chrooted.
    let outer = t.of_kind("exec").into_iter().find(|e| e["comm"] == "chroot").expect("exec of chroot");
    assert_eq!(outer["chrooted"], false);
    assert_eq!(outer["root"], "/");
    // Text output uses the host path.
    let out = Command::new(tracer_bin())
        .args(["trace", "--", "chroot", root, "/bin/busybox", "cat", "/etc/hostname"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.lines().any(|l| l.contains(" open ") && l.contains(&format!("\"{root}/etc/hostname\""))), "{text}");
}

#[test]
fn new_mount_namespace_shows_a_different_mntns() {
    let t = trace_json(&[], &os(&["unshare", "-m", "cat", "/etc/hostname"]));
    assert!(t.output.status.success(), "{}", t.stderr());
    let host_ns = std::fs::read_link("/proc/self/ns/mnt").unwrap();
    let host_ns: u64 = host_ns.to_str().unwrap().trim_start_matches("mnt:[").trim_end_matches(']').parse().unwrap();
    let unshare = t.of_kind("exec").into_iter().find(|e| e["comm"] == "unshare").expect("exec of unshare");
    assert_eq!(unshare["mntns"], host_ns);
    let cat = t.of_kind("exec").into_iter().find(|e| e["comm"] == "cat").expect("exec of cat");
    assert_ne!(cat["mntns"], host_ns, "cat runs in the new mount namespace");
    assert_eq!(cat["chrooted"], false);
    let open = t.of_kind("open").into_iter().find(|e| e["path"] == "/etc/hostname").expect("open");
    assert_eq!(open["mntns"], cat["mntns"]);
}

#[test]
fn roots_lists_a_running_chrooted_process_and_not_the_others() {
    let jail = jail();
    let root = jail.path().to_str().unwrap();
    let mut jailed = Command::new("chroot").args([root, "/bin/busybox", "sleep", "30"]).spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let out = Command::new(tracer_bin()).args(["roots", "--format", "json"]).output().unwrap();
    let all = Command::new(tracer_bin()).args(["roots", "--all", "--format", "json"]).output().unwrap();
    let text = Command::new(tracer_bin()).arg("roots").output().unwrap();
    jailed.kill().unwrap();
    jailed.wait().unwrap();
    assert!(out.status.success());
    let procs = parse_json_lines(&out.stdout);
    let mine = procs.iter().find(|p| p["pid"] == jailed.id()).expect("the jailed sleep is listed");
    assert_eq!(mine["root"], root);
    assert_eq!(mine["chrooted"], true);
    assert_eq!(mine["comm"], "busybox", "comm of the busybox image");
    assert!(procs.iter().all(|p| p["root"] != "/"), "only chrooted processes without --all");
    assert!(!procs.iter().any(|p| p["pid"] == std::process::id()));
    let all = parse_json_lines(&all.stdout);
    assert!(all.iter().any(|p| p["pid"] == std::process::id() && p["root"] == "/"));
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.lines().any(|l| l.contains(&jailed.id().to_string()) && l.ends_with(root)), "{text}");
}

#[test]
fn report_has_a_roots_section_for_chrooted_commands() {
    let jail = jail();
    let root = jail.path().to_str().unwrap();
    let dir = TempDir::new("roots-report");
    let text = dir.path().join("report.txt");
    let json = dir.path().join("report.json");
    let script =
        format!("chroot {root} /bin/busybox cat /etc/hostname; chroot {root} /bin/busybox true; cat /etc/hostname");
    for (format, out) in [("text", &text), ("json", &json)] {
        let st = Command::new(tracer_bin())
            .args(["report", "--format", format, "--output"])
            .arg(out)
            .args(["--", "sh", "-c", &script])
            .status()
            .unwrap();
        assert!(st.success());
    }
    let text = std::fs::read_to_string(&text).unwrap();
    let roots = text.split("Roots:\n").nth(1).unwrap_or_else(|| panic!("no Roots section: {text}"));
    assert!(roots.starts_with(&format!("   {root} 2\n")), "two commands ran in the jail: {text}");
    let reports: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let all: Vec<&serde_json::Value> =
        reports.as_array().unwrap().iter().flat_map(|r| r["roots"].as_array().unwrap()).collect();
    assert_eq!(all.len(), 1, "{reports}");
    assert_eq!(all[0]["root"], root);
    assert_eq!(all[0]["count"], 2);
    // Without chroots there is no Roots section.
    let plain = Command::new(tracer_bin()).args(["report", "--", "true"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&plain.stdout).contains("Roots:"));
}
