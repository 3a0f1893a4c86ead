//! `tracer guard` end to end: a real OpenSSH sshd in one network namespace, sshpass + ssh
//! attackers in another (joined by a veth pair), and `tracer guard run` inside the server's
//! namespace, fed by sshd's messages captured in the kernel and banning with nftables there.
// Every test crate gets the whole dev-dependency list; each uses part of it.
#![allow(unused_crate_dependencies)]

mod guard_env;

use std::{
    io::ErrorKind::ConnectionRefused,
    net::IpAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use guard_env::*;

fn write_jail(dir: &TempDir, name: &str, text: &str) -> PathBuf {
    let p = dir.file(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Server (`.1`) and client namespaces; the client holds `.2`, `.3` and `.4`.
fn pair(base: u8) -> (Netns, Netns, impl Fn(u8) -> String) {
    let ip = subnet(base);
    let srv = Netns::new("srv");
    let cli = Netns::new("cli");
    srv.veth(
        &cli,
        &[&format!("{}/24", ip(1))],
        &[&format!("{}/24", ip(2)), &format!("{}/24", ip(3)), &format!("{}/24", ip(4))],
    );
    (srv, cli, ip)
}

fn addr(s: String) -> IpAddr {
    s.parse().unwrap()
}

const SECS: fn(u64) -> Duration = Duration::from_secs;

/// fail2ban's layout: `2026-11-24 13:22:29,123 fail2ban.actions        [PID]: NOTICE  [sshd] Ban IP`.
fn assert_fail2ban_layout(line: &str) {
    let b = line.as_bytes();
    assert!(
        b.len() > 24 && b[4] == b'-' && b[7] == b'-' && b[10] == b' ' && b[13] == b':' && b[19] == b',',
        "timestamp: {line}"
    );
    assert!(line[24..].starts_with("fail2ban."), "{line}");
    assert!(line.contains("]: NOTICE  [sshd] ") || line.contains("]: INFO    [sshd] "), "{line}");
}

#[test]
fn stderr_path_bans_after_maxretry_and_lifts_after_bantime() {
    let _serial = serial();
    let (srv, cli, ip) = pair(171);
    let dir = TempDir::new("stderr");
    let (attacker, other) = (addr(ip(2)), addr(ip(3)));
    let sshd = Sshd::start(&srv, &dir, &ip(1), true, (&cli, other));
    let jail = write_jail(
        &dir,
        "jail.local",
        "[sshd]\nenabled = true\nport = 2222\nmaxretry = 3\nfindtime = 10m\nbantime = 4s\n",
    );
    let state = dir.file("state.sqlite3");
    let guard = GuardProc::start(&srv, &dir, &["--config", s(&jail), "--state", s(&state)]);

    for _ in 0..2 {
        wrong_password(&cli, attacker, sshd.addr, "nobody");
    }
    let found = format!("] Found {attacker} - ");
    assert!(guard.wait_count(&found, 2, SECS(10)), "{}", guard.output());
    assert_eq!(guard.count(&format!("Ban {attacker}")), 0, "{}", guard.output());
    assert_eq!(cli.connect(attacker, sshd.addr), Ok(()), "two failures do not ban");

    wrong_password(&cli, attacker, sshd.addr, "nobody");
    guard.expect(&format!("] Ban {attacker}"), SECS(10));
    // The Ban line is printed once the firewall holds the ban.
    assert_eq!(cli.connect(attacker, sshd.addr), Err(ConnectionRefused));
    assert_eq!(cli.connect(other, sshd.addr), Ok(()), "another address still connects");
    let ban_line =
        guard.lines.lock().unwrap().iter().find(|l| l.ends_with(&format!("] Ban {attacker}"))).cloned().unwrap();
    assert_fail2ban_layout(&ban_line);
    assert!(ban_line.contains(" fail2ban.actions "), "{ban_line}");
    assert!(
        sshd.stderr().contains(&format!("Failed password for nobody from {attacker} port ")),
        "sshd wrote its messages to stderr: {}",
        sshd.stderr()
    );

    // fail2ban-client's layout, from another process, with the banned address.
    let (code, out, err) = guard_cmd(Some(&srv), &["status", "sshd", "--config", s(&jail), "--state", s(&state)]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("Status for the jail: sshd\n|- Filter\n|  |- Currently failed:\t"), "{out}");
    assert!(out.contains("|  `- File list:\tkernel (eBPF)\n`- Actions\n   |- Currently banned:\t1\n"), "{out}");
    assert!(out.contains(&format!("   `- Banned IP list:\t{attacker}\nDaemon:\trunning (pid ")), "{out}");
    let total_failed: u64 = out
        .lines()
        .find_map(|l| l.strip_prefix("|  |- Total failed:\t"))
        .and_then(|n| n.parse().ok())
        .expect("Total failed");
    assert!(total_failed >= 3, "{out}");
    let (code, out, _) = guard_cmd(Some(&srv), &["status", "--config", s(&jail)]);
    assert_eq!((code, out.as_str()), (0, "Status\n|- Number of jail:\t1\n`- Jail list:\tsshd\n"));

    // bantime = 4s: the ban lifts and the attacker connects again.
    guard.expect(&format!("] Unban {attacker}"), SECS(10));
    assert!(cli.wait_connect(attacker, sshd.addr, Ok(()), SECS(3)), "ban lifted");

    let (status, out) = guard.stop();
    assert!(status.success(), "{status}: {out}");
    assert!(out.contains("Jail 'sshd' stopped"), "{out}");
    // The kernel source's totals, loss and undecodable records included, are never silent.
    assert!(
        out.lines().any(|l| l.contains("[sshd] kernel source: ") && l.ends_with(" 0 lost, 0 undecodable")),
        "{out}"
    );
    assert!(!srv.ruleset().contains("tracer_guard"), "stop removes the table: {}", srv.ruleset());
}

#[test]
fn syslog_path_bans_and_file_source_follows_auth_log() {
    let _serial = serial();
    let (srv, cli, ip) = pair(172);
    let dir = TempDir::new("syslog");
    let (attacker, other, attacker2) = (addr(ip(2)), addr(ip(3)), addr(ip(4)));
    let syslog = Syslog::start(&dir);
    let sshd = Sshd::start(&srv, &dir, &ip(1), false, (&cli, other));
    let jail = write_jail(&dir, "jail.local", "[sshd]\nenabled = true\nport = 2222\nmaxretry = 3\nbantime = 1m\n");
    let guard = GuardProc::start(&srv, &dir, &["--config", s(&jail), "--state", s(&dir.file("k.sqlite3"))]);
    for _ in 0..3 {
        wrong_password(&cli, attacker, sshd.addr, "nobody");
    }
    guard.expect(&format!("] Ban {attacker}"), SECS(10));
    assert_eq!(cli.connect(attacker, sshd.addr), Err(ConnectionRefused));
    assert_eq!(cli.connect(other, sshd.addr), Ok(()));
    assert!(!sshd.stderr().contains("Failed password"), "sshd logged to syslog, not stderr: {}", sshd.stderr());
    let (status, out) = guard.stop();
    assert!(status.success(), "{out}");
    assert!(out.contains(&format!("] Unban {attacker}")), "stop lifts: {out}");
    assert_eq!(cli.connect(attacker, sshd.addr), Ok(()));

    // When the test runs its own rsyslogd, the same messages are in its auth.log: follow it.
    let Some(auth_log) = syslog.auth_log.clone() else {
        eprintln!("a syslog daemon already listens on /dev/log: file source not tested");
        return;
    };
    let want = format!("Failed password for nobody from {attacker} port ");
    let t = std::time::Instant::now();
    while !std::fs::read_to_string(&auth_log).unwrap_or_default().contains(&want) {
        assert!(t.elapsed() < SECS(5), "rsyslogd did not write {}", auth_log.display());
        std::thread::sleep(Duration::from_millis(50));
    }
    let jail2 = write_jail(
        &dir,
        "jail-file.local",
        &format!("[sshd]\nenabled = true\nport = 2222\nmaxretry = 3\nbantime = 1m\nlogpath = {}\n", auth_log.display()),
    );
    let guard = GuardProc::start(
        &srv,
        &dir,
        &["--config", s(&jail2), "--source", "file", "--state", s(&dir.file("f.sqlite3"))],
    );
    for _ in 0..3 {
        wrong_password(&cli, attacker2, sshd.addr, "nobody");
    }
    guard.expect(&format!("] Ban {attacker2}"), SECS(10));
    assert_eq!(cli.connect(attacker2, sshd.addr), Err(ConnectionRefused));
    assert_eq!(cli.connect(attacker, sshd.addr), Ok(()), "the file is followed from its end");
    assert!(guard.output().contains("(source: ") && guard.output().contains(s(&auth_log)), "{}", guard.output());
    let (status, out) = guard.stop();
    assert!(status.success(), "{out}");

    // fail2ban-regex's question on the real auth.log.
    let (code, out, err) = guard_cmd(None, &["test-log", s(&auth_log), "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["summary"]["by_address"][attacker.to_string()], 3, "{out}");
    assert_eq!(v["summary"]["by_address"][attacker2.to_string()], 3, "{out}");
}

#[test]
fn restart_restores_an_unexpired_ban_and_cli_bans_apply_at_once() {
    let _serial = serial();
    let (srv, cli, ip) = pair(173);
    let dir = TempDir::new("restore");
    let (attacker, other) = (addr(ip(2)), addr(ip(3)));
    let sshd = Sshd::start(&srv, &dir, &ip(1), true, (&cli, other));
    let jail = write_jail(&dir, "jail.local", "[sshd]\nenabled = true\nport = 2222\nmaxretry = 3\nbantime = 1h\n");
    let state = dir.file("state.sqlite3");
    let common = ["--config", s(&jail), "--state", s(&state)];
    let cli_guard = |args: &[&str]| {
        let mut a: Vec<&str> = args.to_vec();
        a.extend_from_slice(&common);
        guard_cmd(Some(&srv), &a)
    };

    let guard = GuardProc::start(&srv, &dir, &common);
    let (code, _, err) = cli_guard(&["ban", "sshd", "300.1.2.3"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("'300.1.2.3' is not an IP address"), "{err}");
    let (code, _, err) = cli_guard(&["ban", "ssh", &attacker.to_string()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("jail 'ssh' does not exist"), "{err}");

    let (code, out, err) = cli_guard(&["ban", "sshd", &attacker.to_string()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, format!("NOTICE  [sshd] Ban {attacker}\n"));
    assert_eq!(cli.connect(attacker, sshd.addr), Err(ConnectionRefused), "applied at once");
    guard.expect(&format!("] Ban {attacker}"), SECS(5));
    let (code, out, _) = cli_guard(&["ban", "sshd", &attacker.to_string()]);
    assert_eq!((code, out), (0, format!("NOTICE  [sshd] {attacker} already banned\n")));

    let (status, out) = guard.stop();
    assert!(status.success(), "{out}");
    assert_eq!(cli.connect(attacker, sshd.addr), Ok(()), "stop removes the firewall objects");

    let guard = GuardProc::start(&srv, &dir, &common);
    guard.expect(&format!("] Restore Ban {attacker}"), SECS(5));
    assert_eq!(cli.connect(attacker, sshd.addr), Err(ConnectionRefused), "restored ban is enforced");
    assert_eq!(cli.connect(other, sshd.addr), Ok(()));
    let (_, out, _) = cli_guard(&["status", "sshd"]);
    assert!(out.contains(&format!("`- Banned IP list:\t{attacker}\nDaemon:\trunning")), "{out}");

    let (code, out, err) = cli_guard(&["unban", "sshd", &attacker.to_string()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, format!("NOTICE  [sshd] Unban {attacker}\n"));
    assert_eq!(cli.connect(attacker, sshd.addr), Ok(()), "unban applies at once");
    guard.expect(&format!("] Unban {attacker}"), SECS(5));
    let (code, out, _) = cli_guard(&["unban", "sshd", &attacker.to_string()]);
    assert_eq!((code, out), (0, format!("NOTICE  [sshd] {attacker} is not banned\n")));
    let (status, out) = guard.stop();
    assert!(status.success(), "{out}");

    // --keep-bans: the ban outlives the daemon (nftables lifts it by its timeout).
    let mut args = common.to_vec();
    args.push("--keep-bans");
    let guard = GuardProc::start(&srv, &dir, &args);
    let (code, _, err) = cli_guard(&["ban", "sshd", &attacker.to_string()]);
    assert_eq!(code, 0, "{err}");
    guard.expect(&format!("] Ban {attacker}"), SECS(5));
    let (status, out) = guard.stop();
    assert!(status.success(), "{out}");
    assert_eq!(cli.connect(attacker, sshd.addr), Err(ConnectionRefused), "--keep-bans");
    assert!(srv.ruleset().contains("table inet tracer_guard"));
}

#[test]
fn ignoreip_is_never_banned() {
    let _serial = serial();
    let (srv, cli, ip) = pair(174);
    let dir = TempDir::new("ignore");
    let (trusted, other) = (addr(ip(2)), addr(ip(3)));
    let sshd = Sshd::start(&srv, &dir, &ip(1), true, (&cli, other));
    let jail = write_jail(
        &dir,
        "jail.local",
        &format!(
            "[DEFAULT]\nignoreip = 127.0.0.1/8 ::1 {trusted}/32\n[sshd]\nenabled = true\nport = 2222\nmaxretry = 2\nbantime = 1m\n"
        ),
    );
    let guard = GuardProc::start(&srv, &dir, &["--config", s(&jail), "--state", s(&dir.file("st.sqlite3"))]);
    for _ in 0..3 {
        wrong_password(&cli, trusted, sshd.addr, "nobody");
    }
    let ignored = format!("] Ignore {trusted} by ip");
    assert!(guard.wait_count(&ignored, 3, SECS(10)), "{}", guard.output());
    // The jail works: the same failures from another address ban it.
    for _ in 0..2 {
        wrong_password(&cli, other, sshd.addr, "nobody");
    }
    guard.expect(&format!("] Ban {other}"), SECS(10));
    assert_eq!(cli.connect(other, sshd.addr), Err(ConnectionRefused));
    assert_eq!(guard.count(&format!("Ban {trusted}")), 0, "{}", guard.output());
    assert_eq!(guard.count(&format!("Found {trusted}")), 0, "{}", guard.output());
    assert_eq!(cli.connect(trusted, sshd.addr), Ok(()));
}

#[test]
fn injected_user_names_never_ban_the_injected_address() {
    let _serial = serial();
    let (srv, cli, ip) = pair(175);
    let dir = TempDir::new("inject");
    let (attacker, victim) = (addr(ip(2)), addr(ip(3)));
    let sshd = Sshd::start(&srv, &dir, &ip(1), true, (&cli, victim));
    // The attacker is exempt so that every attempt reaches sshd: each is reported as
    // `Ignore ATTACKER`, and any failure counted for the victim would ban it at the third.
    let jail = write_jail(
        &dir,
        "jail.local",
        &format!(
            "[sshd]\nenabled = true\nport = 2222\nmaxretry = 3\nbantime = 1m\nmode = aggressive\nignoreip = {attacker}\n"
        ),
    );
    let guard = GuardProc::start(&srv, &dir, &["--config", s(&jail), "--state", s(&dir.file("st.sqlite3"))]);
    // sshd writes the user name before the real address. (Names with newlines, which sshd
    // leaves unescaped on stderr, are refused by OpenSSH's client; the guard's one call = one
    // message rule is unit-tested in tracer/src/cmd/guard/run.rs.)
    let names = [
        format!("x from {victim} port 22"),
        format!("x from {victim} port 22 ssh2"),
        format!("x from {victim}"),
        format!("x from {victim} port 22 ssh2 [preauth]"),
    ];
    for name in &names {
        wrong_password(&cli, attacker, sshd.addr, name);
    }
    let ignored = format!("] Ignore {attacker} by ip");
    assert!(guard.wait_count(&ignored, names.len() * 2, SECS(10)), "{}", guard.output());
    // Let every message of the last attempt arrive before looking for the victim.
    std::thread::sleep(SECS(1));
    let err = sshd.stderr();
    assert!(err.contains(&format!("Invalid user x from {victim} port 22 from {attacker} port ")), "{err}");
    let out = guard.output();
    eprintln!("guard:\n{out}\nsshd:\n{err}");
    assert_eq!(guard.count(&format!(" {victim}")), 0, "the injected address is never counted:\n{out}\nsshd:\n{err}");
    assert_eq!(cli.connect(victim, sshd.addr), Ok(()));
}

#[test]
fn bad_config_exits_2_naming_file_and_line_without_firewall_change() {
    let _serial = serial();
    let srv = Netns::new("badcfg");
    let dir = TempDir::new("badcfg");
    srv.exec(&["nft", "add", "table", "inet", "keepme"]);
    srv.exec(&["nft", "add", "chain", "inet", "keepme", "c", "{ type filter hook input priority 0 ; }"]);
    let before = srv.ruleset();
    let state = dir.file("st.sqlite3");
    let cases: Vec<(PathBuf, String)> = vec![
        (
            write_jail(&dir, "bad-value.local", "[DEFAULT]\nbantime = 10m\n\n[sshd]\nenabled = true\nbantime = 10x\n"),
            "bad-value.local:6: bantime: ".into(),
        ),
        (write_jail(&dir, "bad-syntax.local", "[sshd]\nenabled = true\nmaxretry\n"), "bad-syntax.local:3: ".into()),
        (
            write_jail(&dir, "bad-ignore.local", "[sshd]\nenabled = true\nignoreip = 10.0.0.0/33\n"),
            "bad-ignore.local:3: ignoreip: ".into(),
        ),
        (write_jail(&dir, "disabled.local", "[sshd]\nport = 2222\n"), "jail is not enabled in ".into()),
        (dir.file("missing.local"), "missing.local: ".into()),
    ];
    for (file, want) in &cases {
        let (code, out, err) = guard_cmd(Some(&srv), &["run", "--config", s(file), "--state", s(&state)]);
        assert_eq!(code, 2, "{}: {out}{err}", file.display());
        assert!(err.contains(want.as_str()), "{}: want {want:?} in {err}", file.display());
        assert!(err.contains(s(file)), "names the file: {err}");
        assert_eq!(srv.ruleset(), before, "no firewall change for {}", file.display());
    }
    let bad = &cases[0].0;
    for args in [vec!["ban", "sshd", "192.0.2.1"], vec!["unban", "sshd", "192.0.2.1"], vec!["status", "sshd"]] {
        let mut a = args.clone();
        a.extend(["--config", s(bad), "--state", s(&state)]);
        let (code, _, err) = guard_cmd(Some(&srv), &a);
        assert_eq!(code, 2, "{a:?}: {err}");
        assert!(err.contains("bad-value.local:6: bantime: "), "{err}");
    }
    assert_eq!(srv.ruleset(), before);
    let (code, _, err) = guard_cmd(Some(&srv), &["run", "--source", "journal"]);
    assert_eq!(code, 2, "{err}");
}

const SAMPLE: &str = "\
Nov 24 13:22:20 host sshd[10]: Connection from 192.0.2.7 port 5000 on 10.0.0.1 port 22 rdomain \"\"
Nov 24 13:22:21 host sshd[10]: Failed password for root from 192.0.2.7 port 5000 ssh2
Nov 24 13:22:22 host sshd[10]: Failed password for root from 192.0.2.7 port 5000 ssh2
Nov 24 13:22:23 host sshd[10]: Disconnecting authenticating user root 192.0.2.7 port 5000: Too many authentication failures [preauth]
Nov 24 13:22:24 host sshd[11]: Invalid user admin from 198.51.100.4 port 41000
Nov 24 13:22:25 host sshd[11]: Failed password for invalid user admin from 198.51.100.4 port 41000 ssh2
Nov 24 13:22:26 host sshd[12]: Failed password for invalid user x from 10.9.9.9 port 22 from 203.0.113.9 port 6000 ssh2
Nov 24 13:22:27 host sshd[13]: Accepted publickey for bob from 198.51.100.20 port 50000 ssh2: ED25519 SHA256:abc
Nov 24 13:22:28 host CRON[14]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)
Nov 24 13:22:29 host sshd[15]: Connection closed by 203.0.113.50 port 7000 [preauth]
";

#[test]
fn test_log_counts_a_sample_auth_log() {
    let dir = TempDir::new("testlog");
    let log = write_jail(&dir, "auth.log", SAMPLE);
    let (code, out, err) = guard_cmd(None, &["test-log", s(&log)]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!("Use   mode: normal\nUse   usedns: warn\nUse   log file: {}\n", log.display())),
        "{out}"
    );
    assert!(out.contains("Failures: 5 total\n"), "{out}");
    assert!(
        out.contains("Addresses: 3 found\n|   [2] 192.0.2.7\n|   [2] 198.51.100.4\n|   [1] 203.0.113.9\n`-"),
        "{out}"
    );
    // Line 4 (`Disconnecting authenticating user ...: Too many authentication failures`) is not
    // a failure for fail2ban's filter either; line 9 is cron's.
    assert!(out.contains("Lines: 10 lines, 5 failures, 3 other sshd lines, 2 missed"), "{out}");
    assert!(out.contains("user=x from 10.9.9.9 port 22  pid=12") && !out.contains("] 10.9.9.9"), "{out}");

    // ddos mode also counts the preauth disconnect of 203.0.113.50.
    let (code, out, err) = guard_cmd(None, &["test-log", s(&log), "--mode", "ddos", "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["mode"], "ddos");
    assert_eq!(v["summary"]["lines"], 10);
    assert_eq!(v["summary"]["by_address"]["203.0.113.50"], 1, "{out}");
    assert!(v["summary"]["by_address"].get("10.9.9.9").is_none(), "{out}");

    let (code, _, err) = guard_cmd(None, &["test-log", s(&dir.file("nope.log"))]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = guard_cmd(None, &["test-log", s(&log), "--mode", "silly"]);
    assert_eq!(code, 2, "{err}");
}
