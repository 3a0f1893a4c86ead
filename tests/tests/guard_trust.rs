//! What the guard's kernel source trusts, tried by an attacker: a real OpenSSH sshd in one
//! network namespace, clients in another, `tracer guard run` in the server's. The address of
//! a failure is the peer of the connection socket the real sshd accepted (no client-chosen
//! string moves it), and only the root-owned sshd executable running as root is heard (no
//! program named sshd, and not the real binary run by an unprivileged user).
// Every test crate gets the whole dev-dependency list; each uses part of it.
#![allow(unused_crate_dependencies)]

mod guard_env;

use std::{
    io::ErrorKind::ConnectionRefused,
    net::{IpAddr, SocketAddr},
    os::unix::fs::PermissionsExt as _,
    path::Path,
    process::Stdio,
    time::Duration,
};

use guard_env::*;

const SECS: fn(u64) -> Duration = Duration::from_secs;

/// The address every forged line names.
const FORGED: &str = "198.51.100.23";

#[test]
fn hostbased_client_host_and_user_names_never_move_the_ban() {
    let _serial = serial();
    let (srv, cli, ip) = pair(181);
    let dir = TempDir::new("hostbased");
    let (attacker, victim, other) = (ip(2), ip(3), ip(4));
    let sshd = Sshd::start_with(
        &srv,
        &dir,
        &ip(1).to_string(),
        true,
        (&cli, other),
        "HostbasedAuthentication yes\nLogLevel VERBOSE\n",
    );
    // Three failures: the hostbased one, then `Invalid user` and `Failed password for invalid
    // user` of the password attempt (whose last message is logged as the connection closes).
    let jail = write(&dir, "jail.local", "[sshd]\nenabled = true\nport = 2222\nmaxretry = 3\nbantime = 1m\n");
    let guard = GuardProc::start(&srv, &dir, &["--config", s(&jail), "--state", s(&dir.file("st.sqlite3"))]);

    // sshd logs both strings verbatim after the real address: `Failed hostbased for nobody
    // from ATTACKER port N ssh2: ED25519 SHA256:..., client user "u from VICTIM ...", client
    // host "h from VICTIM port 22 ssh2: a b:"`.
    let chost = format!("h from {victim} port 22 ssh2: a b:");
    let cuser = format!("u from {victim} port 22 ssh2");
    hostbased(&cli, &dir, attacker, sshd.addr, "nobody", &chost, &cuser);
    // A user name that looks like sshd's own suffix.
    wrong_password(&cli, attacker, sshd.addr, &format!("x from {FORGED} port 22 ssh2"));
    guard.expect(&format!("] Ban {attacker}"), SECS(10));

    let err = sshd.stderr();
    assert!(err.contains(&format!("Failed hostbased for nobody from {attacker} port ")), "{err}");
    assert!(err.contains(&format!("client host \"{chost}\"")), "the forged strings reached sshd's log: {err}");
    assert!(err.contains(&format!("Invalid user x from {FORGED} port 22 ssh2 from {attacker} port ")), "{err}");
    let out = guard.output();
    assert_eq!(guard.count(&format!(" {victim}")), 0, "{out}\nsshd:\n{err}");
    assert_eq!(guard.count(FORGED), 0, "{out}\nsshd:\n{err}");
    assert_eq!(cli.connect(attacker, sshd.addr), Err(ConnectionRefused), "{out}\nsshd:\n{err}");
    assert_eq!(cli.connect(victim, sshd.addr), Ok(()), "the named address still connects");
}

/// Writes sshd's failure line three times to stderr and to syslog (ident `sshd`).
const FAKE_SSHD_PY: &str = r#"
import sys, syslog
line = "Failed password for root from 198.51.100.23 port 22 ssh2"
syslog.openlog("sshd", syslog.LOG_PID, syslog.LOG_AUTH)
for _ in range(3):
    sys.stderr.write(line + "\r\n")
    sys.stderr.flush()
    syslog.syslog(syslog.LOG_INFO, line)
"#;

