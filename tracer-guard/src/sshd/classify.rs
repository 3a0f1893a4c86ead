//! Message classification: which sshd message a line is, its address and user, and what it
//! means for the jail in the configured [`Mode`].

use super::fields::{
    addr_after, addr_at_end, forget, from_addr_at_end, hit, ip_only, strip_port, strip_preauth, user_opt,
};
use super::{Hit, Kind, Mode, Role};
use crate::addr::{Host, parse_host};

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
        return hit(Kind::RefusedConnect, Role::Failure, Some(parse_host(a)?), None);
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

/// `Failed METHOD for [invalid user ]U from A port N ssh2[: INFO]` and the `Accepted` twin
/// (OpenSSH's auth_log). INFO is the key (publickey, hostbased) and may hold client text: a
/// certificate's key ID, hostbased `client user "..."`/`client host "..."`, old `ruser ...`.
fn failed_or_accepted(body: &str) -> Option<Hit> {
    let accepted = body.starts_with("Accepted ");
    let rest = body.strip_prefix("Failed ").or_else(|| body.strip_prefix("Accepted "))?;
    let (method, rest) = rest.split_once(" for ")?;
    if method.is_empty() || method.contains(' ') {
        return None;
    }
    let invalid_rest = rest.strip_prefix("invalid user ").or_else(|| rest.strip_prefix("illegal user "));
    let r = invalid_rest.unwrap_or(rest);
    let (user, host) = match r.matches(" from ").count() {
        0 => return None,
        // Only sshd's own " from ": the address follows it.
        1 => {
            let (user, after) = r.split_once(" from ")?;
            let (host, tail) = sshd_tail(after)?;
            // sshd writes ": INFO" even when INFO is empty (a GSSAPI display name is the
            // client's): the trimmed line then ends with ":".
            if !(tail.is_empty() || tail == ":" || tail.starts_with(": ")) {
                return None;
            }
            (user, Some(host))
        }
        // One " from " is the client's, in the user name or in INFO.
        _ => {
            let (first_user, after) = r.split_once(" from ")?;
            let info_marker = [" ssh2: ", " ssh1: ", " ssh: "].iter().any(|t| r.contains(t));
            match sshd_tail(after) {
                // An existing account's name is not the client's (sshd writes "invalid user "
                // before any other): when sshd's tail follows its first word (fail2ban's `\S+`),
                // the client text is in INFO, after the address.
                Some((h, tail)) if invalid_rest.is_none() && !first_user.contains(' ') && tail.starts_with(": ") => {
                    (first_user, Some(h))
                }
                // Client text on both sides: only the session's address can be trusted.
                _ if info_marker => (first_user, None),
                // No INFO: the line ends with sshd's own " from A port N ssh2".
                _ => {
                    let core = r.strip_suffix(" ssh2").or_else(|| r.strip_suffix(" ssh1")).unwrap_or(r);
                    let (user, host) = from_addr_at_end(core)?;
                    (user, Some(host))
                }
            }
        }
    };
    let (kind, role) = if accepted {
        (Kind::Accepted, Role::Gained)
    } else if method == "publickey" && invalid_rest.is_none() {
        // Clients try several keys for a real account: fail2ban's default `publickey = nofail`.
        (Kind::Failed, Role::Helper)
    } else {
        (Kind::Failed, Role::Failure)
    };
    let mut h = hit(kind, role, host, user_opt(user))?;
    h.method = Some(method.to_string());
    h.forget = accepted;
    Some(h)
}

