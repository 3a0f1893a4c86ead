use super::*;

fn ip(s: &str) -> Option<IpAddr> {
    Some(s.parse().unwrap())
}

fn c(msg: &str, mode: Mode) -> Option<Hit> {
    parse_line(msg, mode).and_then(|p| p.hit)
}

fn fail(msg: &str, mode: Mode) -> (Kind, Option<IpAddr>, Option<String>) {
    let h = c(msg, mode).unwrap_or_else(|| panic!("no hit for {msg:?}"));
    assert_eq!(h.role, Role::Failure, "{msg:?} -> {h:?}");
    (h.kind, h.addr, h.user)
}

#[test]
fn prefixes() {
    let cases = [
        "<38>Nov 24 13:22:29 sshd[1234]: Failed password for root from 192.0.2.7 port 4242 ssh2",
        "Nov 24 13:22:29 host sshd[1234]: Failed password for root from 192.0.2.7 port 4242 ssh2",
        "Nov  4 13:22:29 host sshd[1234]: Failed password for root from 192.0.2.7 port 4242 ssh2",
        "2026-11-24T13:22:29.123456+00:00 host sshd[1234]: Failed password for root from 192.0.2.7 port 4242 ssh2",
        "2026-11-24T13:22:29Z host sshd-session[1234]: Failed password for root from 192.0.2.7 port 4242 ssh2",
        "<38>1 2026-11-24T13:22:29.1Z host sshd 1234 - - Failed password for root from 192.0.2.7 port 4242 ssh2",
        "<86>Nov 24 13:22:29 sshd-auth[1234]: Failed password for root from 192.0.2.7 port 4242 ssh2",
        "sshd[1234]: Failed password for root from 192.0.2.7 port 4242 ssh2",
    ];
    for l in cases {
        let p = parse_line(l, Mode::Normal).unwrap_or_else(|| panic!("{l}"));
        assert_eq!(p.pid, Some(1234), "{l}");
        assert_eq!(p.hit.as_ref().map(|h| (h.kind, h.addr)), Some((Kind::Failed, ip("192.0.2.7"))), "{l}");
    }
    let bare = parse_line("Failed password for root from 192.0.2.7 port 4242 ssh2\n", Mode::Normal).unwrap();
    assert_eq!(bare.pid, None);
    assert_eq!(bare.hit.unwrap().addr, ip("192.0.2.7"));
    // Another program's line is not sshd's, even if its text looks like it.
    assert!(
        parse_line("Nov 24 13:22:29 host sudo[1]: Failed password for root from 192.0.2.7 port 1 ssh2", Mode::Normal)
            .is_none()
    );
    assert!(parse_line("<38>Nov 24 13:22:29 evil[1]: Invalid user x from 192.0.2.7 port 1", Mode::Normal).is_none());
    assert!(
        parse_line("<38>1 2026-11-24T13:22:29Z h cron 1 - - Invalid user x from 192.0.2.7", Mode::Normal).is_none()
    );
    // Level prefixes.
    let p = parse_line(
        "sshd[9]: error: maximum authentication attempts exceeded for root from 192.0.2.7 port 1 ssh2 [preauth]",
        Mode::Normal,
    )
    .unwrap();
    assert_eq!(p.hit.unwrap().kind, Kind::MaxAuthAttempts);
}

