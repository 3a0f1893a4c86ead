//! Enforcement against the real nftables and iptables, inside network namespaces made here
//! (the host's firewall is never touched).
// Every test crate gets the whole dev-dependency list; each uses part of it.
#![allow(unused_crate_dependencies)]

mod common;

use std::net::{IpAddr, SocketAddr, TcpListener};
use std::time::Duration;

use common::{GuardNetns, Netns, TempDir};
use tracer_guard::config::parse_str;
use tracer_guard::nft::NftFirewall;
use tracer_guard::offline::{ban_via_state, status_via_state, unban_via_state};
use tracer_guard::ports::PortSpec;
use tracer_guard::{Event, Guard, GuardOptions, JailConfig, Offline, Origin, now};

fn cfg(text: &str) -> JailConfig {
    let c = parse_str(&format!("[sshd]\nenabled = true\nignoreself = false\n{text}"), "jail.local").unwrap();
    c.jail
}

fn opts(ns: &Netns, dir: &TempDir) -> GuardOptions {
    GuardOptions { state_path: dir.path().join("guard.sqlite3"), runner: ns.runner(), ..Default::default() }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn nft(ns: &Netns) -> NftFirewall {
    NftFirewall::new(ns.runner(), "tracer_guard", "sshd", PortSpec::ssh())
}

fn bans(ev: &[Event]) -> Vec<IpAddr> {
    ev.iter().filter(|&e| matches!(e, Event::Ban { .. })).map(|e| e.ip()).collect()
}

#[test]
fn nft_bans_carry_timeouts_and_expire_in_the_kernel() {
    let ns = Netns::new("nft");
    let dir = TempDir::new("nft");
    let c = cfg("maxretry = 2\nbantime = 2\n");
    let (mut g, restored) = Guard::start(&c, opts(&ns, &dir), now()).unwrap();
    assert!(restored.is_empty());
    let ruleset = ns.exec(&["nft", "list", "table", "inet", "tracer_guard"]);
    assert!(ruleset.contains("type ipv4_addr") && ruleset.contains("type ipv6_addr"), "{ruleset}");
    assert!(ruleset.contains("flags timeout"), "{ruleset}");
    assert!(ruleset.contains("hook input"), "{ruleset}");
    assert!(ruleset.contains("tcp dport 22 ip saddr @sshd_v4 reject"), "{ruleset}");
    assert!(ruleset.contains("tcp dport 22 ip6 saddr @sshd_v6 reject"), "{ruleset}");

    let t = now();
    let mut ev = Vec::new();
    for l in [
        "Nov 24 13:22:29 host sshd[1]: Failed password for root from 192.0.2.7 port 1 ssh2",
        "Nov 24 13:22:29 host sshd[2]: Invalid user x from 192.0.2.7 port 2",
        "Nov 24 13:22:29 host sshd[3]: Failed password for root from 2001:db8::7 port 1 ssh2",
        "Nov 24 13:22:29 host sshd[4]: Failed password for root from ::ffff:198.51.100.9 port 1 ssh2",
        "Nov 24 13:22:29 host sshd[3]: Failed password for root from 2001:db8::7 port 1 ssh2",
    ] {
        ev.extend(g.feed(l.as_bytes(), Origin::Text, t).unwrap());
    }
    assert_eq!(bans(&ev), vec![ip("192.0.2.7"), ip("2001:db8::7")]);
    let els = nft(&ns).elements().unwrap();
    assert_eq!(els.len(), 2, "{els:?}");
    for e in &els {
        assert_eq!(e.timeout, Some(2), "{e:?}");
    }
    let st = g.status();
    assert_eq!((st.currently_banned, st.total_banned, st.total_failed, st.currently_failed), (2, 2, 5, 1));
    assert!(st.to_string().contains("Banned IP list:\t192.0.2.7 2001:db8::7"), "{st}");

    // No tick: the kernel lifts the bans by itself.
    std::thread::sleep(Duration::from_millis(3200));
    assert!(nft(&ns).elements().unwrap().is_empty());
    let ev = g.tick(now()).unwrap();
    assert_eq!(ev.len(), 2, "{ev:?}");
    assert!(ev.iter().all(|e| matches!(e, Event::Unban { .. })));

    // Permanent ban: element without timeout.
    let ev = g.ban(ip("203.0.113.5"), now()).unwrap();
    assert!(matches!(ev, Event::Ban { bantime: 2, .. }));
    g.stop(now()).unwrap();
    assert!(ns.try_exec(&["nft", "list", "table", "inet", "tracer_guard"]).is_err(), "stop removes the table");

    let c = cfg("bantime = -1\n");
    let (mut g, restored) = Guard::start(&c, opts(&ns, &TempDir::new("perm")), now()).unwrap();
    assert!(restored.is_empty());
    g.ban(ip("203.0.113.6"), now()).unwrap();
    let els = nft(&ns).elements().unwrap();
    assert_eq!((els[0].ip, els[0].timeout), (ip("203.0.113.6"), None));
    g.stop(now()).unwrap();
}

#[test]
fn nft_ban_rejects_real_traffic_only_from_the_banned_source() {
    let srv = Netns::new("srv");
    let cli = Netns::new("cli");
    srv.veth(&cli, &["10.231.7.1/24"], &["10.231.7.2/24", "10.231.7.3/24"]);
    // A listener on port 22 in the server namespace.
    let listener: TcpListener = srv.run_in(|| TcpListener::bind("10.231.7.1:22").unwrap());
    listener.set_nonblocking(true).unwrap();
    let dst: SocketAddr = "10.231.7.1:22".parse().unwrap();
    assert_eq!(cli.connect(ip("10.231.7.2"), dst), Ok(()));

    let dir = TempDir::new("traffic");
    let c = cfg("maxretry = 1\nbantime = 1h\n");
    let (mut g, _) = Guard::start(&c, opts(&srv, &dir), now()).unwrap();
    let ev = g.feed(b"Invalid user admin from 10.231.7.2 port 40000", Origin::Text, now()).unwrap();
    assert_eq!(bans(&ev), vec![ip("10.231.7.2")]);
    assert_eq!(cli.connect(ip("10.231.7.2"), dst), Err(std::io::ErrorKind::ConnectionRefused));
    assert_eq!(cli.connect(ip("10.231.7.3"), dst), Ok(()));
    g.unban(ip("10.231.7.2"), now()).unwrap();
    assert_eq!(cli.connect(ip("10.231.7.2"), dst), Ok(()));
    g.stop(now()).unwrap();
}

#[test]
fn iptables_multiport_chain_like_fail2ban() {
    let ns = Netns::new("ipt");
    let dir = TempDir::new("ipt");
    let c = cfg("banaction = iptables-multiport\nport = ssh,2222\nmaxretry = 1\nbantime = 1\n");
    let (mut g, _) = Guard::start(&c, opts(&ns, &dir), now()).unwrap();
    let chain = ns.exec(&["iptables", "-w", "-S", "f2b-sshd"]);
    assert!(chain.contains("-A f2b-sshd -j RETURN"), "{chain}");
    let input = ns.exec(&["iptables", "-w", "-S", "INPUT"]);
    assert!(input.contains("-A INPUT -p tcp -m multiport --dports 22,2222 -j f2b-sshd"), "{input}");
    assert!(ns.exec(&["ip6tables", "-w", "-S", "INPUT"]).contains("--dports 22,2222 -j f2b-sshd"));

    let t = now();
    g.feed(b"sshd[5]: Failed password for root from 192.0.2.7 port 1 ssh2", Origin::Text, t).unwrap();
    g.feed(b"sshd[6]: Failed password for root from 2001:db8::7 port 1 ssh2", Origin::Text, t).unwrap();
    let chain = ns.exec(&["iptables", "-w", "-S", "f2b-sshd"]);
    assert!(chain.contains("-A f2b-sshd -s 192.0.2.7/32 -j REJECT --reject-with icmp-port-unreachable"), "{chain}");
    let lines: Vec<&str> = chain.lines().collect();
    assert_eq!(lines.last(), Some(&"-A f2b-sshd -j RETURN"), "ban rules go before RETURN");
    let chain6 = ns.exec(&["ip6tables", "-w", "-S", "f2b-sshd"]);
    assert!(
        chain6.contains("-A f2b-sshd -s 2001:db8::7/128 -j REJECT --reject-with icmp6-port-unreachable"),
        "{chain6}"
    );

    // iptables has no timeouts: the daemon's tick lifts the bans.
    std::thread::sleep(Duration::from_millis(1100));
    assert!(ns.exec(&["iptables", "-w", "-S", "f2b-sshd"]).contains("192.0.2.7"), "still there before tick");
    let ev = g.tick(now() + 1).unwrap();
    assert_eq!(ev.len(), 2, "{ev:?}");
    assert!(!ns.exec(&["iptables", "-w", "-S", "f2b-sshd"]).contains("192.0.2.7"));
    assert!(!ns.exec(&["ip6tables", "-w", "-S", "f2b-sshd"]).contains("2001:db8::7"));

    g.ban(ip("198.51.100.1"), now()).unwrap();
    g.stop(now()).unwrap();
    assert!(ns.try_exec(&["iptables", "-w", "-S", "f2b-sshd"]).is_err(), "chain removed");
    assert!(ns.try_exec(&["ip6tables", "-w", "-S", "f2b-sshd"]).is_err(), "chain removed");
    assert!(!ns.exec(&["iptables", "-w", "-S", "INPUT"]).contains("f2b-sshd"));
    assert!(!ns.exec(&["ip6tables", "-w", "-S", "INPUT"]).contains("f2b-sshd"));
}

#[test]
fn state_restores_bans_with_remaining_time() {
    let ns = Netns::new("restore");
    let dir = TempDir::new("restore");
    let c = cfg("maxretry = 1\nbantime = 1h\nbantime.increment = true\n");
    let t0 = now();
    let (mut g, _) = Guard::start(&c, opts(&ns, &dir), t0).unwrap();
    g.feed(b"Invalid user x from 192.0.2.7 port 1", Origin::Text, t0 - 100).unwrap();
    g.ban(ip("2001:db8::9"), t0).unwrap();
    drop(g); // as if the daemon died: no stop

    let (mut g2, events) = Guard::start(&c, opts(&ns, &dir), t0).unwrap();
    let lines: Vec<String> = events.iter().map(|e| e.log_line("sshd").to_string()).collect();
    assert_eq!(lines, ["NOTICE  [sshd] Restore Ban 192.0.2.7", "NOTICE  [sshd] Restore Ban 2001:db8::9"]);
    let els = nft(&ns).elements().unwrap();
    let v4 = els.iter().find(|e| e.ip == ip("192.0.2.7")).unwrap();
    assert_eq!(v4.timeout, Some(3500), "remaining time, not the full bantime");
    assert!(g2.jail().is_banned(&ip("2001:db8::9")));
    // Repeat offender: the second ban doubles (bantime.increment).
    g2.unban(ip("192.0.2.7"), t0).unwrap();
    let ev = g2.feed(b"Invalid user x from 192.0.2.7 port 1", Origin::Text, t0).unwrap();
    assert!(ev.iter().any(|e| matches!(e, Event::Ban { bantime: 7200, count: 2, .. })), "{ev:?}");
    g2.stop(t0).unwrap();

    // After a clean stop the bans are still restored on the next start.
    let (g3, events) = Guard::start(&c, opts(&ns, &dir), t0 + 10).unwrap();
    assert_eq!(events.len(), 2);
    let st = g3.status();
    assert_eq!(st.currently_banned, 2);
    g3.stop(t0 + 10).unwrap();
}

#[test]
fn ban_and_unban_from_another_process_reach_the_daemon() {
    let ns = Netns::new("ctl");
    let dir = TempDir::new("ctl");
    let c = cfg("bantime = 1h\n");
    let o = opts(&ns, &dir);
    let t = now();
    let (mut g, _) = Guard::start(&c, o.clone(), t).unwrap();
    let e = ban_via_state(&c, &o, ip("192.0.2.50"), t).unwrap();
    assert!(matches!(e, Offline::Applied { event: Event::Ban { bantime: 3600, .. }, .. }), "{e:?}");
    assert!(nft(&ns).elements().unwrap().iter().any(|e| e.ip == ip("192.0.2.50")), "applied at once");
    let ev = g.tick(t + 1).unwrap();
    assert_eq!(bans(&ev), vec![ip("192.0.2.50")], "daemon adopts it");
    assert_eq!(status_via_state(&c, &o, t + 1).unwrap().banned, vec![ip("192.0.2.50")]);
    assert_eq!(
        unban_via_state(&c, &o, ip("192.0.2.50"), t + 2).unwrap(),
        (Some(Event::Unban { ip: ip("192.0.2.50") }), Some("nftables table inet tracer_guard".into()))
    );
    assert!(nft(&ns).elements().unwrap().is_empty());
    let ev = g.tick(t + 3).unwrap();
    assert_eq!(ev, vec![Event::Unban { ip: ip("192.0.2.50") }]);
    g.stop(t + 3).unwrap();
}

#[test]
fn bad_config_is_an_error_and_changes_no_firewall() {
    let ns = Netns::new("bad");
    let dir = TempDir::new("bad");
    let before = (ns.exec(&["nft", "list", "ruleset"]), ns.exec(&["iptables", "-w", "-S"]));
    for (text, line, key) in [
        ("[DEFAULT]\nbanaction = iptables-multiport\n[sshd]\nenabled = true\nmaxretry = five\n", 5, "maxretry"),
        ("[sshd]\nenabled = true\nbantime = 10x\n", 3, "bantime"),
        ("[sshd]\nenabled = true\nignoreip = 127.0.0.1/8 ::1 300.1.1.1\n", 3, "ignoreip"),
    ] {
        let path = dir.path().join("jail.local");
        std::fs::write(&path, text).unwrap();
        let err = tracer_guard::config::load(&[&path]).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with(&format!("{}:{line}: {key}: ", path.display())), "{msg}");
    }
    // The seed's sample loads as-is and unimplemented keys only warn.
    let path = dir.path().join("jail.local");
    std::fs::write(
        &path,
        "[DEFAULT]\nbantime = 3600\nbanaction = iptables-multiport\naction = %(action_mwl)s\n[sshd]\nenabled = true\n",
    )
    .unwrap();
    let c = tracer_guard::config::load(&[path]).unwrap();
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    assert!(c.jail.mail.is_some(), "action_mwl mails");
    let after = (ns.exec(&["nft", "list", "ruleset"]), ns.exec(&["iptables", "-w", "-S"]));
    assert_eq!(before, after);
    let _ = dir;
}
