//! sshd log line parser with fail2ban's `filter.d/sshd.conf` semantics.
//!
//! Not a port of fail2ban's regexes: each message kind is recognised by its fixed text and the
//! address is taken only from the place sshd itself writes it. Where user-controlled text (user
//! name, client banner) comes *before* the address, the message is parsed from its end, peeling
//! off the fixed suffix sshd appends (` [preauth]`, ` ssh2`, ` port N`), so the address is the
//! last token sshd wrote and a user name such as `x from 10.0.0.1 port 22` cannot inject one.
//! Where client text comes *after* the address (disconnect reasons, "Their offer"), the message
//! is parsed from its start. Where user text is on both sides, the text is not trusted at all and
//! the address known for the sshd pid is used instead.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::Serialize;

use crate::addr::parse_ip;

/// fail2ban's `mode` filter parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Normal,
    Ddos,
    Extra,
    Aggressive,
}

impl Mode {
    fn ddos(self) -> bool {
        matches!(self, Mode::Ddos | Mode::Aggressive)
    }
    fn extra(self) -> bool {
        matches!(self, Mode::Extra | Mode::Aggressive)
    }
}

impl FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "normal" => Ok(Mode::Normal),
            "ddos" => Ok(Mode::Ddos),
            "extra" => Ok(Mode::Extra),
            "aggressive" => Ok(Mode::Aggressive),
            other => Err(format!(
                "unknown mode {other:?} (normal, ddos, extra, aggressive)"
            )),
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Normal => "normal",
            Mode::Ddos => "ddos",
            Mode::Extra => "extra",
            Mode::Aggressive => "aggressive",
        })
    }
}

/// The sshd messages the filter knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    // --- normal mode failures ---
    /// `Failed <method> for [invalid user ]U from A port N ssh2`
    Failed,
    /// `Authentication failure|error|failed for U from A`
    AuthFailure,
    /// `User not known to the underlying authentication module for U from A`
    UserNotKnown,
    /// `Invalid user U from A port N` (also `Illegal user`)
    InvalidUser,
    /// `User U from A not allowed because ...` (AllowUsers/DenyUsers/groups)
    NotAllowed,
    /// `User U not allowed because account is locked` (no address)
    AccountLocked,
    /// `ROOT LOGIN REFUSED FROM A`
    RootLoginRefused,
    /// `refused connect from H (A)` (tcpwrappers)
    RefusedConnect,
    /// `Received disconnect from A port N:3: ...: Auth fail`
    DisconnectAuthFail,
    /// `maximum authentication attempts exceeded for U from A port N ssh2`
    MaxAuthAttempts,
    /// `Disconnecting: Too many authentication failures [for U]` (no address)
    TooManyAuthFailures,
    /// `Disconnecting ... user U A port N: Change of username or service not allowed: ...`
    ChangeOfUsername,
    // --- helpers (never failures by themselves in normal mode) ---
    /// `pam_unix(sshd:auth): authentication failure; ... rhost=A` (the `Failed password`
    /// sshd logs for the same attempt is what counts, as in fail2ban's current filter)
    PamAuthFailure,
    /// `Connection from A port N on B port M` (LogLevel VERBOSE)
    ConnectionFrom,
    /// `Connection closed|reset by ...`, `Disconnected from ...`: a failure in ddos/aggressive
    /// mode when `[preauth]`, otherwise only tells the address and ends the session.
    ConnectionClosed,
    /// `Received disconnect from A port N:11: ...` (normal client disconnect)
    DisconnectNormal,
    /// `Accepted <method> for U from A port N ssh2`
    Accepted,
    // --- ddos mode ---
    /// `Did not receive identification string from A` / `Timeout before authentication for A`
    NoIdentification,
    /// `kex_exchange_identification: ...` (no address)
    KexIdentification,
    /// `Bad protocol version identification '...' from A`
    BadProtocolVersion,
    /// `Read from socket failed: Connection reset by peer` (no address)
    ReadSocketFailed,
    /// `banner exchange: Connection from A port N: invalid format` and
    /// `ssh_dispatch_run_fatal: Connection from A port N: ... [preauth]`
    BannerExchange,
    // --- extra mode ---
    /// `Received disconnect from A port N:14: No supported authentication methods available`
    NoAuthMethods,
    /// `Unable to negotiate with A port N: no matching X found.`
    UnableToNegotiate,
    /// `Unable to negotiate a X` / `no matching X found:` (no address)
    NoMatchingAlgorithm,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Failed => "failed",
            Kind::AuthFailure => "auth-failure",
            Kind::UserNotKnown => "user-not-known",
            Kind::InvalidUser => "invalid-user",
            Kind::NotAllowed => "not-allowed",
            Kind::AccountLocked => "account-locked",
            Kind::RootLoginRefused => "root-login-refused",
            Kind::RefusedConnect => "refused-connect",
            Kind::DisconnectAuthFail => "disconnect-auth-fail",
            Kind::MaxAuthAttempts => "max-auth-attempts",
            Kind::TooManyAuthFailures => "too-many-auth-failures",
            Kind::ChangeOfUsername => "change-of-username",
            Kind::PamAuthFailure => "pam-auth-failure",
            Kind::ConnectionFrom => "connection-from",
            Kind::ConnectionClosed => "connection-closed",
            Kind::DisconnectNormal => "disconnect-normal",
            Kind::Accepted => "accepted",
            Kind::NoIdentification => "no-identification",
            Kind::KexIdentification => "kex-identification",
            Kind::BadProtocolVersion => "bad-protocol-version",
            Kind::ReadSocketFailed => "read-socket-failed",
            Kind::BannerExchange => "banner-exchange",
            Kind::NoAuthMethods => "no-auth-methods",
            Kind::UnableToNegotiate => "unable-to-negotiate",
            Kind::NoMatchingAlgorithm => "no-matching-algorithm",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a recognised message means for the jail in the configured mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Counts one failure for the address.
    Failure,
    /// Only tells the session's address (fail2ban's `<F-NOFAIL>`).
    Helper,
    /// Successful login (fail2ban's `<F-MLFGAINED>`): drops the session's pending failures.
    Gained,
}

