//! fail2ban's prefix forms, host names, and the auth_log forms (`ssh1` tails, key info).

use std::net::IpAddr;

use super::*;

fn ip(s: &str) -> Option<IpAddr> {
    Some(s.parse().unwrap())
}

fn hit(line: &str) -> Hit {
    parse_line(line, Mode::Aggressive).and_then(|p| p.hit).unwrap_or_else(|| panic!("no hit: {line:?}"))
}

#[test]
fn fail2ban_prefix_forms() {
    let m = "Failed password for root from 192.0.2.7 port 4242 ssh2";
    let cases: &[(String, Option<u32>)] = &[
        (format!("Mar  3 00:17:22 [sshd]: {m}"), None),
        (format!("Jun 25 23:53:34 [sshd] {m}"), None),
        (format!("Jun 25 23:53:34 host (sshd) {m}"), None),
        (format!("Feb 7 16:01:07 linux-m899 sshd[5106]: {m}"), Some(5106)),
        (format!("Mar 29 05:20:09 dusky sshd[19558]: [ID 800047 auth.info] {m}"), Some(19558)),
        (format!("Nov 24 13:22:29 <auth.info> host sshd[12]: {m}"), Some(12)),
        (format!("Nov 24 13:22:29 host sshd(pam_unix)[12]: {m}"), Some(12)),
        (format!("Nov 24 13:22:29 host @vserver_web sshd[12]: {m}"), Some(12)),
        (format!("Nov 24 13:22:29 host sshd-session[12]: {m}"), Some(12)),
        (format!("2026-11-24 13:22:29 host sshd[12]: {m}"), Some(12)),
        (format!("2026-11-24T13:22:29+0100 host sshd[12]: {m}"), Some(12)),
        (format!("srv sshd[12]: {m}"), Some(12)),
        (format!("Fri 2026-11-27 13:22:29 UTC srv sshd[12]: {m}"), Some(12)),
        (format!("1764249749.123456 srv sshd[12]: {m}"), Some(12)),
        (format!("[  123.456789] srv sshd[12]: {m}"), Some(12)),
        (format!("Nov 27 13:22:29.123456 srv sshd[12]: {m}"), Some(12)),
        (format!("srv sshd[12]: kernel: [  970.699397] {m}"), Some(12)),
        (format!("srv sshd[12]: kernel:[12970.699398]: {m}"), Some(12)),
        (format!("<38>1 2026-11-24T13:22:29Z h sshd 12 - [a b=\"] [x] \\\" y\"][c@1 d=\"e\"] {m}"), Some(12)),
        (format!("<38>1 2026-11-24T13:22:29Z h sshd-session 12 ID47 - \u{feff}{m}"), Some(12)),
    ];
    for (l, pid) in cases {
        let p = parse_line(l, Mode::Normal).unwrap_or_else(|| panic!("{l}"));
        assert_eq!(p.pid, *pid, "{l}");
        assert_eq!(p.hit.map(|h| h.addr), Some(ip("192.0.2.7")), "{l}");
    }
    // Other programs' lines, whatever their text.
    for l in [
        format!("Nov 24 13:22:29 host cron[1]: {m}"),
        format!("Nov 24 13:22:29 [cron]: {m}"),
        format!("Nov 24 13:22:29 sudo[1]: {m}"),
        format!("srv sudo[1]: {m}"),
        format!("Nov 24 13:22:29 host sshdx[1]: {m}"),
        format!("<38>1 2026-11-24T13:22:29Z h cron 1 - [a b=\"sshd\"] {m}"),
    ] {
        assert!(parse_line(&l, Mode::Normal).and_then(|p| p.hit).is_none(), "{l}");
    }
}

#[test]
fn host_names_where_fail2ban_takes_hosts() {
    for (l, name) in [
        ("Failed password for root from example.com port 22 ssh2", "example.com"),
        ("error: PAM: Authentication failure for stefanor from Example.COM", "example.com"),
        ("error: PAM: authentication error for james from mail.example.com via 192.168.1.201", "mail.example.com"),
        ("User root from example.com not allowed because not listed in AllowUsers", "example.com"),
        ("Invalid user x from host-1.example port 22", "host-1.example"),
    ] {
        let h = hit(l);
        assert_eq!((h.addr, h.host.as_deref()), (None, Some(name)), "{l}");
    }
    // fail2ban's <ADDR> forms take addresses only.
    assert!(parse_line("Connection closed by example.com port 1 [preauth]", Mode::Ddos).unwrap().hit.is_none());
}

#[test]
fn auth_log_forms() {
    let cases = [
        // ssh1 tails and ruser after the address.
        ("Failed password for dan from 192.0.2.7 port 45416 ssh1", ip("192.0.2.7")),
        ("Failed password for user from 192.0.2.7 port 20000 ssh1: ruser from 203.0.113.9", ip("192.0.2.7")),
        ("Failed rhosts-rsa for root from 192.0.2.7 port 1 ssh1: ruser x from 203.0.113.9", ip("192.0.2.7")),
        // Hostbased for an existing account: the client strings come after the address.
        (
            "Failed hostbased for root from 192.0.2.7 port 57044 ssh2: ED25519 SHA256:abc, client user \"u\", client host \"h from 203.0.113.9 port 22 ssh2: a b:\"",
            ip("192.0.2.7"),
        ),
        // A user name with " from " and no INFO: sshd's own tail is the end of the line.
        ("Failed password for invalid user from 203.0.113.9 from 192.0.2.7 port 58946 ssh2", ip("192.0.2.7")),
        (
            "Failed password for invalid user test from 203.0.113.9 port 55555 ssh2 from 192.0.2.7 port 58946 ssh2",
            ip("192.0.2.7"),
        ),
        // Both sides client text: no address from the text (the session's is used).
        (
            "Failed password for invalid user test from 192.0.2.7 port 58946 ssh2: from 203.0.113.9 port 55555 ssh2",
            None,
        ),
        ("Failed password for invalid user a from 203.0.113.9 port 1 ssh2: x from 192.0.2.7 port 2 ssh2", None),
        // No sshd tail after the only " from ": not sshd's line.
        ("Failed password for x from 192.0.2.7 port 22 ssh2 extra", None),
    ];
    for (l, want) in cases {
        let got = parse_line(l, Mode::Normal).and_then(|p| p.hit).and_then(|h| h.addr);
        assert_eq!(got, want, "{l}");
    }
    let h = hit("Failed publickey for invalid user git from 192.0.2.7 port 1 ssh2: RSA SHA256:x");
    assert_eq!((h.role, h.user.as_deref()), (Role::Failure, Some("git")));
    // PAM: the client's user= comes last; a second rhost= means client text before it.
    let h = hit("pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser=r rhost=192.0.2.7");
    assert_eq!((h.addr, h.user.as_deref()), (ip("192.0.2.7"), Some("r")));
    let h = hit(
        "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser=x rhost=203.0.113.9 rhost=192.0.2.7",
    );
    assert_eq!(h.addr, None);
    // Closed by an account whose name holds an address: read from the end.
    let h = hit("Connection closed by authenticating user test 127.0.0.1 192.0.2.7 port 46039 [preauth]");
    assert_eq!(h.addr, ip("192.0.2.7"));
    let h = hit("SSH: Server;Ltype: Kex;Remote: 192.0.2.7-1780;Enc: aes128-ctr;MAC: hmac-sha1;Comp: none [preauth]");
    assert_eq!((h.kind, h.role, h.addr), (Kind::ServerLtype, Role::Helper, ip("192.0.2.7")));
}
