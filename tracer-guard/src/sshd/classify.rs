//! Message classification: which sshd message a line is, its address and user, and what it
//! means for the jail in the configured [`Mode`].

use super::fields::{addr_after, addr_at_end, forget, from_addr_at_end, hit, strip_port, strip_preauth, user_opt};
use super::{Hit, Kind, Mode, Role};
use crate::addr::parse_ip;

/// Classifies one sshd message (without syslog prefix and level).
pub fn classify(msg: &str, mode: Mode) -> Option<Hit> {
    let (body, preauth) = strip_preauth(msg);

    // "Connection from A port N on B port M": nothing client-controlled precedes the address.
    if let Some(rest) = body.strip_prefix("Connection from ") {
        let (ip, _) = addr_after(rest)?;
        return hit(Kind::ConnectionFrom, Role::Helper, Some(ip), None);
    }
    if body.starts_with("Failed ") || body.starts_with("Accepted ") {
        return failed_or_accepted(body);
    }
    if let Some(rest) = body.strip_prefix("Invalid user ").or_else(|| body.strip_prefix("Illegal user ")) {
        // Newer sshd drops "from": "Invalid user U A port N".
        let (user, ip) = match from_addr_at_end(rest) {
            Some(v) => v,
            None => addr_at_end(rest)?,
        };
        return hit(Kind::InvalidUser, Role::Failure, Some(ip), user_opt(user));
    }
    for p in [
        "Authentication failure for ",
        "authentication failure for ",
        "Authentication error for ",
        "authentication error for ",
        "Authentication failed for ",
        "authentication failed for ",
    ] {
        if let Some(rest) = body.strip_prefix(p) {
            // Optional " via HOST" after the address.
            let rest = match rest.rsplit_once(" via ") {
                Some((h, via)) if !via.contains(' ') && !via.is_empty() => h,
                _ => rest,
            };
            let (user, ip) = from_addr_at_end(rest).or_else(|| addr_at_end(rest))?;
            return hit(Kind::AuthFailure, Role::Failure, Some(ip), user_opt(user));
        }
    }
    if let Some(rest) = body.strip_prefix("User not known to the underlying authentication module for ") {
        let (user, ip) = from_addr_at_end(rest).or_else(|| addr_at_end(rest))?;
        return hit(Kind::UserNotKnown, Role::Failure, Some(ip), user_opt(user));
    }
    if let Some(rest) = body.strip_prefix("User ") {
        return user_not_allowed(rest);
    }
    if let Some(rest) = body.strip_prefix("ROOT LOGIN REFUSED FROM ") {
        let (ip, _) = addr_after(rest)?;
        return hit(Kind::RootLoginRefused, Role::Failure, Some(ip), Some("ROOT"));
    }
    if let Some(rest) = body.strip_prefix("refused connect from ") {
        // "refused connect from NAME (A)": NAME is a resolved host name, take the parenthesis.
        let inner = rest.strip_suffix(')')?;
        let (_, a) = inner.rsplit_once(" (")?;
        return hit(Kind::RefusedConnect, Role::Failure, Some(parse_ip(a)?), None);
    }
    if let Some(rest) = body.strip_prefix("Received disconnect from ") {
        // The reason after the code is the client's text: parse forwards only.
        let (ip, tail) = addr_after(rest)?;
        let tail = tail.strip_prefix(':')?.trim_start();
        let (code, reason) = tail.split_once(':').unwrap_or((tail, ""));
        let reason = reason.trim_start();
        return match code {
            "3" if reason.ends_with("Auth fail") => {
                forget(hit(Kind::DisconnectAuthFail, Role::Failure, Some(ip), None))
            }
            "11" => forget(hit(Kind::DisconnectNormal, Role::Helper, Some(ip), None)),
            "14" if mode.extra()
                && (reason.starts_with("No supported authentication methods available")
                    || reason.starts_with("No authentication methods available")) =>
            {
                forget(hit(Kind::NoAuthMethods, Role::Failure, Some(ip), None))
            }
            _ => None,
        };
    }
    if let Some(rest) = body.strip_prefix("maximum authentication attempts exceeded for ") {
        let rest = rest.strip_suffix(" ssh2").unwrap_or(rest);
        let (user, ip) = from_addr_at_end(rest).or_else(|| addr_at_end(rest))?;
        let user = user.strip_prefix("invalid user ").unwrap_or(user);
        return hit(Kind::MaxAuthAttempts, Role::Failure, Some(ip), user_opt(user));
    }
    if let Some(rest) = body.strip_prefix("Disconnecting: Too many authentication failures") {
        let user = rest.strip_prefix(" for ").filter(|u| !u.is_empty());
        // fail2ban forgets the session only on the later "Connection closed".
        return hit(Kind::TooManyAuthFailures, Role::Failure, None, user);
    }
    if body.starts_with("Disconnecting ") && body.contains(": Change of username or service not allowed: ") {
        // User names appear on both sides of the address: trust only the session's address.
        return forget(hit(Kind::ChangeOfUsername, Role::Failure, None, None));
    }
    if let Some(h) = pam_failure(body) {
        return Some(h);
    }
    if let Some(h) = closed_or_disconnected(body, preauth, mode) {
        return Some(h);
    }
    if mode.ddos()
        && let Some(h) = ddos_kind(body)
    {
        return Some(h);
    }
    if mode.extra() {
        if let Some(rest) = body.strip_prefix("Unable to negotiate with ") {
            let (ip, tail) = addr_after(rest)?;
            if tail.starts_with(": no matching ") {
                return hit(Kind::UnableToNegotiate, Role::Failure, Some(ip), None);
            }
            return None;
        }
        if body.starts_with("Unable to negotiate a ") || (body.starts_with("no matching ") && body.contains(" found:"))
        {
            return hit(Kind::NoMatchingAlgorithm, Role::Failure, None, None);
        }
    }
    None
}