#[test]
fn normal_mode_failures() {
    let n = Mode::Normal;
    let cases: &[(&str, Kind, &str, Option<&str>)] = &[
        ("Failed password for root from 192.0.2.7 port 4242 ssh2", Kind::Failed, "192.0.2.7", Some("root")),
        (
            "Failed password for invalid user admin from 192.0.2.7 port 4242 ssh2",
            Kind::Failed,
            "192.0.2.7",
            Some("admin"),
        ),
        (
            "Failed keyboard-interactive/pam for invalid user x from 192.0.2.7 port 1 ssh2",
            Kind::Failed,
            "192.0.2.7",
            Some("x"),
        ),
        ("Failed none for invalid user x from 192.0.2.7 port 1 ssh2", Kind::Failed, "192.0.2.7", Some("x")),
        (
            "Failed publickey for invalid user graysky from 192.0.2.7 port 37954 ssh2: RSA SHA256:v3dpapGleDaUKf$4V1vKyR9ZyUgjaJAmoCTcb2PLljI",
            Kind::Failed,
            "192.0.2.7",
            Some("graysky"),
        ),
        ("Failed password for root from 2001:db8::7 port 4242 ssh2", Kind::Failed, "2001:db8::7", Some("root")),
        ("Failed password for root from ::ffff:192.0.2.7 port 4242 ssh2", Kind::Failed, "192.0.2.7", Some("root")),
        ("Invalid user admin from 192.0.2.7 port 4242", Kind::InvalidUser, "192.0.2.7", Some("admin")),
        ("Invalid user admin 192.0.2.7 port 4242", Kind::InvalidUser, "192.0.2.7", Some("admin")),
        ("Illegal user test from 192.0.2.7", Kind::InvalidUser, "192.0.2.7", Some("test")),
        ("Invalid user  from 192.0.2.7 port 1", Kind::InvalidUser, "192.0.2.7", None),
        ("Authentication failure for root from 192.0.2.7", Kind::AuthFailure, "192.0.2.7", Some("root")),
        ("error: PAM: Authentication failure for root from 192.0.2.7", Kind::AuthFailure, "192.0.2.7", Some("root")),
        (
            "error: PAM: Authentication failure for illegal user x from 192.0.2.7",
            Kind::AuthFailure,
            "192.0.2.7",
            Some("illegal user x"),
        ),
        (
            "User not known to the underlying authentication module for x from 192.0.2.7",
            Kind::UserNotKnown,
            "192.0.2.7",
            Some("x"),
        ),
        (
            "User root from 192.0.2.7 not allowed because not listed in AllowUsers",
            Kind::NotAllowed,
            "192.0.2.7",
            Some("root"),
        ),
        (
            "User root from 192.0.2.7 not allowed because listed in DenyUsers",
            Kind::NotAllowed,
            "192.0.2.7",
            Some("root"),
        ),
        ("User root from 192.0.2.7 not allowed because not in any group", Kind::NotAllowed, "192.0.2.7", Some("root")),
        (
            "User root from 192.0.2.7 not allowed because a group is listed in DenyGroups",
            Kind::NotAllowed,
            "192.0.2.7",
            Some("root"),
        ),
        (
            "User root from 192.0.2.7 not allowed because none of user's groups are listed in AllowGroups",
            Kind::NotAllowed,
            "192.0.2.7",
            Some("root"),
        ),
        ("ROOT LOGIN REFUSED FROM 192.0.2.7", Kind::RootLoginRefused, "192.0.2.7", Some("ROOT")),
        ("refused connect from evil.example (192.0.2.7)", Kind::RefusedConnect, "192.0.2.7", None),
        (
            "Received disconnect from 192.0.2.7 port 1:3: com.jcraft.jsch.JSchException: Auth fail [preauth]",
            Kind::DisconnectAuthFail,
            "192.0.2.7",
            None,
        ),
        (
            "error: maximum authentication attempts exceeded for invalid user x from 192.0.2.7 port 1 ssh2 [preauth]",
            Kind::MaxAuthAttempts,
            "192.0.2.7",
            Some("x"),
        ),
    ];
    for (msg, kind, addr, user) in cases {
        let (k, a, u) = fail(msg, n);
        assert_eq!((k, a, u.as_deref()), (*kind, ip(addr), *user), "{msg}");
    }
    // Address-less failures (take the pid's address later).
    for (msg, kind) in [
        ("Disconnecting: Too many authentication failures for root [preauth]", Kind::TooManyAuthFailures),
        ("Disconnecting: Too many authentication failures [preauth]", Kind::TooManyAuthFailures),
        ("User bob not allowed because account is locked", Kind::AccountLocked),
        (
            "Disconnecting invalid user a 192.0.2.7 port 1: Change of username or service not allowed: (a,ssh-connection) -> (b,ssh-connection) [preauth]",
            Kind::ChangeOfUsername,
        ),
    ] {
        assert_eq!(fail(msg, n), (kind, None, fail(msg, n).2), "{msg}");
    }
}

