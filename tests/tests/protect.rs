//! `tracer protect` against the real kernel and OpenSSH's real ssh-keygen: the stealers an
//! attacker would try (cat, a copy of cat named ssh-keygen, links to the key, a renamed key, a
//! key named by its content only), --check, --enforce, the output formats.
// Every test crate gets the whole dev-dependency list; each uses part of it.
#![allow(unused_crate_dependencies)]

use std::{
    os::unix::fs::PermissionsExt as _,
    process::Command,
    time::{Duration, Instant},
};

use protect_env::{Agent, Home, Protect, about, s};
use tracer_tests::{TempDir, tracer_bin};

mod protect_env;

#[test]
fn cat_of_a_key_is_reported_and_ssh_keygen_is_not() {
    let home = Home::new("protect-cat");
    let p = Protect::start(&home, &[]);
    let key = home.key();
    let k = key.to_str().unwrap();
    // The kernel filters without waiting for user space: both run before the stop.
    let public = home.as_user(&["ssh-keygen", "-y", "-f", k]);
    assert!(public.starts_with("ssh-ed25519 "), "ssh-keygen read the key: {public}");
    home.as_user(&["cat", k]);
    // O_PATH opens nothing to read: not reported.
    home.as_user(&["/usr/bin/python3", "-c", "import os,sys; os.close(os.open(sys.argv[1], os.O_PATH))", k]);
    let (events, stderr) = p.stop();
    let hits = about(&events, "ssh-key", &key);
    assert_eq!(hits.len(), 1, "exactly cat's read: {hits:#?}\n{stderr}");
    let e = &hits[0];
    assert_eq!(e["comm"], "cat");
    assert_eq!(e["exe"], "/usr/bin/cat");
    assert_eq!(e["argv"], serde_json::json!(["cat", k]));
    assert_eq!(e["uid"], home.uid);
    assert_eq!(e["auid"], home.uid);
    assert!(e["ses"].is_number(), "{e}");
    assert_eq!(e["owner_uid"], home.uid);
    assert_eq!(e["event"], "open");
    assert!(e["tree"].as_array().is_some_and(|t| !t.is_empty()), "the reader's ancestors: {e}");
    assert!(!events.iter().any(|e| s(e, "comm").starts_with("ssh-keygen")), "ssh-keygen is allowed: {events:#?}");
}

