//! `tracer guard run` as a daemon, end to end with the real binary and real nftables in
//! network namespaces: one daemon per namespace, commands that go through it (or say what
//! they did without it), SIGHUP reload, long bans, a corrupt state, hostile configuration.
//! The jail reads a log file (`--source file`) the test writes, so no sshd is needed.
// Every test crate gets the whole dev-dependency list; each uses part of it.
#![allow(unused_crate_dependencies)]

mod guard_env;

use std::{
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    time::Duration,
};

use guard_env::*;

const SECS: fn(u64) -> Duration = Duration::from_secs;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A namespace, a jail.local following `auth.log` in `dir`, and a state path.
struct World {
    ns: Netns,
    dir: TempDir,
    jail: PathBuf,
    state: PathBuf,
    log: PathBuf,
}

impl World {
    fn new(tag: &str, settings: &str) -> World {
        let ns = Netns::new(tag);
        let dir = TempDir::new(tag);
        let log = dir.file("auth.log");
        std::fs::write(&log, "").unwrap();
        let jail = dir.file("jail.local");
        let state = dir.file("state.sqlite3");
        let w = World { ns, dir, jail, state, log };
        w.write_jail(settings);
        w
    }

    fn write_jail(&self, settings: &str) {
        let text = format!("[sshd]\nenabled = true\nignoreself = false\nlogpath = {}\n{settings}", self.log.display());
        std::fs::write(&self.jail, text).unwrap();
    }

    fn common(&self) -> Vec<&str> {
        vec!["--config", s(&self.jail), "--state", s(&self.state)]
    }

    fn start(&self, extra: &[&str]) -> GuardProc {
        let mut a = vec!["--source", "file"];
        a.extend(self.common());
        a.extend_from_slice(extra);
        GuardProc::start(&self.ns, &self.dir, &a)
    }

    fn cli(&self, args: &[&str]) -> (i32, String, String) {
        let mut a = args.to_vec();
        a.extend(self.common());
        guard_cmd(Some(&self.ns), &a)
    }

    /// Appends sshd failures for `ip` to the followed log.
    fn fail(&self, ip: &str, n: usize) {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).open(&self.log).unwrap();
        for i in 0..n {
            writeln!(f, "Nov 27 13:22:29 host sshd[{}]: Failed password for root from {ip} port 5{i} ssh2", 4000 + i)
                .unwrap();
        }
    }

    fn set(&self) -> String {
        self.ns.try_exec(&["nft", "list", "set", "inet", "tracer_guard", "sshd_v4"]).unwrap_or_default()
    }
}

fn pid_of(g: &GuardProc) -> u32 {
    g.proc.0.id()
}

#[test]
fn a_second_daemon_refuses_naming_the_pid_and_leaves_the_first_intact() {
    let w = World::new("two", "bantime = 1h\n");
    let first = w.start(&[]);
    let other_state = w.dir.file("other.sqlite3");
    let (code, out, err) =
        guard_cmd(Some(&w.ns), &["run", "--source", "file", "--config", s(&w.jail), "--state", s(&other_state)]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains(&format!("another `tracer guard run` (pid {})", pid_of(&first))), "{err}");
    assert!(!out.contains("started"), "{out}");
    // The first one's table survived the second's exit and still bans.
    assert!(w.ns.ruleset().contains("table inet tracer_guard"));
    let (code, out, err) = w.cli(&["ban", "sshd", "192.0.2.80"]);
    assert_eq!((code, out.as_str()), (0, "NOTICE  [sshd] Ban 192.0.2.80\n"), "{err}");
    assert!(w.set().contains("192.0.2.80"), "{}", w.set());
    first.expect("] Ban 192.0.2.80", SECS(5));
    assert!(!first.output().contains("ERROR"), "{}", first.output());

    // Another network namespace has its own firewall and its own daemon.
    let w2 = World::new("two-b", "bantime = 1h\n");
    let g2 = w2.start(&[]);
    let (st, out) = g2.stop();
    assert!(st.success(), "{out}");
    let (st, out) = first.stop();
    assert!(st.success(), "{out}");
    // Its lock went with it: a new daemon starts.
    let (st, out) = w.start(&[]).stop();
    assert!(st.success(), "{out}");
}