#[test]
fn helpers_and_gained() {
    let n = Mode::Normal;
    let h = c("Connection from 192.0.2.7 port 4242 on 10.0.0.1 port 22 rdomain \"\"", n).unwrap();
    assert_eq!((h.kind, h.role, h.addr), (Kind::ConnectionFrom, Role::Helper, ip("192.0.2.7")));
    let h = c(
        "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=192.0.2.7  user=root",
        n,
    )
    .unwrap();
    assert_eq!(
        (h.kind, h.role, h.addr, h.user.as_deref()),
        (Kind::PamAuthFailure, Role::Helper, ip("192.0.2.7"), Some("root"))
    );
    let h = c("Failed publickey for git from 192.0.2.7 port 57904 ssh2: ECDSA SHA256:abc", n).unwrap();
    assert_eq!((h.kind, h.role), (Kind::Failed, Role::Helper));
    let h = c("Accepted password for root from 192.0.2.7 port 4242 ssh2", n).unwrap();
    assert_eq!((h.kind, h.role, h.addr, h.forget), (Kind::Accepted, Role::Gained, ip("192.0.2.7"), true));
    let h = c("Accepted publickey for git from 192.0.2.7 port 1 ssh2: ED25519 SHA256:xyz", n).unwrap();
    assert_eq!((h.kind, h.addr), (Kind::Accepted, ip("192.0.2.7")));
    for m in [
        "Connection closed by 192.0.2.7 port 1 [preauth]",
        "Connection closed by 192.0.2.7 [preauth]",
        "Connection reset by 192.0.2.7 port 1",
        "Disconnected from user root 192.0.2.7 port 1",
        "Connection closed by authenticating user root 192.0.2.7 port 1 [preauth]",
        "Received disconnect from 192.0.2.7 port 1:11: disconnected by user",
    ] {
        let h = c(m, n).unwrap_or_else(|| panic!("{m}"));
        assert_eq!((h.role, h.addr, h.forget), (Role::Helper, ip("192.0.2.7"), true), "{m}");
    }
    // Not failures in normal mode.
    for m in [
        "Did not receive identification string from 192.0.2.7 port 1",
        "Unable to negotiate with 192.0.2.7 port 1: no matching key exchange method found. Their offer: x",
        "Received disconnect from 192.0.2.7 port 1:14: No supported authentication methods available [preauth]",
        "kex_exchange_identification: Connection closed by remote host",
        "Server listening on 0.0.0.0 port 22.",
        "Disconnecting invalid user x 192.0.2.7 port 1: Too many authentication failures [preauth]",
    ] {
        assert!(c(m, n).is_none_or(|h| h.role != Role::Failure), "{m}");
    }
}

#[test]
fn ddos_extra_aggressive() {
    let ddos = [
        ("Did not receive identification string from 192.0.2.7 port 1", Kind::NoIdentification, ip("192.0.2.7")),
        ("Did not receive identification string from 192.0.2.7", Kind::NoIdentification, ip("192.0.2.7")),
        ("Timeout before authentication for 192.0.2.7 port 1", Kind::NoIdentification, ip("192.0.2.7")),
        (
            "Timeout before authentication for connection from 192.0.2.7 to 10.0.0.1, pid = 123",
            Kind::NoIdentification,
            ip("192.0.2.7"),
        ),
        ("kex_exchange_identification: read: Connection reset by peer", Kind::KexIdentification, None),
        (
            "kex_exchange_identification: Client sent invalid protocol identifier \"GET / HTTP/1.1\"",
            Kind::KexIdentification,
            None,
        ),
        (
            "Bad protocol version identification 'x from 10.0.0.1' from 192.0.2.7 port 1",
            Kind::BadProtocolVersion,
            ip("192.0.2.7"),
        ),
        ("Read from socket failed: Connection reset by peer [preauth]", Kind::ReadSocketFailed, None),
        ("banner exchange: Connection from 192.0.2.7 port 1: invalid format", Kind::BannerExchange, ip("192.0.2.7")),
        (
            "ssh_dispatch_run_fatal: Connection from 192.0.2.7 port 1: message authentication code incorrect [preauth]",
            Kind::BannerExchange,
            ip("192.0.2.7"),
        ),
        ("Connection closed by 192.0.2.7 port 1 [preauth]", Kind::ConnectionClosed, ip("192.0.2.7")),
        ("Connection reset by 192.0.2.7 port 1 [preauth]", Kind::ConnectionClosed, ip("192.0.2.7")),
        ("Connection closed by invalid user x 192.0.2.7 port 1 [preauth]", Kind::ConnectionClosed, ip("192.0.2.7")),
    ];
    let extra = [
        (
            "Received disconnect from 192.0.2.7 port 1:14: No supported authentication methods available [preauth]",
            Kind::NoAuthMethods,
            ip("192.0.2.7"),
        ),
        (
            "Unable to negotiate with 192.0.2.7 port 1: no matching key exchange method found. Their offer: diffie-hellman-group1-sha1",
            Kind::UnableToNegotiate,
            ip("192.0.2.7"),
        ),
        ("fatal: Unable to negotiate a key exchange method [preauth]", Kind::NoMatchingAlgorithm, None),
        ("no matching cipher found: client aes128-cbc server aes256-ctr", Kind::NoMatchingAlgorithm, None),
        (
            "Disconnected from authenticating user root 192.0.2.7 port 1 [preauth]",
            Kind::ConnectionClosed,
            ip("192.0.2.7"),
        ),
    ];
    for (m, k, a) in &ddos {
        assert_eq!((fail(m, Mode::Ddos).0, fail(m, Mode::Ddos).1), (*k, *a), "{m}");
        assert_eq!((fail(m, Mode::Aggressive).0, fail(m, Mode::Aggressive).1), (*k, *a), "{m}");
        assert!(c(m, Mode::Normal).is_none_or(|h| h.role != Role::Failure), "normal: {m}");
    }
    for (m, k, a) in &extra {
        assert_eq!((fail(m, Mode::Extra).0, fail(m, Mode::Extra).1), (*k, *a), "{m}");
        assert_eq!((fail(m, Mode::Aggressive).0, fail(m, Mode::Aggressive).1), (*k, *a), "{m}");
        assert!(c(m, Mode::Normal).is_none_or(|h| h.role != Role::Failure), "normal: {m}");
    }
    // Closed without [preauth] is only a helper even in ddos mode.
    assert_eq!(c("Connection closed by 192.0.2.7 port 1", Mode::Ddos).unwrap().role, Role::Helper);
}