#[test]
fn stealers_disguised_or_through_links_are_reported() {
    let home = Home::new("protect-steal");
    let key = home.key();
    // Found by content: no id_ prefix.
    let by_content = home.ssh().join("work-laptop");
    std::fs::copy(&key, &by_content).unwrap();
    std::os::unix::fs::chown(&by_content, Some(home.uid), Some(home.gid)).unwrap();
    let p = Protect::start(&home, &[]);
    let tools = TempDir::new("protect-tools");
    // A copy of cat named ssh-keygen, even root-owned: another inode, not OpenSSH's.
    let fake = tools.file("ssh-keygen");
    std::fs::copy("/usr/bin/cat", &fake).unwrap();
    let links = home.dir.file("links");
    std::fs::create_dir(&links).unwrap();
    std::os::unix::fs::chown(&links, Some(home.uid), Some(home.gid)).unwrap();
    let (sym, hard) = (links.join("sym"), links.join("hard"));
    home.as_user(&["ln", "-s", key.to_str().unwrap(), sym.to_str().unwrap()]);
    home.as_user(&["ln", key.to_str().unwrap(), hard.to_str().unwrap()]);
    home.as_user(&[fake.to_str().unwrap(), key.to_str().unwrap()]);
    home.as_user(&["cat", sym.to_str().unwrap()]);
    home.as_user(&["cat", hard.to_str().unwrap()]);
    home.as_user(&["cat", by_content.to_str().unwrap()]);
    // Renamed after the scan: the inode is still protected.
    let renamed = home.ssh().join("innocent.txt");
    std::fs::rename(&key, &renamed).unwrap();
    home.as_user(&[
        "sh",
        "-c",
        &format!("cd {} && exec dd if=innocent.txt of=/dev/null status=none", home.ssh().display()),
    ]);
    // A key written after the start is found by a rescan.
    let new_key = home.ssh().join("id_new");
    home.as_user(&["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", new_key.to_str().unwrap()]);
    let nk = new_key.to_str().unwrap().to_string();
    p.until(|| drop(home.as_user(&["head", "-c1", &nk])), |e| e["key"] == "ssh-key" && s(e, "target") == nk);
    let (events, _) = p.stop();
    let reads: Vec<(String, String, String)> = events
        .iter()
        .filter(|e| e["key"] == "ssh-key" && e["uid"] == home.uid)
        .map(|e| (s(e, "exe"), s(e, "path"), s(e, "target")))
        .collect();
    let k = key.to_str().unwrap().to_string();
    let expect = [
        (fake.to_str().unwrap().to_string(), k.clone(), k.clone()),
        ("/usr/bin/cat".into(), sym.to_str().unwrap().into(), k.clone()),
        ("/usr/bin/cat".into(), hard.to_str().unwrap().into(), k.clone()),
        ("/usr/bin/cat".into(), by_content.to_str().unwrap().into(), by_content.to_str().unwrap().into()),
    ];
    for x in &expect {
        assert!(reads.contains(x), "missing {x:?} in {reads:#?}");
    }
    // The renamed key: its inode is protected; the target is its name at the last scan.
    let r = renamed.to_str().unwrap();
    assert!(reads.iter().any(|(exe, path, t)| exe == "/usr/bin/dd" && path == r && (*t == k || t == r)), "{reads:#?}");
    assert!(reads.iter().any(|(exe, _, t)| exe == "/usr/bin/head" && *t == nk), "{reads:#?}");
    assert!(
        !reads.iter().any(|(exe, _, _)| exe == "/usr/bin/ssh-keygen"),
        "the real ssh-keygen is allowed: {reads:#?}"
    );
}

#[test]
fn check_lists_keys_agents_allow_list_and_enforcement() {
    let home = Home::new("protect-check");
    let agent = Agent::start(&home);
    let o = Command::new(tracer_bin()).args(["protect", "--check", "--home"]).arg(home.dir.path()).output().unwrap();
    assert!(o.status.success());
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains(&format!("{} (owner uid {}", home.key().display(), home.uid)), "{text}");
    assert!(!text.contains("id_ed25519.pub"), "{text}");
    assert!(
        text.contains(&format!("{} (ssh-agent, pid {}, uid {}", agent.sock.display(), agent.child.id(), home.uid)),
        "{text}"
    );
    assert!(text.contains("/usr/bin/ssh-keygen (inode"), "{text}");
    assert!(text.contains("enforcement: "), "{text}");
}

#[test]
fn bad_allow_list_entries_are_refused() {
    let dir = TempDir::new("protect-allow");
    let writable = dir.file("tool");
    std::fs::copy("/usr/bin/true", &writable).unwrap();
    std::fs::set_permissions(&writable, std::fs::Permissions::from_mode(0o777)).unwrap();
    for (arg, msg) in
        [(writable.to_str().unwrap(), "writable by group or others"), ("/nonexistent/ssh", "No such file")]
    {
        let o = Command::new(tracer_bin()).args(["protect", "--check", "--allow", arg]).output().unwrap();
        assert_eq!(o.status.code(), Some(2));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(arg) && err.contains(msg), "{err}");
    }
    for (args, msg) in [
        (&["--rescan", "0"][..], "--rescan: must be longer than 0"),
        (&["--no-default-allow"][..], "nothing may read a key"),
        (&["--agent-exe", "/nonexistent/agent"][..], "--agent-exe /nonexistent/agent"),
    ] {
        let o = Command::new(tracer_bin()).arg("protect").args(args).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(msg), "{args:?}: {err}");
    }
}