/// `A[ port N][ sshX]` as sshd writes it after " from ": the host and what follows.
fn sshd_tail(after: &str) -> Option<(Host, &str)> {
    let end = after.find(' ').unwrap_or(after.len());
    let host = parse_host(&after[..end])?;
    let mut tail = &after[end..];
    if let Some(t) = tail.strip_prefix(" port ") {
        let n = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        if n == 0 {
            return None;
        }
        tail = &t[n..];
    }
    for v in [" ssh2", " ssh1", " ssh"] {
        if let Some(t) = tail.strip_prefix(v)
            && (t.is_empty() || t.starts_with([':', ' ']))
        {
            tail = t;
            break;
        }
    }
    Some((host, tail))
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
/// The fields before rhost are PAM's own (sshd sets no PAM_RUSER), the client's user name comes
/// last: parse forwards. A second `rhost=` means client text where it should not be: no address.
fn pam_failure(body: &str) -> Option<Hit> {
    let rest = body.strip_prefix("pam_")?;
    let (module, rest) = rest.split_once("(sshd:auth): authentication failure;")?;
    if module.is_empty() || !module.bytes().all(|c| c.is_ascii_lowercase()) {
        return None;
    }
    let mut words = rest.split_whitespace();
    let mut host = None;
    let mut ruser = "";
    for w in words.by_ref() {
        let (k, v) = w.split_once('=')?;
        match k {
            "logname" | "uid" | "euid" | "tty" => {}
            "ruser" => ruser = v,
            "rhost" => {
                host = Some(parse_host(v)?);
                break;
            }
            _ => return None,
        }
    }
    host.as_ref()?;
    if rest.matches("rhost=").count() > 1 {
        host = None;
    }
    // fail2ban's F-USER, else its F-ALT_USER (ruser).
    let user = words.next().and_then(|w| w.strip_prefix("user=")).filter(|u| !u.is_empty());
    hit(Kind::PamAuthFailure, Role::Helper, host, user.or(user_opt(ruser)))
}

/// `Connection closed by [invalid|authenticating user U ]A port N[: REASON] [preauth]`,
/// `Connection reset by ...`, `Disconnected from ...`, `Disconnecting ...` (fail2ban's `<ADDR>`:
/// addresses only, no host names).
fn closed_or_disconnected(body: &str, preauth: bool, mode: Mode) -> Option<Hit> {
    let rest = body
        .strip_prefix("Connection closed by ")
        .or_else(|| body.strip_prefix("Connection reset by "))
        .or_else(|| body.strip_prefix("Disconnected from "))
        .or_else(|| body.strip_prefix("Disconnecting "))?;
    // "...: Too many authentication failures" is matched by neither of fail2ban's forms.
    if let Some(i) = rest.find(": ")
        && rest[i..].starts_with(": Too many authentication failures")
    {
        return None;
    }
    let named = ["invalid user ", "authenticating user ", "user "].iter().find_map(|p| rest.strip_prefix(p));
    let (who, addr) = match named {
        // No REASON after the address: the line ends with sshd's own "A port N"; the user
        // name (the client's, or an account's) is everything before it.
        Some(r) if !rest.contains(": ") => {
            let (u, a) = ip_at_end(r)?;
            (Some(u), Some(a))
        }
        // An account name (one word) and a REASON: read forwards.
        Some(r) if !rest.starts_with("invalid ") => {
            let (u, a) = r.split_once(' ')?;
            let (ip, tail) = addr_after(a)?;
            if !matches!(ip, Host::Ip(_)) || !(tail.starts_with(": ") || tail.is_empty()) {
                return None;
            }
            (Some(u), Some(ip))
        }
        // The client's name and a REASON (client text on both sides): the session's address.
        Some(r) => (Some(r.split(' ').next().unwrap_or("")), None),
        None => (None, Some(ip_word(rest)?)),
    };
    let authenticating = rest.starts_with("invalid user ") || rest.starts_with("authenticating user ");
    // Extra mode (not aggressive) knows only "Disconnected from invalid|authenticating user ...
    // [preauth]", as a failure; fail2ban's extra filter has no closed/reset helper at all.
    if mode == Mode::Extra && !(authenticating && preauth && body.starts_with("Disconnected ")) {
        return None;
    }
    let failure = preauth && (mode.ddos() || (mode.extra() && authenticating && body.starts_with("Disconnected ")));
    let role = if failure { Role::Failure } else { Role::Helper };
    forget(hit(Kind::ConnectionClosed, role, addr, who.and_then(user_opt)))
}

/// `A[ port N][: ...]` at the start of `s`: the address only.
fn ip_word(s: &str) -> Option<Host> {
    let w = s.split(' ').next().unwrap_or(s);
    ip_only(w).or_else(|| ip_only(w.strip_suffix(':')?))
}

/// `U A[ port N]` read from its end.
fn ip_at_end(s: &str) -> Option<(&str, Host)> {
    let core = strip_port(s);
    let (u, a) = core.rsplit_once(' ')?;
    Some((u, ip_only(a)?))
}

fn ddos_kind(body: &str) -> Option<Hit> {
    // A patched sshd's "SSH: Server;Ltype: Version|Kex|Authname;Remote: A-PORT;...": only tells
    // the address (fail2ban's ddos helper).
    if let Some(rest) = body.strip_prefix("SSH: Server;Ltype: ") {
        let (lt, rest) = rest.split_once(";Remote: ")?;
        if !["Version", "Kex", "Authname"].contains(&lt) {
            return None;
        }
        let (a, port) = rest.split_once(';')?.0.rsplit_once('-')?;
        if port.is_empty() || !port.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        return hit(Kind::ServerLtype, Role::Helper, Some(parse_host(a)?), None);
    }
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
        return hit(Kind::BadProtocolVersion, Role::Failure, Some(parse_host(tail)?), None);
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
