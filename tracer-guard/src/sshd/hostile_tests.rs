//! The attacker's side: every field of an sshd message that a client controls tries to move
//! the address. The fields, from OpenSSH's logging calls (auth.c auth_log, auth2.c, auth2-*.c,
//! sshd-session.c, packet.c, kex.c, PAM):
//!
//! - the user name of an unknown account (`invalid user U`, up to 100 bytes in auth_log, 200 in
//!   the packet.c preamble; PAM's `user=`; `Too many authentication failures for U`; both names
//!   of `Change of username or service not allowed: (U,S) -> (U,S)`);
//! - the auth_log INFO after `ssh2: `: a certificate's key ID, hostbased `client user "…"` and
//!   `client host "…"` (100 bytes each), a GSSAPI display name;
//! - the client's version banner (`Bad protocol version identification '…'`,
//!   `kex_exchange_identification: client sent invalid protocol identifier "…"`);
//! - the client's disconnect reason (`Received disconnect from A port N:C: …`) and algorithm
//!   lists (`Their offer: …`, `no matching cipher found: client … server …`);
//! - with UseDNS / tcpwrappers, the name in the client's own PTR record (`refused connect from
//!   NAME (A)`).
//!
//! Names of existing accounts (`Failed password for root`, `User root from A not allowed`) are
//! the administrator's, not the client's. Syslog escapes control characters in all of these;
//! `sshd -e` files do not (see follow.rs and README).

use std::net::IpAddr;

use super::*;
use crate::config::parse_str;
use crate::event::Event;
use crate::jail::{Jail, JailSettings, Origin};

const REAL: &str = "192.0.2.7";

/// Client text that imitates the pieces sshd writes around an address.
const PAYLOADS: &[&str] = &[
    "x from 203.0.113.66 port 22 ssh2",
    "x from 203.0.113.66 port 22 ssh2: RSA SHA256:abcdefghijk",
    "x from 203.0.113.66 port 22 ssh2: x",
    "a:b from 203.0.113.66 port 1 ssh2: x",
    "x from 203.0.113.66",
    "x from 203.0.113.66 port 22",
    "x from 203.0.113.66 port 22 [preauth]",
    "x from 203.0.113.66 port 22 on 10.0.0.1 port 22",
    "x 203.0.113.66 port 22",
    "203.0.113.66",
    "203.0.113.66 port 22",
    "x from ::ffff:203.0.113.66 port 22 ssh2",
    "x from [203.0.113.66] port 22",
    "x from 2001:db8::66 port 22 ssh2",
    "x from localhost port 22 ssh2",
    "x from localhost",
    "localhost",
    "x rhost=203.0.113.66",
    "x rhost=203.0.113.66  user=y",
    "x (203.0.113.66)",
    "x' from 203.0.113.66 port 22",
    "x\" from 203.0.113.66 port 22 ssh2",
    "x: Auth fail",
    "x from 203.0.113.66 port 22: Change of username",
    "x ssh2: from 203.0.113.66 port 22 ssh2",
    "x#012Failed password for root from 203.0.113.66 port 22 ssh2",
    "x\\012Invalid user y from 203.0.113.66 port 22",
    "Remote: 203.0.113.66-22;",
    "",
    // Pieces of sshd's own tail, to end the message early or hide the real one (evasion).
    " ssh2",
    "x ssh2:",
    "x ssh2: ",
    "x [preauth]",
    "x port 22 ssh2: y",
    "x: ",
    ":",
    "x\u{a0}from\u{a0}203.0.113.66\u{a0}port\u{a0}22",
    "x\tfrom\t203.0.113.66 port 22 ssh2",
    "x\u{2028}Failed password for root from 203.0.113.66 port 22 ssh2",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
];