/// `Failed METHOD for [invalid user ]U from A port N ssh2[: KEYINFO]` and the `Accepted` twin.
fn failed_or_accepted(body: &str) -> Option<Hit> {
    let accepted = body.starts_with("Accepted ");
    let rest = body.strip_prefix("Failed ").or_else(|| body.strip_prefix("Accepted "))?;
    let (method, rest) = rest.split_once(" for ")?;
    if method.is_empty() || method.contains(' ') {
        return None;
    }
    // Public-key lines end in ": TYPE FINGERPRINT". Certificates add a key ID the client chose,
    // so their tail is not trusted: the pid's known address is used instead.
    let (core, trusted) = if let Some(c) = rest.strip_suffix(" ssh2") {
        (c, true)
    } else if let Some((c, keyinfo)) = rest.rsplit_once(" ssh2: ") {
        let words: Vec<&str> = keyinfo.split(' ').collect();
        let plain = words.len() == 2 && words[1].contains(':') && !words[0].contains("CERT");
        (c, plain)
    } else {
        (rest, true)
    };
    let (user, invalid, ip) = if trusted {
        let (user, ip) = from_addr_at_end(core)?;
        match user.strip_prefix("invalid user ") {
            Some(u) => (u, true, Some(ip)),
            None => (user, false, Some(ip)),
        }
    } else {
        let invalid = core.starts_with("invalid user ");
        (core.split(' ').nth(if invalid { 2 } else { 0 }).unwrap_or(""), invalid, None)
    };
    let (kind, role) = if accepted {
        (Kind::Accepted, Role::Gained)
    } else if method == "publickey" && !invalid {
        // Clients try several keys for a real account: fail2ban's default `publickey = nofail`.
        (Kind::Failed, Role::Helper)
    } else {
        (Kind::Failed, Role::Failure)
    };
    let mut h = hit(kind, role, ip, user_opt(user))?;
    h.method = Some(method.to_string());
    h.forget = accepted;
    Some(h)
}

/// `User U from A not allowed because ...` and `User U not allowed because account is locked`.
fn user_not_allowed(rest: &str) -> Option<Hit> {
    const REASONS: [&str; 5] = [
        " not allowed because not listed in AllowUsers",
        " not allowed because listed in DenyUsers",
        " not allowed because not in any group",
        " not allowed because a group is listed in DenyGroups",
        " not allowed because none of user's groups are listed in AllowGroups",
    ];
    for r in REASONS {
        if let Some(head) = rest.strip_suffix(r) {
            let (user, ip) = from_addr_at_end(head).or_else(|| addr_at_end(head))?;
            return hit(Kind::NotAllowed, Role::Failure, Some(ip), user_opt(user));
        }
    }
    if let Some(user) = rest.strip_suffix(" not allowed because account is locked") {
        return hit(Kind::AccountLocked, Role::Failure, None, user_opt(user));
    }
    None
}

