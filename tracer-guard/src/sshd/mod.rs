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

mod classify;
mod fields;
#[cfg(test)]
mod forms_tests;
#[cfg(test)]
mod hostile_tests;
mod prefix;
#[cfg(test)]
mod tests;

pub use classify::classify;
pub use prefix::{Prefix, split, split_prefix};

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
            other => Err(format!("unknown mode {other:?} (normal, ddos, extra, aggressive)")),
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
    /// `SSH: Server;Ltype: ...;Remote: A-PORT;...` (a patched sshd; only tells the address)
    ServerLtype,
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
            Kind::ServerLtype => "server-ltype",
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
    /// A host name sshd wrote there instead (`UseDNS yes`), resolved per `usedns` by the jail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
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
    /// The host the prefix names, if any.
    pub host: Option<String>,
    /// Timestamp text of the prefix, if any.
    pub timestamp: Option<String>,
    /// The message after the prefix (and after `error: `/`fatal: ` levels).
    pub message: String,
    /// `None` when the line is not a message the filter knows in this mode.
    pub hit: Option<Hit>,
}

/// Parses one log line. `mode` decides which message kinds count as failures.
pub fn parse_line(line: &str, mode: Mode) -> Option<ParsedLine> {
    let line = line.trim_end_matches(['\n', '\r', '\0']);
    let p = split(line)?;
    let msg = strip_level(p.msg.trim_end());
    Some(ParsedLine {
        pid: p.pid,
        host: p.host.map(str::to_string),
        timestamp: p.ts.map(str::to_string),
        message: msg.to_string(),
        hit: classify(msg, mode),
    })
}

impl ParsedLine {
    /// The session this line belongs to (fail2ban's multi-line failure id): its sshd pid on
    /// its host. None without a pid.
    pub fn session(&self) -> Option<u64> {
        use std::hash::{Hash, Hasher};
        let pid = self.pid?;
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (self.host.as_deref().unwrap_or(""), pid).hash(&mut h);
        Some(h.finish())
    }
}

/// fail2ban's `__pref`: `error: `, `fatal: `, optionally followed by `PAM: `.
fn strip_level(msg: &str) -> &str {
    let m = msg.strip_prefix("error: ").or_else(|| msg.strip_prefix("fatal: ")).unwrap_or(msg);
    m.strip_prefix("PAM: ").unwrap_or(m)
}