/// A recognised sshd message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hit {
    pub kind: Kind,
    pub role: Role,
    /// The address sshd wrote, if the message has one at a trusted position.
    pub addr: Option<IpAddr>,
    pub user: Option<String>,
    /// The session ends with this message (fail2ban's `<F-MLFFORGET>`).
    pub forget: bool,
    /// Authentication method for `Failed`/`Accepted`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
}

/// One log line split into its syslog parts and classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedLine {
    /// pid from the syslog tag (`sshd[1234]`), if any.
    pub pid: Option<u32>,
    /// Timestamp text of the prefix, if any.
    pub timestamp: Option<String>,
    /// The message after the prefix (and after `error: `/`fatal: ` levels).
    pub message: String,
    /// `None` when the line is not a message the filter knows in this mode.
    pub hit: Option<Hit>,
}

/// Process names sshd logs under (OpenSSH ≥ 9.8 splits into sshd-session and sshd-auth).
const DAEMONS: [&str; 3] = ["sshd", "sshd-session", "sshd-auth"];

/// Splits off the syslog prefix. Returns `None` when the line has a prefix naming another program.
/// Returns (timestamp, pid, message).
pub fn split_prefix(line: &str) -> Option<(Option<&str>, Option<u32>, &str)> {
    let mut s = line;
    // <PRI> as sent to /dev/log.
    if let Some(rest) = s.strip_prefix('<')
        && let Some(end) = rest.find('>')
        && end > 0
        && end <= 3
        && rest[..end].bytes().all(|c| c.is_ascii_digit())
    {
        s = &rest[end + 1..];
        // RFC 5424: "<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG".
        if let Some(r5424) = s.strip_prefix("1 ") {
            return split_rfc5424(r5424);
        }
    }
    let ts_len = rfc3164_ts_len(s).or_else(|| iso_ts_len(s));
    match ts_len {
        Some(n) => {
            let ts = &s[..n];
            let rest = s[n..].trim_start_matches(' ');
            // Either "TAG: msg" (as sent to /dev/log) or "HOST TAG: msg" (as written to a file).
            if let Some((pid, msg)) = split_tag(rest) {
                return Some((Some(ts), pid, msg));
            }
            let (_host, after) = rest.split_once(' ')?;
            let (pid, msg) = split_tag(after)?;
            Some((Some(ts), pid, msg))
        }
        None => match split_tag(s) {
            Some((pid, msg)) => Some((None, pid, msg)),
            // Bare message, as `sshd -D -e` writes to stderr.
            None => Some((None, None, s)),
        },
    }
}