/// Messages with `{U}` where sshd puts client text; `REAL` is the peer's address.
const TEMPLATES: &[&str] = &[
    "Invalid user {U} from REAL port 4242",
    "Invalid user {U} REAL port 4242",
    "Failed password for invalid user {U} from REAL port 4242 ssh2",
    "Failed keyboard-interactive/pam for invalid user {U} from REAL port 4242 ssh2",
    "Failed none for invalid user {U} from REAL port 4242 ssh2",
    "Failed publickey for invalid user {U} from REAL port 4242 ssh2: RSA SHA256:abcdefghijk",
    "Failed publickey for invalid user {U} from REAL port 4242 ssh2: RSA-CERT SHA256:abc ID {U} (serial 1) CA RSA SHA256:def",
    "Failed publickey for root from REAL port 4242 ssh2: RSA-CERT SHA256:abc ID {U} (serial 1) CA RSA SHA256:def",
    "Accepted publickey for root from REAL port 4242 ssh2: RSA-CERT SHA256:abc ID {U} (serial 1) CA RSA SHA256:def",
    "Failed hostbased for root from REAL port 4242 ssh2: ED25519 SHA256:abc, client user \"{U}\", client host \"{U}\"",
    "Failed hostbased for invalid user {U} from REAL port 4242 ssh2: ED25519 SHA256:abc, client user \"{U}\", client host \"{U}\"",
    "Failed gssapi-with-mic for invalid user {U} from REAL port 4242 ssh2: {U}",
    "Failed password for invalid user {U} from REAL port 4242 ssh2",
    "error: maximum authentication attempts exceeded for invalid user {U} from REAL port 4242 ssh2 [preauth]",
    "Disconnecting invalid user {U} REAL port 4242: Too many authentication failures [preauth]",
    "Disconnecting invalid user {U} REAL port 4242: Change of username or service not allowed: ({U},ssh-connection) -> ({U},ssh-connection) [preauth]",
    "Disconnecting authenticating user root REAL port 4242: Change of username or service not allowed: (root,ssh-connection) -> ({U},ssh-connection) [preauth]",
    "Connection closed by invalid user {U} REAL port 4242 [preauth]",
    "Connection reset by invalid user {U} REAL port 4242 [preauth]",
    "Disconnected from invalid user {U} REAL port 4242 [preauth]",
    "Disconnecting: Too many authentication failures for {U} [preauth]",
    "error: PAM: Authentication failure for illegal user {U} from REAL",
    "error: PAM: Authentication failure for {U} from REAL",
    "error: PAM: authentication error for {U} from REAL via 10.0.0.1",
    "User not known to the underlying authentication module for {U} from REAL",
    "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=REAL  user={U}",
    "Bad protocol version identification '{U}' from REAL port 4242",
    "kex_exchange_identification: client sent invalid protocol identifier \"{U}\"",
    "banner exchange: Connection from REAL port 4242: invalid format",
    "Received disconnect from REAL port 4242:3: {U}: Auth fail [preauth]",
    "Received disconnect from REAL port 4242:11: {U} [preauth]",
    "Received disconnect from REAL port 4242:14: No supported authentication methods available{U} [preauth]",
    "Unable to negotiate with REAL port 4242: no matching key exchange method found. Their offer: {U} [preauth]",
    "no matching cipher found: client {U} server aes128-ctr",
    "refused connect from {U} (REAL)",
    "User {U} not allowed because account is locked",
];

fn real() -> IpAddr {
    REAL.parse().unwrap()
}

fn lines() -> impl Iterator<Item = String> {
    TEMPLATES.iter().flat_map(|t| PAYLOADS.iter().map(move |p| t.replace("{U}", p).replace("REAL", REAL)))
}

#[test]
fn no_client_field_moves_the_address() {
    let prefixes = ["", "Nov 24 13:22:29 host sshd[77]: ", "<38>1 2026-11-24T13:22:29Z h sshd 77 - - "];
    let mut checked = 0;
    for line in lines() {
        for mode in [Mode::Normal, Mode::Ddos, Mode::Extra, Mode::Aggressive] {
            for p in prefixes {
                let Some(h) = parse_line(&format!("{p}{line}"), mode).and_then(|p| p.hit) else { continue };
                checked += 1;
                assert!(h.addr.is_none_or(|a| a == real()), "{mode} {line:?} -> {h:?}");
                // No host name is ever read from client text: the peer is an address here.
                assert_eq!(h.host, None, "{mode} {line:?} -> {h:?}");
            }
        }
    }
    assert!(checked > 2000, "{checked}");
}