#[test]
fn programs_named_sshd_and_sshd_run_by_nobody_cannot_cause_a_found() {
    let _serial = serial();
    let (srv, cli, ip) = pair(182);
    let dir = TempDir::new("fake");
    let (attacker, other) = (ip(2), ip(3));
    let _syslog = Syslog::start(&dir);
    let sshd = Sshd::start(&srv, &dir, &ip(1).to_string(), true, (&cli, other));
    let jail = write(&dir, "jail.local", "[sshd]\nenabled = true\nport = 2222\nmaxretry = 3\nbantime = 1m\n");
    let guard = GuardProc::start(&srv, &dir, &["--config", s(&jail), "--state", s(&dir.file("st.sqlite3"))]);

    // A program named sshd (its comm is "sshd"): a copy of python3, run by root and by nobody.
    let fake = dir.file("sshd");
    std::fs::copy("/usr/bin/python3", &fake).unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    for as_nobody in [false, true] {
        let mut cmd = if as_nobody {
            let mut c = srv.command("setpriv");
            c.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"]).arg(&fake);
            c
        } else {
            srv.command(&fake)
        };
        let out = cmd.args(["-c", FAKE_SSHD_PY]).stdin(Stdio::null()).output().unwrap();
        assert!(out.status.success(), "{out:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("from {FORGED} port 22")), "{out:?}");
    }

    // The real sshd binary run by nobody on another port: it accepts the connection itself and
    // logs the client's user name, which carries the forged line.
    let nb = dir.file("nobody");
    std::fs::create_dir(&nb).unwrap();
    std::fs::set_permissions(&nb, std::fs::Permissions::from_mode(0o777)).unwrap();
    let key = nb.join("host_ed25519");
    sh(&["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", s(&key)]);
    sh(&["chown", "nobody", s(&key)]);
    let conf = nb.join("sshd_config");
    std::fs::write(
        &conf,
        format!(
            "Port 2223\nListenAddress {}\nHostKey {}\nPidFile {}\nPasswordAuthentication yes\n\
             KbdInteractiveAuthentication no\nUsePAM no\nLogLevel INFO\n",
            ip(1),
            key.display(),
            nb.join("sshd.pid").display()
        ),
    )
    .unwrap();
    let nb_err = nb.join("sshd.stderr");
    let nb_child = srv
        .command("setpriv")
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "/usr/sbin/sshd", "-D", "-e", "-f", s(&conf)])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&nb_err).unwrap())
        .spawn()
        .unwrap();
    let _nb_proc = Proc(nb_child);
    let nb_addr = SocketAddr::new(ip(1), 2223);
    assert!(cli.wait_connect(other, nb_addr, Ok(()), SECS(10)), "{}", std::fs::read_to_string(&nb_err).unwrap());
    for _ in 0..3 {
        wrong_password(&cli, attacker, nb_addr, &format!("root from {FORGED} port 22 ssh2"));
    }
    let nb_log = std::fs::read_to_string(&nb_err).unwrap();
    assert!(
        nb_log.contains(&format!("Failed password for invalid user root from {FORGED} port 22 ssh2 from {attacker}")),
        "{nb_log}"
    );
    // Let anything captured arrive.
    std::thread::sleep(SECS(1));
    let out = guard.output();
    assert_eq!(guard.count(FORGED), 0, "{out}");
    assert_eq!(guard.count(&format!(" {attacker}")), 0, "nobody's sshd is not heard at all: {out}");

    // The capture was live all along: the real sshd's failures ban the attacker at the third.
    for _ in 0..3 {
        wrong_password(&cli, attacker, sshd.addr, "nobody");
    }
    guard.expect(&format!("] Ban {attacker}"), SECS(10));
    assert_eq!(guard.count(FORGED), 0, "{}", guard.output());
    assert_eq!(cli.connect(attacker, sshd.addr), Err(ConnectionRefused));
}