#[test]
fn commands_go_through_the_daemon_once_and_tell_the_truth() {
    let w = World::new("ctl", "bantime = 1h\nignoreip = 127.0.0.1/8 ::1 192.0.2.99\n");
    let g = w.start(&[]);
    let pid = pid_of(&g);

    // Ten concurrent bans of one address: one ban, one Ban line, one row.
    let threads: Vec<_> = (0..10)
        .map(|_| {
            let (ns, jail, state) = (w.ns.name.clone(), w.jail.clone(), w.state.clone());
            std::thread::spawn(move || {
                let out = std::process::Command::new("ip")
                    .args(["netns", "exec", &ns])
                    .arg(tracer_tests::tracer_bin())
                    .args(["guard", "ban", "sshd", "192.0.2.81", "--config", s(&jail), "--state", s(&state)])
                    .output()
                    .unwrap();
                (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
            })
        })
        .collect();
    let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(results.iter().all(|(c, _)| *c == Some(0)), "{results:?}");
    let bans = results.iter().filter(|(_, o)| o == "NOTICE  [sshd] Ban 192.0.2.81\n").count();
    let already = results.iter().filter(|(_, o)| o == "NOTICE  [sshd] 192.0.2.81 already banned\n").count();
    assert_eq!((bans, already), (1, 9), "{results:?}");
    assert!(g.wait_count("] 192.0.2.81 already banned", 9, SECS(5)), "{}", g.output());
    assert_eq!(g.count("] Ban 192.0.2.81"), 1, "{}", g.output());
    assert!(w.set().contains("192.0.2.81"));

    // status comes from the daemon: pid, source, firewall, consistent totals.
    let (code, out, _) = w.cli(&["status", "sshd"]);
    assert_eq!(code, 0);
    assert!(out.contains("   |- Currently banned:\t1\n   |- Total banned:\t1\n"), "{out}");
    assert!(
        out.contains(&format!("Daemon:\trunning (pid {pid}, up 0:00:"))
            && out.contains(&format!(", source {}, firewall nftables table inet tracer_guard)\n", w.log.display())),
        "{out}"
    );
    assert!(out.ends_with("Firewall errors:\tnone\n"), "{out}");
    let (_, out, _) = w.cli(&["status", "sshd", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["daemon"]["pid"], pid);
    assert_eq!(v["banned"], serde_json::json!(["192.0.2.81"]));

    // ignoreip: refused with a warning unless --force.
    let (code, out, err) = w.cli(&["ban", "sshd", "192.0.2.99"]);
    assert_eq!((code, out.as_str()), (2, ""), "{err}");
    assert!(err.contains("192.0.2.99 is exempt by ip") && err.contains("--force"), "{err}");
    assert!(!w.set().contains("192.0.2.99"));
    let (code, out, _) = w.cli(&["ban", "sshd", "192.0.2.99", "--force"]);
    assert_eq!((code, out.as_str()), (0, "NOTICE  [sshd] Ban 192.0.2.99\n"));
    assert!(w.set().contains("192.0.2.99"));

    // Only root controls the daemon: its socket is in a directory only root can enter.
    let run = std::fs::metadata("/run/tracer").unwrap();
    assert_eq!((run.uid(), run.mode() & 0o777), (0, 0o700));
    let out =
        w.ns.command("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(tracer_tests::tracer_bin())
            .args(["guard", "unban", "sshd", "192.0.2.81", "--config", s(&w.jail), "--state", s(&w.state)])
            .output()
            .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("permission denied: only root controls the guard"), "{err}");
    assert!(w.set().contains("192.0.2.81"), "still banned");

    let (code, out, _) = w.cli(&["unban", "sshd", "192.0.2.81"]);
    assert_eq!((code, out.as_str()), (0, "NOTICE  [sshd] Unban 192.0.2.81\n"));
    assert!(!w.set().contains("192.0.2.81"));
    g.expect("] Unban 192.0.2.81", SECS(5));
    let (st, out) = g.stop();
    assert!(st.success(), "{out}");
}

#[test]
fn without_a_daemon_a_ban_is_enforced_directly_or_refused() {
    let w = World::new("nodaemon", "bantime = 1h\n");
    let (code, out, err) = w.cli(&["ban", "sshd", "192.0.2.70"]);
    assert_eq!((code, out.as_str()), (1, ""), "{err}");
    assert!(err.contains("nothing would enforce the ban, so none was made"), "{err}");
    let (code, out, _) = w.cli(&["status", "sshd"]);
    assert_eq!(code, 0);
    assert!(out.contains("Currently banned:\t0\n") && out.contains("Daemon:\tnot running"), "{out}");

    // A daemon stopped with --keep-bans leaves its table: the ban goes there, and says so.
    let (st, out) = w.start(&["--keep-bans"]).stop();
    assert!(st.success(), "{out}");
    let (code, out, err) = w.cli(&["ban", "sshd", "192.0.2.70"]);
    assert_eq!((code, out.as_str()), (0, "NOTICE  [sshd] Ban 192.0.2.70\n"), "{err}");
    assert!(
        err.contains("no guard daemon runs this jail: the ban was put in nftables table inet tracer_guard directly"),
        "{err}"
    );
    assert!(w.set().contains("192.0.2.70"), "{}", w.set());
    let (_, out, _) = w.cli(&["status", "sshd"]);
    assert!(out.contains("   |- Currently banned:\t1\n   |- Total banned:\t1\n"), "{out}");
    // The next daemon restores it.
    let g = w.start(&["--keep-bans"]);
    g.expect("] Restore Ban 192.0.2.70", SECS(5));
    let (st, out) = g.stop();
    assert!(st.success(), "{out}");
    // unban without a daemon: from the state and the table left in place.
    let (code, out, err) = w.cli(&["unban", "sshd", "192.0.2.70"]);
    assert_eq!((code, out.as_str()), (0, "NOTICE  [sshd] Unban 192.0.2.70\n"), "{err}");
    assert!(err.contains("and in nftables table inet tracer_guard directly"), "{err}");
    assert!(!w.set().contains("192.0.2.70"), "{}", w.set());
}

#[test]
fn sighup_reloads_keeping_bans_and_survives_a_bad_config() {
    let w = World::new("hup", "bantime = 1h\nmaxretry = 5\n");
    let g = w.start(&[]);
    let (code, _, err) = w.cli(&["ban", "sshd", "192.0.2.90"]);
    assert_eq!(code, 0, "{err}");
    w.fail("192.0.2.91", 2);
    assert!(g.wait_count("] Found 192.0.2.91", 2, SECS(10)), "{}", g.output());

    w.write_jail("bantime = 1h\nmaxretry = 3\n");
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid_of(&g) as i32, libc::SIGHUP) };
    assert!(g.wait(|l| l.contains("Jail 'sshd' reloaded") && l.contains("maxretry: 3"), SECS(10)), "{}", g.output());
    w.fail("192.0.2.91", 1);
    g.expect("] Ban 192.0.2.91", SECS(10));
    let set = w.set();
    assert!(set.contains("192.0.2.90") && set.contains("192.0.2.91"), "ban kept over the reload: {set}");

    // A bad file: logged with FILE:LINE, the running configuration stays.
    std::fs::write(&w.jail, "[sshd]\nenabled = true\nmaxretry = five\n").unwrap();
    // SAFETY: as above.
    unsafe { libc::kill(pid_of(&g) as i32, libc::SIGHUP) };
    let want = format!("{}:3: maxretry: \"five\" is not a positive integer", w.jail.display());
    assert!(g.wait(|l| l.contains("ERROR") && l.contains(&want), SECS(10)), "{}", g.output());
    // (status itself needs a configuration that loads)
    w.write_jail("bantime = 1h\nmaxretry = 3\n");
    let (code, out, _) = w.cli(&["status", "sshd"]);
    assert_eq!(code, 0);
    assert!(out.contains("Currently banned:\t2\n") && out.contains("Daemon:\trunning"), "{out}");
    let (st, out) = g.stop();
    assert!(st.success(), "{out}");
}