fn split_rfc5424(s: &str) -> Option<(Option<&str>, Option<u32>, &str)> {
    let mut it = s.splitn(6, ' ');
    let ts = it.next()?;
    let _host = it.next()?;
    let app = it.next()?;
    let procid = it.next()?;
    let _msgid = it.next()?;
    let rest = it.next().unwrap_or("");
    if !DAEMONS.contains(&app) {
        return None;
    }
    // Structured data is "-" or one or more "[...]" blocks; sshd sends none.
    let msg = if let Some(m) = rest.strip_prefix("- ") {
        m
    } else if rest == "-" {
        ""
    } else if rest.starts_with('[') {
        let end = rest.find("] ").map(|i| i + 2).unwrap_or(rest.len());
        &rest[end..]
    } else {
        rest
    };
    let msg = msg.strip_prefix('\u{feff}').unwrap_or(msg);
    Some((Some(ts), procid.parse().ok(), msg))
}

/// "sshd[1234]: msg" or "sshd: msg".
fn split_tag(s: &str) -> Option<(Option<u32>, &str)> {
    let (tag, msg) = s
        .split_once(": ")
        .or_else(|| s.strip_suffix(':').map(|t| (t, "")))?;
    let (name, pid) = match tag.split_once('[') {
        Some((name, p)) => {
            let p = p.strip_suffix(']')?;
            (name, Some(p.parse::<u32>().ok()?))
        }
        None => (tag, None),
    };
    DAEMONS.contains(&name).then_some((pid, msg))
}

/// "Nov 24 13:22:29" / "Nov  4 13:22:29" (optionally with a year or fraction, as some daemons write).
fn rfc3164_ts_len(s: &str) -> Option<usize> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let b = s.as_bytes();
    if b.len() < 15 || !MONTHS.contains(&s.get(..3)?) || b[3] != b' ' {
        return None;
    }
    let day_ok = (b[4] == b' ' || b[4].is_ascii_digit()) && b[5].is_ascii_digit() && b[6] == b' ';
    let t = &b[7..15];
    let time_ok =
        t[2] == b':' && t[5] == b':' && [0, 1, 3, 4, 6, 7].iter().all(|&i| t[i].is_ascii_digit());
    if !(day_ok && time_ok) {
        return None;
    }
    let mut n = 15;
    if b.get(n) == Some(&b'.') {
        n += 1;
        while b.get(n).is_some_and(u8::is_ascii_digit) {
            n += 1;
        }
    }
    (b.get(n) == Some(&b' ')).then_some(n)
}

/// "2026-11-24T13:22:29.123456+00:00" (rsyslog's RFC3339 file format) followed by a space.
fn iso_ts_len(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    if b.len() < 20 {
        return None;
    }
    let shape = b"dddd-dd-ddTdd:dd:dd";
    for (i, &c) in shape.iter().enumerate() {
        let ok = if c == b'd' {
            b[i].is_ascii_digit()
        } else {
            b[i] == c || (c == b'T' && b[i] == b' ')
        };
        if !ok {
            return None;
        }
    }
    let end = s.find(' ').filter(|&e| e >= 19)?;
    // If 'T' was a space the date and time are two words: find the next space.
    let end = if b[10] == b' ' {
        11 + s[11..].find(' ')?
    } else {
        end
    };
    let tail = &s[19..end];
    tail.bytes()
        .all(|c| c.is_ascii_digit() || b".+-:Z".contains(&c))
        .then_some(end)
}

/// Parses one log line. `mode` decides which message kinds count as failures.
pub fn parse_line(line: &str, mode: Mode) -> Option<ParsedLine> {
    let line = line.trim_end_matches(['\n', '\r', '\0']);
    let (ts, pid, msg) = split_prefix(line)?;
    let msg = strip_level(msg.trim_end());
    Some(ParsedLine {
        pid,
        timestamp: ts.map(str::to_string),
        message: msg.to_string(),
        hit: classify(msg, mode),
    })
}

/// fail2ban's `__pref`: `error: `, `fatal: `, optionally followed by `PAM: `.
fn strip_level(msg: &str) -> &str {
    let m = msg
        .strip_prefix("error: ")
        .or_else(|| msg.strip_prefix("fatal: "))
        .unwrap_or(msg);
    m.strip_prefix("PAM: ").unwrap_or(m)
}