#[test]
fn untrusted_sshd_executables_are_refused_with_exit_2() {
    let _serial = serial();
    let srv = Netns::new("exe");
    let dir = TempDir::new("exe");
    let jail = write(&dir, "jail.local", "[sshd]\nenabled = true\nport = 2222\n");
    let copy = dir.file("sshd");
    std::fs::copy("/usr/sbin/sshd", &copy).unwrap();
    let run = |exe: &Path| {
        guard_cmd(
            Some(&srv),
            &["run", "--config", s(&jail), "--state", s(&dir.file("st.sqlite3")), "--sshd-exe", s(exe)],
        )
    };
    let before = srv.ruleset();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o775)).unwrap();
    let (code, _, err) = run(&copy);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&format!("sshd executable {}: writable by group or others", copy.display())), "{err}");
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    sh(&["chown", "nobody", s(&copy)]);
    let (code, _, err) = run(&copy);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&format!("sshd executable {}: owned by uid ", copy.display())), "{err}");
    let (code, _, err) = run(&dir.file("missing"));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("missing: No such file"), "{err}");
    assert_eq!(srv.ruleset(), before, "nothing half-applied");
}

#[test]
fn ipv6_peer_is_read_from_the_socket_and_banned() {
    let _serial = serial();
    let mid = std::process::id() % 250;
    let ip6 = |h: u8| -> IpAddr { format!("fd00:183:{mid}::{h}").parse().unwrap() };
    let srv = Netns::new("srv6");
    let cli = Netns::new("cli6");
    srv.veth(&cli, &[&format!("{}/64", ip6(1))], &[&format!("{}/64", ip6(2)), &format!("{}/64", ip6(3))]);
    let dir = TempDir::new("ipv6");
    let (attacker, other) = (ip6(2), ip6(3));
    let sshd = Sshd::start(&srv, &dir, &ip6(1).to_string(), true, (&cli, other));
    let jail = write(&dir, "jail.local", "[sshd]\nenabled = true\nport = 2222\nmaxretry = 3\nbantime = 1m\n");
    let guard = GuardProc::start(&srv, &dir, &["--config", s(&jail), "--state", s(&dir.file("st.sqlite3"))]);
    for _ in 0..3 {
        wrong_password(&cli, attacker, sshd.addr, "nobody");
    }
    guard.expect(&format!("] Ban {attacker}"), SECS(10));
    assert_eq!(cli.connect(attacker, sshd.addr), Err(ConnectionRefused));
    assert_eq!(cli.connect(other, sshd.addr), Ok(()));
    assert!(sshd.stderr().contains(&format!("Failed password for nobody from {attacker} port ")), "{}", sshd.stderr());
}

/// A stand-in sshd whose text always names 198.51.100.23: accepts `n` connections on
/// ADDR:PORT, then writes sshd's failure line three times to stderr, itself or (`exec`) from a
/// child that re-executes the same binary and inherits the sockets.
const PEER_PY: &str = r#"
import os, socket, sys
addr, port, n, how = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
LINE = "import os\nfor _ in range(3): os.write(2, b'Failed password for root from 198.51.100.23 port 22 ssh2\\r\\n')"
ls = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET)
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind((addr, port))
ls.listen(8)
print("ready", flush=True)
conns = [ls.accept()[0] for _ in range(n)]
ls.close()
if how == "exec":
    for c in conns:
        os.set_inheritable(c.fileno(), True)
    pid = os.fork()
    if pid == 0:
        os.execv(sys.executable, [sys.executable, "-c", LINE])
    os.waitpid(pid, 0)
else:
    exec(LINE)
"#;