/// `pam_XXX(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=A  user=U`.
/// The fields before rhost are PAM's own (no spaces), the user name comes last: parse forwards.
fn pam_failure(body: &str) -> Option<Hit> {
    let rest = body.strip_prefix("pam_")?;
    let (module, rest) = rest.split_once("(sshd:auth): authentication failure;")?;
    if module.is_empty() || !module.bytes().all(|c| c.is_ascii_lowercase()) {
        return None;
    }
    let mut words = rest.split_whitespace();
    let mut ip = None;
    for w in words.by_ref() {
        let (k, v) = w.split_once('=')?;
        match k {
            "logname" | "uid" | "euid" | "tty" | "ruser" => {}
            "rhost" => {
                ip = Some(parse_ip(v)?);
                break;
            }
            _ => return None,
        }
    }
    let ip = ip?;
    let user = words.next().and_then(|w| w.strip_prefix("user=")).filter(|u| !u.is_empty());
    hit(Kind::PamAuthFailure, Role::Helper, Some(ip), user)
}

/// `Connection closed by [invalid|authenticating user U ]A port N [preauth]`, `Connection reset by ...`,
/// `Disconnected from [invalid|authenticating ]user U A port N [preauth]`.
fn closed_or_disconnected(body: &str, preauth: bool, mode: Mode) -> Option<Hit> {
    let rest = body
        .strip_prefix("Connection closed by ")
        .or_else(|| body.strip_prefix("Connection reset by "))
        .or_else(|| body.strip_prefix("Disconnected from "))?;
    // A trailing ": reason" would put text on both sides of the address: not handled here.
    let core = strip_port(rest);
    let (who, ip) = match core.rsplit_once(' ') {
        Some((who, a)) => (who, parse_ip(a)?),
        None => ("", parse_ip(core)?),
    };
    let user = who
        .strip_prefix("invalid user ")
        .or_else(|| who.strip_prefix("authenticating user "))
        .or_else(|| who.strip_prefix("user "));
    if !who.is_empty() && user.is_none() {
        return None;
    }
    let authenticating = who.starts_with("invalid user ") || who.starts_with("authenticating user ");
    let failure = preauth && (mode.ddos() || (mode.extra() && authenticating && body.starts_with("Disconnected ")));
    let role = if failure { Role::Failure } else { Role::Helper };
    forget(hit(Kind::ConnectionClosed, role, Some(ip), user.and_then(user_opt)))
}

fn ddos_kind(body: &str) -> Option<Hit> {
    for p in [
        "Did not receive identification string from ",
        "Timeout before authentication for connection from ",
        "Timeout before authentication for ",
    ] {
        if let Some(rest) = body.strip_prefix(p) {
            let (ip, _) = addr_after(rest)?;
            return hit(Kind::NoIdentification, Role::Failure, Some(ip), None);
        }
    }
    if let Some(rest) = body.strip_prefix("kex_exchange_identification: ") {
        let r = rest.strip_prefix("read: ").unwrap_or(rest);
        let known = [
            "client sent invalid protocol identifier",
            "Client sent invalid protocol identifier",
            "Connection closed by remote host",
            "connection closed by remote host",
            "Connection reset by peer",
            "connection reset by peer",
        ];
        return known
            .iter()
            .any(|k| r.starts_with(k))
            .then(|| hit(Kind::KexIdentification, Role::Failure, None, None))?;
    }
    if let Some(rest) = body.strip_prefix("Bad protocol version identification '") {
        // The quoted banner is the client's: the address is after the last quote.
        let (_, tail) = rest.rsplit_once("' ")?;
        let tail = tail.strip_prefix("from ").unwrap_or(tail);
        let tail = strip_port(tail);
        return hit(Kind::BadProtocolVersion, Role::Failure, Some(parse_ip(tail)?), None);
    }
    if body.starts_with("Read from socket failed: Connection reset by peer") {
        return forget(hit(Kind::ReadSocketFailed, Role::Failure, None, None));
    }
    for p in ["banner exchange: Connection from ", "ssh_dispatch_run_fatal: Connection from "] {
        if let Some(rest) = body.strip_prefix(p) {
            let (ip, tail) = addr_after(rest)?;
            let ok = [
                ": invalid format",
                ": message authentication code incorrect",
                ": Connection corrupted",
                ": connection corrupted",
                ": could not read protocol version",
            ];
            return ok
                .iter()
                .any(|k| tail.starts_with(k))
                .then(|| hit(Kind::BannerExchange, Role::Failure, Some(ip), None))?;
        }
    }
    None
}