fn hit(kind: Kind, role: Role, addr: Option<IpAddr>, user: Option<&str>) -> Option<Hit> {
    Some(Hit {
        kind,
        role,
        addr,
        user: user.map(str::to_string),
        forget: false,
        method: None,
    })
}

fn forget(mut h: Option<Hit>) -> Option<Hit> {
    if let Some(h) = h.as_mut() {
        h.forget = true;
    }
    h
}

/// Peels sshd's fixed tail off `s` and returns (head, address): `HEAD ADDR[ port N]`.
/// The address is the last word once the optional ` port N` is gone, so nothing a client
/// typed before it can be mistaken for it.
fn addr_at_end(s: &str) -> Option<(&str, IpAddr)> {
    let s = strip_port(s);
    let (head, last) = s.rsplit_once(' ')?;
    Some((head, parse_ip(last)?))
}

/// Strips one trailing ` port N`.
fn strip_port(s: &str) -> &str {
    if let Some((head, n)) = s.rsplit_once(" port ")
        && !n.is_empty()
        && n.len() <= 5
        && n.bytes().all(|c| c.is_ascii_digit())
    {
        return head;
    }
    s
}

/// `HEAD from ADDR[ port N]`: the head must end with ` from`.
fn from_addr_at_end(s: &str) -> Option<(&str, IpAddr)> {
    let (head, ip) = addr_at_end(s)?;
    Some((head.strip_suffix(" from")?, ip))
}

/// The address right after a fixed prefix: `PREFIX ADDR[ port N]...`. Only for messages whose
/// text before the address is entirely sshd's own.
fn addr_after(rest: &str) -> Option<(IpAddr, &str)> {
    let end = rest.find([' ', ':', ',']).unwrap_or(rest.len());
    let ip = parse_ip(&rest[..end])?;
    let mut tail = &rest[end..];
    if let Some(t) = tail.strip_prefix(" port ") {
        let n = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        if n == 0 {
            return None;
        }
        tail = &t[n..];
    }
    Some((ip, tail))
}

fn strip_preauth(s: &str) -> (&str, bool) {
    match s.strip_suffix(" [preauth]") {
        Some(h) => (h.trim_end(), true),
        None => (s, false),
    }
}

/// A user name field: empty is no user.
fn user_opt(u: &str) -> Option<&str> {
    (!u.is_empty()).then_some(u)
}

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
    if let Some(rest) = body
        .strip_prefix("Invalid user ")
        .or_else(|| body.strip_prefix("Illegal user "))
    {
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
    if let Some(rest) =
        body.strip_prefix("User not known to the underlying authentication module for ")
    {
        let (user, ip) = from_addr_at_end(rest).or_else(|| addr_at_end(rest))?;
        return hit(Kind::UserNotKnown, Role::Failure, Some(ip), user_opt(user));
    }
    if let Some(rest) = body.strip_prefix("User ") {
        return user_not_allowed(rest);
    }
    if let Some(rest) = body.strip_prefix("ROOT LOGIN REFUSED FROM ") {
        let (ip, _) = addr_after(rest)?;
        return hit(
            Kind::RootLoginRefused,
            Role::Failure,
            Some(ip),
            Some("ROOT"),
        );
    }
    if let Some(rest) = body.strip_prefix("refused connect from ") {
        // "refused connect from NAME (A)": NAME is a resolved host name, take the parenthesis.
        let inner = rest.strip_suffix(')')?;
        let (_, a) = inner.rsplit_once(" (")?;
        return hit(
            Kind::RefusedConnect,
            Role::Failure,
            Some(parse_ip(a)?),
            None,
        );
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
        return hit(
            Kind::MaxAuthAttempts,
            Role::Failure,
            Some(ip),
            user_opt(user),
        );
    }
    if let Some(rest) = body.strip_prefix("Disconnecting: Too many authentication failures") {
        let user = rest.strip_prefix(" for ").filter(|u| !u.is_empty());
        // fail2ban forgets the session only on the later "Connection closed".
        return hit(Kind::TooManyAuthFailures, Role::Failure, None, user);
    }
    if body.starts_with("Disconnecting ")
        && body.contains(": Change of username or service not allowed: ")
    {
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
        if body.starts_with("Unable to negotiate a ")
            || (body.starts_with("no matching ") && body.contains(" found:"))
        {
            return hit(Kind::NoMatchingAlgorithm, Role::Failure, None, None);
        }
    }
    None
}