/// Through the jail, with the session's address known or not, only REAL is ever charged.
#[test]
fn the_jail_charges_only_the_peer() {
    let c = parse_str("[sshd]\nenabled = true\nignoreself = false\nignoreip =\nmaxretry = 1000\n", "t").unwrap();
    for with_session in [false, true] {
        let mut j = Jail::new(JailSettings::from_config(&c.jail));
        let mut found = 0;
        for (n, line) in lines().enumerate() {
            let pid = 1000 + n as u32;
            if with_session {
                j.feed(
                    format!("sshd[{pid}]: Connection from {REAL} port 4242 on 10.0.0.1 port 22").as_bytes(),
                    Origin::Text,
                    0,
                );
            }
            for e in j.feed(format!("sshd[{pid}]: {line}").as_bytes(), Origin::Text, 0) {
                if let Event::Found { ip, .. } = e {
                    assert_eq!(ip, real(), "{line:?}");
                    found += 1;
                }
            }
            // The kernel source: whatever the text says, only the kernel's peer.
            let k = Origin::Kernel { pid, peer: Some(real()) };
            for e in j.feed(line.as_bytes(), k, 0) {
                assert_eq!(e.ip(), real(), "{line:?}");
            }
        }
        assert!(found > 300, "{found}");
    }
}

/// Attacker-shaped junk (pieces of real lines, multi-byte characters at every cut) never makes
/// the parser panic, and never yields an address it did not see written.
#[test]
fn junk_never_panics() {
    let pieces: Vec<String> = lines()
        .take(400)
        .chain(
            ["Nov  4 13:22:29 ", "<38>1 ", "[ID 1 a.b] ", "sshd[7]: ", "é", "€", "\u{feff}", " [preauth]"]
                .map(String::from),
        )
        .collect();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..20_000 {
        let mut line = String::new();
        for _ in 0..(next() % 4 + 1) {
            let p = &pieces[(next() % pieces.len() as u64) as usize];
            let cut = p.char_indices().map(|(i, _)| i).nth((next() % (p.chars().count() as u64 + 1)) as usize);
            line.push_str(&p[cut.unwrap_or(p.len())..]);
            if next() % 3 == 0 {
                line.push('é');
            }
        }
        for mode in [Mode::Normal, Mode::Aggressive] {
            if let Some(h) = parse_line(&line, mode).and_then(|p| p.hit)
                && let Some(a) = h.addr
            {
                let shown = a.to_string();
                assert!(line.contains(&shown) || line.contains(&format!("::ffff:{shown}")), "{line:?} -> {a}");
            }
        }
    }
}

/// Evasion: a message that is a failure with a plain user name stays one whatever the client
/// writes in its fields (the kernel source charges the peer; a text source with the session's
/// address known charges REAL), in every mode.
#[test]
fn no_client_field_hides_a_failure() {
    let mut missed = Vec::new();
    for mode in ["normal", "ddos", "extra", "aggressive"] {
        let c = parse_str(
            &format!("[sshd]\nenabled = true\nignoreself = false\nignoreip =\nmaxretry = 100000\nmode = {mode}\n"),
            "t",
        )
        .unwrap();
        let mut j = Jail::new(JailSettings::from_config(&c.jail));
        let mut pid = 1u32;
        let mut found = |line: &str, kernel: bool| {
            pid += 1;
            let ev = if kernel {
                j.feed(line.as_bytes(), Origin::Kernel { pid, peer: Some(real()) }, 0)
            } else {
                j.feed(
                    format!("sshd[{pid}]: Connection from {REAL} port 4242 on 10.0.0.1 port 22").as_bytes(),
                    Origin::Text,
                    0,
                );
                j.feed(format!("sshd[{pid}]: {line}").as_bytes(), Origin::Text, 0)
            };
            ev.iter().any(|e| matches!(e, Event::Found { ip, .. } if *ip == real()))
        };
        for t in TEMPLATES {
            for kernel in [true, false] {
                let plain = t.replace("{U}", "x").replace("REAL", REAL);
                if !found(&plain, kernel) {
                    continue;
                }
                for p in PAYLOADS {
                    let line = t.replace("{U}", p).replace("REAL", REAL);
                    if !found(&line, kernel) {
                        missed.push(format!("{mode} kernel={kernel}: {line}"));
                    }
                }
            }
        }
    }
    assert!(missed.is_empty(), "{} hidden failures:\n{}", missed.len(), missed.join("\n"));
}