#[test]
fn the_peer_is_the_accepted_socket_one_inherited_or_ambiguous_never_the_text() {
    let _serial = serial();
    let mid = std::process::id() % 250;
    let ip = |h: u8| -> IpAddr { format!("10.184.{mid}.{h}").parse().unwrap() };
    let srv = Netns::new("srvp");
    let cli = Netns::new("clip");
    let theirs: Vec<String> = (2..=5).map(|h| format!("{}/24", ip(h))).collect();
    srv.veth(&cli, &[&format!("{}/24", ip(1))], &theirs.iter().map(String::as_str).collect::<Vec<_>>());
    let dir = TempDir::new("peer");
    // The only trusted executable: a root-owned copy of python3 (the real sshd is not heard).
    let exe = dir.file("trusted-sshd");
    std::fs::copy("/usr/bin/python3", &exe).unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    let jail = write(&dir, "jail.local", "[sshd]\nenabled = true\nport = 2224\nmaxretry = 3\nbantime = 1m\n");
    let guard = GuardProc::start(
        &srv,
        &dir,
        &["--config", s(&jail), "--state", s(&dir.file("st.sqlite3")), "--sshd-exe", s(&exe)],
    );
    let at = SocketAddr::new(ip(1), 2224);
    let serve = |sources: &[IpAddr], how: &str| {
        let mut child = srv
            .command(&exe)
            .args(["-c", PEER_PY, &ip(1).to_string(), "2224", &sources.len().to_string(), how])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut ready = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut ready).unwrap();
        assert_eq!(ready, "ready\n");
        for src in sources {
            assert_eq!(cli.connect(*src, at), Ok(()));
        }
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stderr).matches(FORGED).count(), 3, "{out:?}");
    };

    // One accepted connection: its peer, whatever the text says.
    serve(&[ip(2)], "self");
    guard.expect(&format!("] Ban {}", ip(2)), SECS(10));
    // Inherited through fork and exec, as sshd's socket reaches sshd -R and sshd-session.
    serve(&[ip(5)], "exec");
    guard.expect(&format!("] Ban {}", ip(5)), SECS(10));
    // Connections of two peers: not attributed, a warning each time.
    serve(&[ip(3), ip(4)], "self");
    assert!(guard.wait_count("holds connections of several peers", 3, SECS(10)), "{}", guard.output());
    let out = guard.output();
    assert_eq!(guard.count(&format!(" {}", ip(3))), 0, "{out}");
    assert_eq!(guard.count(&format!(" {}", ip(4))), 0, "{out}");
    assert_eq!(guard.count(FORGED), 0, "{out}");
    assert_eq!(guard.count(&format!("Found {} ", ip(2))), 3, "{out}");
}

#[test]
fn a_replaced_sshd_binary_is_trusted_at_once_and_a_writable_one_no_more() {
    let _serial = serial();
    let (srv, cli, ip) = pair(185);
    let dir = TempDir::new("upgrade");
    let (a, b, c) = (ip(2), ip(3), ip(4));
    let bin = dir.file("sbin");
    std::fs::create_dir(&bin).unwrap();
    let exe = bin.join("sshd");
    let install = || {
        // As dpkg does: a new file renamed over the old one (a new inode).
        let new = bin.join("sshd.dpkg-new");
        std::fs::copy("/usr/sbin/sshd", &new).unwrap();
        std::fs::set_permissions(&new, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::rename(&new, &exe).unwrap();
    };
    install();
    let jail = write(&dir, "jail.local", "[sshd]\nenabled = true\nport = 2222\nmaxretry = 3\nbantime = 1m\n");
    let guard = GuardProc::start(
        &srv,
        &dir,
        &["--config", s(&jail), "--state", s(&dir.file("st.sqlite3")), "--sshd-exe", s(&exe)],
    );
    let start = || Sshd::start_exe(&srv, &dir, &ip(1).to_string(), true, (&cli, c), "", &exe);
    let sshd = start();
    for _ in 0..3 {
        wrong_password(&cli, a, sshd.addr, "nobody");
    }
    guard.expect(&format!("] Ban {a}"), SECS(10));
    drop(sshd);

    install();
    let note = format!("trusting the sshd executable {} (a new file)", exe.display());
    assert!(guard.wait(|l| l.contains(&note), SECS(5)), "{}", guard.output());
    let sshd = start();
    for _ in 0..3 {
        wrong_password(&cli, b, sshd.addr, "nobody");
    }
    guard.expect(&format!("] Ban {b}"), SECS(10));

    // Writable by anyone: what it runs could be anyone's code.
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o777)).unwrap();
    let refused = format!("sshd executable no longer trusted: sshd executable {}: writable", exe.display());
    assert!(guard.wait(|l| l.contains(&refused), SECS(5)), "{}", guard.output());
    for _ in 0..3 {
        wrong_password(&cli, c, sshd.addr, "nobody");
    }
    assert!(sshd.stderr().contains(&format!("Failed password for nobody from {c} port ")), "{}", sshd.stderr());
    std::thread::sleep(SECS(1));
    assert_eq!(guard.count(&format!(" {c}")), 0, "{}", guard.output());
}