/// `Failed METHOD for [invalid user ]U from A port N ssh2[: KEYINFO]` and the `Accepted` twin.
fn failed_or_accepted(body: &str) -> Option<Hit> {
    let accepted = body.starts_with("Accepted ");
    let rest = body
        .strip_prefix("Failed ")
        .or_else(|| body.strip_prefix("Accepted "))?;
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
        (
            core.split(' ')
                .nth(if invalid { 2 } else { 0 })
                .unwrap_or(""),
            invalid,
            None,
        )
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
    let user = words
        .next()
        .and_then(|w| w.strip_prefix("user="))
        .filter(|u| !u.is_empty());
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
    let authenticating =
        who.starts_with("invalid user ") || who.starts_with("authenticating user ");
    let failure = preauth
        && (mode.ddos() || (mode.extra() && authenticating && body.starts_with("Disconnected ")));
    let role = if failure { Role::Failure } else { Role::Helper };
    forget(hit(
        Kind::ConnectionClosed,
        role,
        Some(ip),
        user.and_then(user_opt),
    ))
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
        return hit(
            Kind::BadProtocolVersion,
            Role::Failure,
            Some(parse_ip(tail)?),
            None,
        );
    }
    if body.starts_with("Read from socket failed: Connection reset by peer") {
        return forget(hit(Kind::ReadSocketFailed, Role::Failure, None, None));
    }
    for p in [
        "banner exchange: Connection from ",
        "ssh_dispatch_run_fatal: Connection from ",
    ] {
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

#[cfg(test)]
mod tests {
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
            assert_eq!(
                p.hit.as_ref().map(|h| (h.kind, h.addr)),
                Some((Kind::Failed, ip("192.0.2.7"))),
                "{l}"
            );
        }
        let bare = parse_line(
            "Failed password for root from 192.0.2.7 port 4242 ssh2\n",
            Mode::Normal,
        )
        .unwrap();
        assert_eq!(bare.pid, None);
        assert_eq!(bare.hit.unwrap().addr, ip("192.0.2.7"));
        // Another program's line is not sshd's, even if its text looks like it.
        assert!(
            parse_line(
                "Nov 24 13:22:29 host sudo[1]: Failed password for root from 192.0.2.7 port 1 ssh2",
                Mode::Normal
            )
            .is_none()
        );
        assert!(
            parse_line(
                "<38>Nov 24 13:22:29 evil[1]: Invalid user x from 192.0.2.7 port 1",
                Mode::Normal
            )
            .is_none()
        );
        assert!(
            parse_line(
                "<38>1 2026-11-24T13:22:29Z h cron 1 - - Invalid user x from 192.0.2.7",
                Mode::Normal
            )
            .is_none()
        );
        // Level prefixes.
        let p = parse_line("sshd[9]: error: maximum authentication attempts exceeded for root from 192.0.2.7 port 1 ssh2 [preauth]", Mode::Normal).unwrap();
        assert_eq!(p.hit.unwrap().kind, Kind::MaxAuthAttempts);
    }

    #[test]
    fn normal_mode_failures() {
        let n = Mode::Normal;
        let cases: &[(&str, Kind, &str, Option<&str>)] = &[
            (
                "Failed password for root from 192.0.2.7 port 4242 ssh2",
                Kind::Failed,
                "192.0.2.7",
                Some("root"),
            ),
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
            (
                "Failed none for invalid user x from 192.0.2.7 port 1 ssh2",
                Kind::Failed,
                "192.0.2.7",
                Some("x"),
            ),
            (
                "Failed publickey for invalid user graysky from 192.0.2.7 port 37954 ssh2: RSA SHA256:v3dpapGleDaUKf$4V1vKyR9ZyUgjaJAmoCTcb2PLljI",
                Kind::Failed,
                "192.0.2.7",
                Some("graysky"),
            ),
            (
                "Failed password for root from 2001:db8::7 port 4242 ssh2",
                Kind::Failed,
                "2001:db8::7",
                Some("root"),
            ),
            (
                "Failed password for root from ::ffff:192.0.2.7 port 4242 ssh2",
                Kind::Failed,
                "192.0.2.7",
                Some("root"),
            ),
            (
                "Invalid user admin from 192.0.2.7 port 4242",
                Kind::InvalidUser,
                "192.0.2.7",
                Some("admin"),
            ),
            (
                "Invalid user admin 192.0.2.7 port 4242",
                Kind::InvalidUser,
                "192.0.2.7",
                Some("admin"),
            ),
            (
                "Illegal user test from 192.0.2.7",
                Kind::InvalidUser,
                "192.0.2.7",
                Some("test"),
            ),
            (
                "Invalid user  from 192.0.2.7 port 1",
                Kind::InvalidUser,
                "192.0.2.7",
                None,
            ),
            (
                "Authentication failure for root from 192.0.2.7",
                Kind::AuthFailure,
                "192.0.2.7",
                Some("root"),
            ),
            (
                "error: PAM: Authentication failure for root from 192.0.2.7",
                Kind::AuthFailure,
                "192.0.2.7",
                Some("root"),
            ),
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
            (
                "User root from 192.0.2.7 not allowed because not in any group",
                Kind::NotAllowed,
                "192.0.2.7",
                Some("root"),
            ),
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
            (
                "ROOT LOGIN REFUSED FROM 192.0.2.7",
                Kind::RootLoginRefused,
                "192.0.2.7",
                Some("ROOT"),
            ),
            (
                "refused connect from evil.example (192.0.2.7)",
                Kind::RefusedConnect,
                "192.0.2.7",
                None,
            ),
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
            (
                "Disconnecting: Too many authentication failures for root [preauth]",
                Kind::TooManyAuthFailures,
            ),
            (
                "Disconnecting: Too many authentication failures [preauth]",
                Kind::TooManyAuthFailures,
            ),
            (
                "User bob not allowed because account is locked",
                Kind::AccountLocked,
            ),
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
        let h = c(
            "Connection from 192.0.2.7 port 4242 on 10.0.0.1 port 22 rdomain \"\"",
            n,
        )
        .unwrap();
        assert_eq!(
            (h.kind, h.role, h.addr),
            (Kind::ConnectionFrom, Role::Helper, ip("192.0.2.7"))
        );
        let h = c("pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=192.0.2.7  user=root", n).unwrap();
        assert_eq!(
            (h.kind, h.role, h.addr, h.user.as_deref()),
            (
                Kind::PamAuthFailure,
                Role::Helper,
                ip("192.0.2.7"),
                Some("root")
            )
        );
        let h = c(
            "Failed publickey for git from 192.0.2.7 port 57904 ssh2: ECDSA SHA256:abc",
            n,
        )
        .unwrap();
        assert_eq!((h.kind, h.role), (Kind::Failed, Role::Helper));
        let h = c(
            "Accepted password for root from 192.0.2.7 port 4242 ssh2",
            n,
        )
        .unwrap();
        assert_eq!(
            (h.kind, h.role, h.addr, h.forget),
            (Kind::Accepted, Role::Gained, ip("192.0.2.7"), true)
        );
        let h = c(
            "Accepted publickey for git from 192.0.2.7 port 1 ssh2: ED25519 SHA256:xyz",
            n,
        )
        .unwrap();
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
            assert_eq!(
                (h.role, h.addr, h.forget),
                (Role::Helper, ip("192.0.2.7"), true),
                "{m}"
            );
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
            (
                "Did not receive identification string from 192.0.2.7 port 1",
                Kind::NoIdentification,
                ip("192.0.2.7"),
            ),
            (
                "Did not receive identification string from 192.0.2.7",
                Kind::NoIdentification,
                ip("192.0.2.7"),
            ),
            (
                "Timeout before authentication for 192.0.2.7 port 1",
                Kind::NoIdentification,
                ip("192.0.2.7"),
            ),
            (
                "Timeout before authentication for connection from 192.0.2.7 to 10.0.0.1, pid = 123",
                Kind::NoIdentification,
                ip("192.0.2.7"),
            ),
            (
                "kex_exchange_identification: read: Connection reset by peer",
                Kind::KexIdentification,
                None,
            ),
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
            (
                "Read from socket failed: Connection reset by peer [preauth]",
                Kind::ReadSocketFailed,
                None,
            ),
            (
                "banner exchange: Connection from 192.0.2.7 port 1: invalid format",
                Kind::BannerExchange,
                ip("192.0.2.7"),
            ),
            (
                "ssh_dispatch_run_fatal: Connection from 192.0.2.7 port 1: message authentication code incorrect [preauth]",
                Kind::BannerExchange,
                ip("192.0.2.7"),
            ),
            (
                "Connection closed by 192.0.2.7 port 1 [preauth]",
                Kind::ConnectionClosed,
                ip("192.0.2.7"),
            ),
            (
                "Connection reset by 192.0.2.7 port 1 [preauth]",
                Kind::ConnectionClosed,
                ip("192.0.2.7"),
            ),
            (
                "Connection closed by invalid user x 192.0.2.7 port 1 [preauth]",
                Kind::ConnectionClosed,
                ip("192.0.2.7"),
            ),
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
            (
                "fatal: Unable to negotiate a key exchange method [preauth]",
                Kind::NoMatchingAlgorithm,
                None,
            ),
            (
                "no matching cipher found: client aes128-cbc server aes256-ctr",
                Kind::NoMatchingAlgorithm,
                None,
            ),
            (
                "Disconnected from authenticating user root 192.0.2.7 port 1 [preauth]",
                Kind::ConnectionClosed,
                ip("192.0.2.7"),
            ),
        ];
        for (m, k, a) in &ddos {
            assert_eq!(
                (fail(m, Mode::Ddos).0, fail(m, Mode::Ddos).1),
                (*k, *a),
                "{m}"
            );
            assert_eq!(
                (fail(m, Mode::Aggressive).0, fail(m, Mode::Aggressive).1),
                (*k, *a),
                "{m}"
            );
            assert!(
                c(m, Mode::Normal).is_none_or(|h| h.role != Role::Failure),
                "normal: {m}"
            );
        }
        for (m, k, a) in &extra {
            assert_eq!(
                (fail(m, Mode::Extra).0, fail(m, Mode::Extra).1),
                (*k, *a),
                "{m}"
            );
            assert_eq!(
                (fail(m, Mode::Aggressive).0, fail(m, Mode::Aggressive).1),
                (*k, *a),
                "{m}"
            );
            assert!(
                c(m, Mode::Normal).is_none_or(|h| h.role != Role::Failure),
                "normal: {m}"
            );
        }
        // Closed without [preauth] is only a helper even in ddos mode.
        assert_eq!(
            c("Connection closed by 192.0.2.7 port 1", Mode::Ddos)
                .unwrap()
                .role,
            Role::Helper
        );
    }

    #[test]
    fn injection_never_yields_the_injected_address() {
        let evil = ip("10.0.0.1");
        let real = ip("192.0.2.7");
        let cases = [
            "Failed password for invalid user x from 10.0.0.1 port 22 from 192.0.2.7 port 4242 ssh2",
            "Failed password for invalid user x from 10.0.0.1 port 22 ssh2 from 192.0.2.7 port 4242 ssh2",
            "Failed password for x from 10.0.0.1 port 22 ssh2 from 192.0.2.7 port 4242 ssh2",
            "Failed publickey for invalid user x from 10.0.0.1 port 22 ssh2: RSA SHA256:a from 192.0.2.7 port 4242 ssh2: RSA SHA256:b",
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
        let h = c("Received disconnect from 192.0.2.7 port 1:3: from 10.0.0.1 port 22: Auth fail [preauth]", Mode::Normal).unwrap();
        assert_eq!(h.addr, real);
        // Where client text surrounds the address, no address is taken from the text at all.
        for m in [
            "Failed publickey for invalid user x from 192.0.2.9 port 1 ssh2: RSA-CERT SHA256:a ID k ssh2: RSA SHA256:b from 10.0.0.1 port 22 ssh2: RSA SHA256:c (serial 1) CA ED25519 SHA256:d",
            "Disconnecting invalid user x 10.0.0.1 port 22: Change of username or service not allowed: (a,b) -> (c,d) [preauth]",
        ] {
            let h = c(m, Mode::Normal).unwrap();
            assert_ne!(h.addr, evil, "{m}");
            assert_eq!(h.addr, None, "{m}");
        }
        // Connection closed with a user name that ends in an address.
        let h = c(
            "Connection closed by invalid user 10.0.0.1 192.0.2.7 port 1 [preauth]",
            Mode::Ddos,
        )
        .unwrap();
        assert_eq!(h.addr, real);
        // A user name alone cannot fake a whole line.
        assert!(
            c(
                "Failed password for x from 10.0.0.1 port 22 ssh2 extra",
                Mode::Normal
            )
            .is_none_or(|h| h.addr != evil)
        );
    }
}