#[test]
fn a_ten_year_ban_is_enforced_and_restored() {
    let w = World::new("tenyear", "bantime = 10y\n");
    let g = w.start(&[]);
    let (code, _, err) = w.cli(&["ban", "sshd", "192.0.2.100"]);
    assert_eq!(code, 0, "{err}");
    // nft's largest timeout (99 999 999 s); the daemon refreshes it while the ban lasts.
    assert!(w.set().contains("192.0.2.100 timeout 1157d9h46m39s"), "{}", w.set());
    let (st, out) = g.stop();
    assert!(st.success(), "{out}");
    let g = w.start(&[]);
    g.expect("] Restore Ban 192.0.2.100", SECS(5));
    assert!(w.set().contains("192.0.2.100 timeout 1157d9h46m39s"), "{}", w.set());
    let (code, out, _) = w.cli(&["status", "sshd"]);
    assert_eq!(code, 0);
    assert!(out.ends_with("Firewall errors:\tnone\n"), "{out}");
    let (st, out) = g.stop();
    assert!(st.success(), "{out}");
}

#[test]
fn a_corrupt_state_is_moved_aside_and_the_daemon_runs() {
    let w = World::new("corrupt", "bantime = 1h\n");
    std::fs::write(&w.state, b"this is not an SQLite database, it is what a crash left\n".repeat(100)).unwrap();
    let g = w.start(&[]);
    assert!(g.wait(|l| l.contains("WARNING") && l.contains("moved aside to"), SECS(5)), "{}", g.output());
    let aside: Vec<_> = std::fs::read_dir(w.dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("state.sqlite3.corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1);
    let (code, _, err) = w.cli(&["ban", "sshd", "192.0.2.110"]);
    assert_eq!(code, 0, "{err}");
    let (st, out) = g.stop();
    assert!(st.success(), "{out}");
}

#[test]
fn an_interpolation_bomb_is_exit_2_with_file_and_line() {
    let ns = Netns::new("bomb");
    let dir = TempDir::new("bomb");
    let mut text = String::from("[DEFAULT]\n");
    let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
    for p in names.windows(2) {
        text.push_str(&format!("{} = {}\n", p[0], format!("%({})s", p[1]).repeat(12)));
    }
    text.push_str("i = 0123456789abcdef\n[sshd]\nenabled = true\nport = %(a)s\n");
    assert!(text.len() < 1024);
    let jail = dir.file("jail.local");
    std::fs::write(&jail, &text).unwrap();
    let t = std::time::Instant::now();
    let (code, out, err) = guard_cmd(Some(&ns), &["run", "--config", s(&jail), "--state", s(&dir.file("st.sqlite3"))]);
    assert_eq!((code, out.as_str()), (2, ""), "{err}");
    assert!(err.contains(&format!("{}:13: port: interpolation", jail.display())), "{err}");
    assert!(t.elapsed() < SECS(10), "{:?}", t.elapsed());
    assert!(!ns.ruleset().contains("tracer_guard"));
}

/// Debian's exim4 (exim4-daemon-light, installed by `cargo xtask setup`) configured for local
/// delivery only, and a mailbox user made for the test: returns the mailbox, emptied.
fn local_mailbox(user: &str) -> PathBuf {
    let conf = "/etc/exim4/update-exim4.conf.conf";
    let text = std::fs::read_to_string(conf).expect("exim4 is installed by `cargo xtask setup`");
    if !text.lines().any(|l| l == "dc_eximconfig_configtype='local'") {
        let text: String = text
            .lines()
            .map(|l| if l.starts_with("dc_eximconfig_configtype=") { "dc_eximconfig_configtype='local'" } else { l })
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(conf, text).unwrap();
        sh(&["update-exim4.conf"]);
    }
    if std::process::Command::new("id").arg(user).output().is_ok_and(|o| !o.status.success()) {
        sh(&["useradd", "--system", "--home-dir", &format!("/var/lib/{user}"), "--shell", "/usr/sbin/nologin", user]);
    }
    // exim's local delivery runs in the user's home.
    let home = sh(&["getent", "passwd", user]).split(':').nth(5).unwrap().to_string();
    std::fs::create_dir_all(&home).unwrap();
    sh(&["chown", user, &home]);
    let mbox = PathBuf::from(format!("/var/mail/{user}"));
    let _ = std::fs::remove_file(&mbox);
    mbox
}

#[test]
fn a_ban_mail_arrives_in_the_local_mailbox_and_client_text_stays_in_the_body() {
    let mbox = local_mailbox("tgmail");
    let w = World::new(
        "mail",
        "maxretry = 2\nbantime = 1h\naction = %(action_mwl)s\ndestemail = tgmail@localhost\nsender = guard@<fq-hostname>\n",
    );
    let g = w.start(&[]);
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).open(&w.log).unwrap();
        // A user name with a carriage return and a would-be header.
        f.write_all(
            b"Nov 27 13:22:29 host sshd[4100]: Failed password for invalid user x\rX-Injected: yes from 192.0.2.120 port 51 ssh2\n",
        )
        .unwrap();
    }
    w.fail("192.0.2.120", 1);
    g.expect("] Ban 192.0.2.120", SECS(10));
    // whois has no network in the namespace: it fails fast and the mail still goes.
    assert!(
        g.wait(|l| l.contains("Ban mail for 192.0.2.120 sent to tgmail@localhost"), SECS(60)),
        "{}\n{}",
        g.output(),
        g.stderr()
    );
    let lines = g.lines.lock().unwrap().clone();
    let ban = lines.iter().position(|l| l.ends_with("] Ban 192.0.2.120")).unwrap();
    let sent = lines.iter().position(|l| l.contains("Ban mail for 192.0.2.120 sent")).unwrap();
    assert!(ban < sent, "the ban comes first: {lines:?}");

    // exim delivers in the background: wait for the mailbox.
    let t = std::time::Instant::now();
    let mail = loop {
        let m = std::fs::read_to_string(&mbox).unwrap_or_default();
        if m.contains("\n\nRegards,") || t.elapsed() > SECS(30) {
            break m;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim().to_string();
    let (headers, body) = mail.split_once("\n\n").unwrap_or_else(|| panic!("no mail in {}: {mail:?}", mbox.display()));
    assert!(headers.contains(&format!("\nSubject: [Fail2Ban] sshd: banned 192.0.2.120 from {host}\n")), "{headers}");
    assert!(headers.contains("\nTo: tgmail@localhost\n"), "{headers}");
    assert!(headers.contains(&format!("\nFrom: \"Fail2Ban\" <guard@{host}>\n")), "{headers}");
    assert!(!headers.contains("X-Injected"), "{headers}");
    assert!(
        body.contains("The IP 192.0.2.120 has just been banned by tracer guard after\n2 attempts against sshd."),
        "{body}"
    );
    assert!(body.contains("Here is more information about 192.0.2.120 :"), "{body}");
    assert!(body.contains("Lines containing failures of 192.0.2.120 (max 2)"), "{body}");
    assert!(
        // The follower turns a lone CR inside a line into a space (no line ends there); the
        // mail escapes any control byte that still reaches it (tracer-guard's mail tests).
        body.contains("Failed password for invalid user x X-Injected: yes from 192.0.2.120 port 51 ssh2"),
        "{body}"
    );
    assert!(body.contains("Failed password for root from 192.0.2.120 port 50 ssh2"), "{body}");

    // A ban by hand, and SIGTERM at once: the daemon lets the mail go before it exits.
    let (code, _, err) = w.cli(&["ban", "sshd", "192.0.2.121"]);
    assert_eq!(code, 0, "{err}");
    let (st, out) = g.stop();
    assert!(st.success(), "{out}");
    assert!(out.contains("Ban mail for 192.0.2.121 sent to tgmail@localhost"), "{out}");
    let t = std::time::Instant::now();
    while !std::fs::read_to_string(&mbox).unwrap_or_default().contains("banned 192.0.2.121") {
        assert!(t.elapsed() < SECS(30), "second mail never arrived");
        std::thread::sleep(Duration::from_millis(200));
    }
    let mail = std::fs::read_to_string(&mbox).unwrap();
    assert!(
        mail.contains("The IP 192.0.2.121 has just been banned by hand (tracer guard ban) in the sshd jail."),
        "{mail}"
    );
}

#[test]
fn a_killed_daemon_leaves_no_stale_lock() {
    let w = World::new("killed", "bantime = 1h\n");
    let mut g = w.start(&[]);
    g.proc.kill_tree(); // SIGKILL: no cleanup at all
    // Its socket file is left, but nobody listens: the CLI works without a daemon.
    let (code, out, err) = w.cli(&["ban", "sshd", "192.0.2.130"]);
    assert_eq!((code, out.as_str()), (0, "NOTICE  [sshd] Ban 192.0.2.130\n"), "{err}");
    assert!(err.contains("no guard daemon runs this jail"), "{err}");
    // The kernel released the lock: a new daemon starts and restores the ban.
    let g = w.start(&[]);
    g.expect("] Restore Ban 192.0.2.130", SECS(5));
    let (code, out, _) = w.cli(&["status", "sshd"]);
    assert_eq!(code, 0);
    assert!(out.contains(&format!("Daemon:\trunning (pid {}", pid_of(&g))), "{out}");
    let (st, out) = g.stop();
    assert!(st.success(), "{out}");
}
