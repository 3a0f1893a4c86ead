//! End to end with the real OpenSSH: sshd in one namespace, an attacker using sshpass in
//! another over a veth pair; sshd's stderr lines feed the Guard, and the attacker's next TCP
//! connect is rejected by nftables while another address still gets through.
// Every test crate gets the whole dev-dependency list; each uses part of it.
#![allow(unused_crate_dependencies)]

mod common;

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{GuardNetns, Netns, TempDir};
use tracer_guard::config::parse_str;
use tracer_guard::{Event, Guard, GuardOptions, Origin, now};

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn sshpass_attacker_is_banned_by_nftables() {
    let srv = Netns::new("sshd");
    let cli = Netns::new("att");
    srv.veth(&cli, &["10.231.9.1/24"], &["10.231.9.2/24", "10.231.9.3/24"]);
    let dir = TempDir::new("sshd");
    let key = dir.path().join("host_ed25519");
    tracer_tests::netns::sh(&["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key.to_str().unwrap()]);
    let conf = dir.path().join("sshd_config");
    std::fs::write(
        &conf,
        format!(
            "Port 2222\nListenAddress 10.231.9.1\nHostKey {}\nPidFile {}\nPasswordAuthentication yes\n\
             KbdInteractiveAuthentication no\nPubkeyAuthentication no\nUsePAM no\nLogLevel VERBOSE\n\
             MaxAuthTries 6\nMaxStartups 100\n",
            key.display(),
            dir.path().join("sshd.pid").display()
        ),
    )
    .unwrap();
    std::fs::create_dir_all("/run/sshd").unwrap();
    let mut child = Command::new("ip")
        .args(["netns", "exec", &srv.name, "/usr/sbin/sshd", "-D", "-e", "-f", conf.to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let _sshd = Killed(child);
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).split(b'\n') {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });

    let attacker: IpAddr = "10.231.9.2".parse().unwrap();
    let other: IpAddr = "10.231.9.3".parse().unwrap();
    let dst: SocketAddr = "10.231.9.1:2222".parse().unwrap();
    // Wait for sshd to listen.
    let t = Instant::now();
    while cli.connect(other, dst).is_err() {
        assert!(t.elapsed() < Duration::from_secs(10), "sshd did not start");
        std::thread::sleep(Duration::from_millis(100));
    }

    let c = parse_str(
        "[sshd]\nenabled = true\nport = 2222\nmaxretry = 3\nbantime = 1h\nignoreself = false\n",
        "jail.local",
    )
    .unwrap();
    let opts =
        GuardOptions { state_path: dir.path().join("guard.sqlite3"), runner: srv.runner(), ..Default::default() };
    let (mut guard, _) = Guard::start(&c.jail, opts, now()).unwrap();

    let mut seen = Vec::new();
    let mut banned = false;
    for _attempt in 0..4 {
        // One wrong password per connection; the exit status is expected to be non-zero.
        let _ = Command::new("ip")
            .args([
                "netns",
                "exec",
                &cli.name,
                "sshpass",
                "-p",
                "wrong-password",
                "ssh",
                "-F",
                "/dev/null",
                "-b",
                "10.231.9.2",
                "-p",
                "2222",
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "PreferredAuthentications=password",
                "-o",
                "NumberOfPasswordPrompts=1",
                "-o",
                "ConnectTimeout=5",
                "-o",
                "LogLevel=ERROR",
                "nosuchuser@10.231.9.1",
                "true",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let until = Instant::now() + Duration::from_secs(3);
        while let Ok(line) = rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
            let events = guard.feed(&line, Origin::Text, now()).unwrap();
            seen.push(String::from_utf8_lossy(&line).into_owned());
            if events.iter().any(|e| matches!(e, Event::Ban { ip, .. } if *ip == attacker)) {
                banned = true;
            }
            if banned {
                break;
            }
        }
        if banned {
            break;
        }
    }
    eprintln!("sshd said:\n{}", seen.join("\n"));
    assert!(banned, "no ban; sshd said:\n{}", seen.join("\n"));
    assert!(
        seen.iter().any(|l| l.starts_with("Failed password for invalid user nosuchuser from 10.231.9.2 port ")),
        "{seen:?}"
    );
    let st = guard.status();
    assert_eq!(st.banned, vec![attacker]);
    assert!(st.total_failed >= 3);

    assert_eq!(cli.connect(attacker, dst), Err(std::io::ErrorKind::ConnectionRefused));
    assert_eq!(cli.connect(other, dst), Ok(()));
    guard.stop(now()).unwrap();
    assert_eq!(cli.connect(attacker, dst), Ok(()), "stop lifts the ban");
}