/// Where the kernel refuses BPF LSM programs (this machine: EPERM at load), `--enforce`
/// exits 2 naming the refused program and the reason, and alert mode still runs; where it
/// accepts them, the stealer's open fails with EPERM, ssh-keygen still reads the key and the
/// denial is an event.
#[test]
fn enforce_denies_or_exits_2_naming_why() {
    let home = Home::new("protect-enforce");
    let check = Command::new(tracer_bin()).args(["protect", "--check"]).output().unwrap();
    let check = String::from_utf8_lossy(&check.stdout).into_owned();
    let key = home.key();
    let k = key.to_str().unwrap();
    if let Some(why) = check.lines().find_map(|l| l.strip_prefix("enforcement: unavailable: ")) {
        let o = Command::new(tracer_bin())
            .args(["protect", "--enforce", "--duration", "30s", "--home"])
            .arg(home.dir.path())
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{o:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("--enforce: ") && err.contains(why) && err.contains("alert mode"), "{err}\n{why}");
        assert!(!err.contains("tracer: protecting"), "nothing half-applied: {err}");
        // Alert mode runs on the same machine.
        let p = Protect::start(&home, &[]);
        let start = Instant::now();
        home.as_user(&["cat", k]);
        let (events, _) = p.stop();
        let hits = about(&events, "ssh-key", &key);
        assert!(hits.len() == 1 && hits[0]["denied"] == false, "{hits:#?} ({:?})", start.elapsed());
        return;
    }
    assert!(check.contains("enforcement: available"), "{check}");
    let p = Protect::start(&home, &["--enforce"]);
    let stolen = home.user_cmd(&["cat", k]).output().unwrap();
    assert!(!stolen.status.success());
    assert!(String::from_utf8_lossy(&stolen.stderr).contains("Operation not permitted"), "{stolen:?}");
    assert!(home.as_user(&["ssh-keygen", "-y", "-f", k]).starts_with("ssh-ed25519 "));
    let (events, _) = p.stop();
    let hits = about(&events, "ssh-key", &key);
    assert_eq!(hits.len(), 1, "{hits:#?}");
    assert_eq!(hits[0]["denied"], true);
    assert_eq!(hits[0]["error"], "EPERM");
    assert_eq!(hits[0]["comm"], "cat");
}

/// Text and audit.log output carry the key too; a write-only open (creat) of a key is not a read.
#[test]
fn text_and_audit_formats_carry_the_key() {
    let home = Home::new("protect-formats");
    let key = home.key();
    let k = key.to_str().unwrap();
    for (format, want) in [("text", "ssh-key "), ("audit", "key=\"ssh-key\"")] {
        let files = TempDir::new("protect-fmt");
        let out = files.file("out");
        let err = files.file("err");
        let mut child = Command::new(tracer_bin())
            .args(["protect", "--format", format, "--output"])
            .arg(&out)
            .arg("--home")
            .arg(home.dir.path())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .unwrap();
        let start = Instant::now();
        while !std::fs::read_to_string(&err).unwrap_or_default().contains("tracer: protecting") {
            assert!(start.elapsed() < Duration::from_secs(60));
            std::thread::sleep(Duration::from_millis(50));
        }
        home.as_user(&["cat", k]);
        // Write-only (no read of the secret): not reported.
        home.as_user(&["sh", "-c", &format!("true >> {k}")]);
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        assert!(child.wait().unwrap().success());
        let text = std::fs::read_to_string(&out).unwrap();
        let lines: Vec<&str> = text.lines().filter(|l| l.contains(want)).collect();
        match format {
            "text" => {
                let mine: Vec<&&str> = lines.iter().filter(|l| l.contains(&format!("uid={}", home.uid))).collect();
                assert_eq!(mine.len(), 1, "{text}");
                assert!(mine[0].contains("comm=\"cat\"") && mine[0].contains(&format!("target=\"{k}\"")), "{text}");
            }
            _ => {
                let mine: Vec<&&str> = lines
                    .iter()
                    .filter(|l| l.starts_with("type=SYSCALL") && l.contains(&format!(" uid={} ", home.uid)))
                    .collect();
                assert_eq!(mine.len(), 1, "{text}");
                assert!(mine[0].contains("comm=\"cat\""), "{text}");
            }
        }
    }
}