#[test]
fn injection_never_yields_the_injected_address() {
    let evil = ip("10.0.0.1");
    let real = ip("192.0.2.7");
    let cases = [
        "Failed password for invalid user x from 10.0.0.1 port 22 from 192.0.2.7 port 4242 ssh2",
        "Failed password for invalid user x from 10.0.0.1 port 22 ssh2 from 192.0.2.7 port 4242 ssh2",
        "Failed password for x from 10.0.0.1 port 22 ssh2 from 192.0.2.7 port 4242 ssh2",
        "Invalid user x from 10.0.0.1 port 22 from 192.0.2.7 port 4242",
        "Invalid user x from 10.0.0.1 192.0.2.7 port 4242",
        "User x from 10.0.0.1 not allowed because not listed in AllowUsers from 192.0.2.7 not allowed because not listed in AllowUsers",
        "Authentication failure for x from 10.0.0.1 from 192.0.2.7",
        "maximum authentication attempts exceeded for x from 10.0.0.1 port 22 ssh2 from 192.0.2.7 port 4242 ssh2 [preauth]",
        "Bad protocol version identification 'SSH from 10.0.0.1 port 22' from 192.0.2.7 port 4242",
    ];
    for m in cases {
        let h = c(m, Mode::Aggressive).unwrap_or_else(|| panic!("{m}"));
        assert_eq!(h.addr, real, "{m}");
    }
    // Client-chosen text after the address must not move it either.
    let h = c("Received disconnect from 192.0.2.7 port 1:3: from 10.0.0.1 port 22: Auth fail [preauth]", Mode::Normal)
        .unwrap();
    assert_eq!(h.addr, real);
    // Where client text surrounds the address, no address is taken from the text at all.
    for m in [
        "Failed publickey for invalid user x from 10.0.0.1 port 22 ssh2: RSA SHA256:a from 192.0.2.7 port 4242 ssh2: RSA SHA256:b",
        "Failed publickey for invalid user x from 192.0.2.9 port 1 ssh2: RSA-CERT SHA256:a ID k ssh2: RSA SHA256:b from 10.0.0.1 port 22 ssh2: RSA SHA256:c (serial 1) CA ED25519 SHA256:d",
        "Disconnecting invalid user x 10.0.0.1 port 22: Change of username or service not allowed: (a,b) -> (c,d) [preauth]",
    ] {
        let h = c(m, Mode::Normal).unwrap();
        assert_ne!(h.addr, evil, "{m}");
        assert_eq!(h.addr, None, "{m}");
    }
    // Connection closed with a user name that ends in an address.
    let h = c("Connection closed by invalid user 10.0.0.1 192.0.2.7 port 1 [preauth]", Mode::Ddos).unwrap();
    assert_eq!(h.addr, real);
    // A user name alone cannot fake a whole line.
    assert!(c("Failed password for x from 10.0.0.1 port 22 ssh2 extra", Mode::Normal).is_none_or(|h| h.addr != evil));
}
