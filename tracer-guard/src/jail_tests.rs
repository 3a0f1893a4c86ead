//! Jail policy tests: counting, sessions, bans, usedns.

use super::*;
use crate::config::parse_str;

fn jail(extra: &str) -> Jail {
    let c = parse_str(&format!("[sshd]\nenabled = true\nignoreself = false\n{extra}"), "t").unwrap();
    Jail::new(JailSettings::from_config(&c.jail))
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn bans(ev: &[Event]) -> Vec<IpAddr> {
    ev.iter().filter(|&e| matches!(e, Event::Ban { .. })).map(|e| e.ip()).collect()
}

#[test]
fn bans_after_maxretry_within_findtime() {
    let mut j = jail("maxretry = 3\nfindtime = 60\n");
    let l = b"Failed password for root from 192.0.2.7 port 1 ssh2";
    assert!(bans(&j.feed(l, Origin::Text, 0)).is_empty());
    assert!(bans(&j.feed(l, Origin::Text, 10)).is_empty());
    // The first failure left the window: still two.
    assert!(bans(&j.feed(l, Origin::Text, 65)).is_empty());
    assert_eq!(j.failures_of(&ip("192.0.2.7")), 2);
    assert_eq!(bans(&j.feed(l, Origin::Text, 66)), vec![ip("192.0.2.7")]);
    assert!(j.is_banned(&ip("192.0.2.7")));
    assert_eq!(j.total_failed, 4);
    // Expiry.
    assert!(j.tick(66 + 599).is_empty());
    assert_eq!(j.tick(66 + 600), vec![Event::Unban { ip: ip("192.0.2.7") }]);
}

#[test]
fn pid_only_messages_take_the_sessions_address() {
    let mut j = jail("maxretry = 2\n");
    assert!(j.feed(b"sshd[77]: Connection from 192.0.2.7 port 5000 on 10.0.0.1 port 22", Origin::Text, 0).is_empty());
    let ev = j.feed(b"sshd[77]: Disconnecting: Too many authentication failures [preauth]", Origin::Text, 1);
    assert!(
        matches!(&ev[..], [Event::Found { ip: a, kind: Kind::TooManyAuthFailures, .. }] if *a == ip("192.0.2.7")),
        "{ev:?}"
    );
    // Kernel origin: the peer is the kernel's, whatever the text names.
    let k = |peer: &str| Origin::Kernel { pid: 88, peer: Some(ip(peer)) };
    let ev = j.feed(b"Failed password for root from 203.0.113.9 port 1 ssh2", k("198.51.100.1"), 2);
    assert_eq!(ev.first().map(Event::ip), Some(ip("198.51.100.1")));
    let ev = j.feed(b"User bob not allowed because account is locked", k("::ffff:198.51.100.1"), 3);
    assert_eq!(ev.first().map(Event::ip), Some(ip("198.51.100.1")));
    // No peer: counted as unattributed, charged to no one.
    let none = Origin::Kernel { pid: 89, peer: None };
    assert!(j.feed(b"Failed password for root from 203.0.113.9 port 1 ssh2", none, 4).is_empty());
    assert_eq!(j.unattributed, 1);
    assert_eq!(j.failures_of(&ip("203.0.113.9")), 0);
    // Unknown pid and no address: nothing.
    assert!(j.feed(b"sshd[99]: Disconnecting: Too many authentication failures", Origin::Text, 4).is_empty());
}

#[test]
fn pending_failure_resolved_by_later_line() {
    let mut j = jail("");
    assert!(
        j.feed(
            b"Nov 23 21:50:19 sshd[8148]: Disconnecting: Too many authentication failures for root [preauth]",
            Origin::Text,
            0
        )
        .is_empty()
    );
    let ev = j.feed(b"Nov 23 21:50:37 sshd[8148]: Connection closed by 61.0.0.1 [preauth]", Origin::Text, 1);
    assert!(matches!(&ev[..], [Event::Found { ip: a, .. }] if *a == ip("61.0.0.1")), "{ev:?}");
}

#[test]
fn accepted_drops_pending_but_not_counted_failures() {
    let mut j = jail("maxretry = 3\n");
    j.feed(b"sshd[5]: Failed password for bob from 192.0.2.7 port 1 ssh2", Origin::Text, 0);
    j.feed(b"sshd[6]: Disconnecting: Too many authentication failures", Origin::Text, 0);
    j.feed(b"sshd[6]: Accepted password for bob from 192.0.2.7 port 2 ssh2", Origin::Text, 1);
    assert_eq!(j.failures_of(&ip("192.0.2.7")), 1, "login neither resets nor adds");
    j.feed(b"sshd[7]: Failed password for bob from 192.0.2.7 port 3 ssh2", Origin::Text, 2);
    let ev = j.feed(b"sshd[7]: Failed password for bob from 192.0.2.7 port 3 ssh2", Origin::Text, 3);
    assert_eq!(bans(&ev), vec![ip("192.0.2.7")]);
}

#[test]
fn ignore_list_and_helpers() {
    let mut j = jail("ignoreip = 127.0.0.1/8 ::1 10.0.0.0/8\n");
    let ev = j.feed(b"Failed password for root from 10.1.2.3 port 1 ssh2", Origin::Text, 0);
    assert_eq!(ev[0].log_line("sshd").to_string(), "INFO    [sshd] Ignore 10.1.2.3 by ip");
    assert_eq!(j.total_failed, 0);
    // Helpers never count.
    assert!(
        j.feed(
            b"pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=192.0.2.7",
            Origin::Text,
            0
        )
        .is_empty()
    );
    assert!(j.feed(b"Failed publickey for git from 192.0.2.7 port 1 ssh2: RSA SHA256:x", Origin::Text, 0).is_empty());
    assert!(j.feed(b"Connection closed by 192.0.2.7 port 1 [preauth]", Origin::Text, 0).is_empty());
}

#[test]
fn v4_mapped_counts_as_v4() {
    let mut j = jail("maxretry = 2\n");
    j.feed(b"Failed password for root from ::ffff:192.0.2.7 port 1 ssh2", Origin::Text, 0);
    let ev = j.feed(b"Failed password for root from 192.0.2.7 port 1 ssh2", Origin::Text, 0);
    assert_eq!(bans(&ev), vec![ip("192.0.2.7")]);
}

#[test]
fn increment_formula_like_fail2ban() {
    let j = jail("bantime = 600\nbantime.increment = true\nbantime.maxtime = 1d\n");
    let got: Vec<i64> = (1..=10).map(|n| j.settings.ban_time(n)).collect();
    assert_eq!(got, [1200, 2400, 4800, 9600, 19200, 38400, 76800, 86400, 86400, 86400]);
    assert_eq!(j.settings.ban_time(0), 600);
    let j = jail("bantime = 60\nbantime.increment = true\nbantime.multipliers = 1 5 30\n");
    assert_eq!((1..=4).map(|n| j.settings.ban_time(n)).collect::<Vec<_>>(), [300, 1800, 1800, 1800]);
    let j = jail("bantime = -1\nbantime.increment = true\n");
    assert_eq!(j.settings.ban_time(3), -1);
    let j = jail("bantime = 100\nbantime.increment = true\nbantime.factor = 3\n");
    assert_eq!(j.settings.ban_time(1), 600);
}

#[test]
fn repeat_offender_gets_longer_ban() {
    let mut j = jail("maxretry = 1\nbantime = 10\nbantime.increment = true\n");
    let l = b"Invalid user x from 192.0.2.7 port 1";
    let ev = j.feed(l, Origin::Text, 0);
    assert!(matches!(ev.last(), Some(Event::Ban { bantime: 10, count: 1, .. })), "{ev:?}");
    j.tick(10);
    let ev = j.feed(l, Origin::Text, 11);
    assert!(matches!(ev.last(), Some(Event::Ban { bantime: 20, count: 2, .. })), "{ev:?}");
}

#[test]
fn permanent_ban_never_expires() {
    let mut j = jail("maxretry = 1\nbantime = -1\n");
    j.feed(b"Invalid user x from 2001:db8::1 port 1", Origin::Text, 0);
    assert!(j.tick(i64::MAX / 8).is_empty());
    assert!(j.is_banned(&ip("2001:db8::1")));
}

fn found(ev: &[Event]) -> Vec<IpAddr> {
    ev.iter().filter(|e| matches!(e, Event::Found { .. })).map(Event::ip).collect()
}

#[test]
fn host_names_follow_usedns() {
    let l = b"sshd[5]: Failed password for root from localhost port 22 ssh2";
    for (v, charged) in [("yes", true), ("warn", true), ("no", false), ("raw", false)] {
        let mut j = jail(&format!("ignoreip =\nusedns = {v}\n"));
        let ev = j.feed(l, Origin::Text, 0);
        assert_eq!(found(&ev).contains(&ip("127.0.0.1")), charged, "usedns = {v}: {ev:?}");
    }
    // A name that does not resolve is charged to no one, not to the session's earlier address.
    let mut j = jail("ignoreip =\n");
    j.feed(b"sshd[6]: Connection from 192.0.2.7 port 1 on 10.0.0.1 port 22", Origin::Text, 0);
    assert!(
        j.feed(b"sshd[6]: Failed password for root from nonexistent.invalid port 1 ssh2", Origin::Text, 1).is_empty()
    );
    assert_eq!(j.total_failed, 0);
}

#[test]
fn several_users_in_a_session_turn_helpers_into_failures() {
    let mut j = jail("maxretry = 10\n");
    let pam = |u: &str| {
        format!(
            "sshd[7]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=192.0.2.7  user={u}"
        )
    };
    assert!(j.feed(pam("root").as_bytes(), Origin::Text, 0).is_empty(), "one user: a helper");
    assert_eq!(found(&j.feed(pam("admin").as_bytes(), Origin::Text, 1)), vec![ip("192.0.2.7")]);
    // A login as yet another user does not wipe it: it counts too (fail2ban's mlfgained).
    let ev = j.feed(b"sshd[7]: Accepted password for known from 192.0.2.7 port 1 ssh2", Origin::Text, 2);
    assert_eq!(found(&ev), vec![ip("192.0.2.7")]);
    assert_eq!(j.failures_of(&ip("192.0.2.7")), 2);
}

#[test]
fn waiting_failures_count_once_with_the_line_that_names_the_address() {
    let c = parse_str("[sshd]\nenabled = true\nignoreself = false\nmode = ddos\n", "t").unwrap();
    let mut j = Jail::new(JailSettings::from_config(&c.jail));
    assert!(j.feed(b"sshd[8]: Disconnecting: Too many authentication failures [preauth]", Origin::Text, 0).is_empty());
    let ev = j.feed(b"sshd[8]: Connection closed by 192.0.2.7 port 1 [preauth]", Origin::Text, 1);
    assert_eq!(found(&ev), vec![ip("192.0.2.7")], "one failure, as fail2ban's one ticket");
}

/// A central log holds several hosts' sshd pids: a session is a pid on one host.
#[test]
fn sessions_are_per_host() {
    let mut j = jail("");
    j.feed(b"Nov 24 13:22:20 hosta sshd[5]: Connection from 192.0.2.7 port 1 on 10.0.0.1 port 22", Origin::Text, 0);
    let other = b"Nov 24 13:22:21 hostb sshd[5]: Disconnecting: Too many authentication failures [preauth]";
    assert!(j.feed(other, Origin::Text, 1).is_empty(), "hostb's pid 5 is not hosta's");
    let same = b"Nov 24 13:22:22 hosta sshd[5]: Disconnecting: Too many authentication failures [preauth]";
    assert_eq!(found(&j.feed(same, Origin::Text, 2)), vec![ip("192.0.2.7")]);
}

/// Attack: an intruder's session on sshd pid P guesses two user names and ends without a
/// closing line (killed, or LoginGraceTime's `fatal: Timeout` in a form not matched). P is
/// reused by an honest user's connection (pids wrap; a local user can cycle them fast): the
/// intruder's user names must not turn the honest login into failures of the honest address.
#[test]
fn a_reused_pid_does_not_inherit_the_intruders_user_names() {
    let victim = ip("198.51.100.44");
    // Kernel source: the pid is the sender's, the peer the kernel's.
    let mut j = jail("maxretry = 2\n");
    let k = |peer: &str| Origin::Kernel { pid: 4242, peer: Some(ip(peer)) };
    j.feed(b"Failed password for root from 203.0.113.9 port 1 ssh2", k("203.0.113.9"), 0);
    j.feed(b"Failed password for admin from 203.0.113.9 port 1 ssh2", k("203.0.113.9"), 1);
    for t in 2..6 {
        let ev = j.feed(b"Accepted password for alice from 198.51.100.44 port 2 ssh2", k("198.51.100.44"), t);
        assert!(found(&ev).is_empty(), "honest login on a reused pid counted: {ev:?}");
        let ev =
            j.feed(b"Received disconnect from 198.51.100.44 port 2:11: disconnected by user", k("198.51.100.44"), t);
        assert!(found(&ev).is_empty(), "{ev:?}");
    }
    assert!(!j.is_banned(&victim));
    assert_eq!(j.failures_of(&victim), 0);
    // The same through a text source (sshd at LogLevel INFO logs no "Connection from").
    let mut j = jail("maxretry = 2\n");
    j.feed(b"sshd[4243]: Failed password for root from 203.0.113.9 port 1 ssh2", Origin::Text, 0);
    j.feed(b"sshd[4243]: Failed password for admin from 203.0.113.9 port 1 ssh2", Origin::Text, 1);
    let ev = j.feed(b"sshd[4243]: Accepted password for alice from 198.51.100.44 port 2 ssh2", Origin::Text, 2);
    assert!(found(&ev).is_empty(), "honest login on a reused pid counted: {ev:?}");
    assert_eq!(j.failures_of(&victim), 0);
}
