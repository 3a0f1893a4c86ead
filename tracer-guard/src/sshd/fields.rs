//! Building blocks of [`classify()`](fn@super::classify): [`Hit`] constructors and the fields sshd
//! writes around a message (address, ` port N`, ` [preauth]`, user name).

use super::{Hit, Kind, Role};
use crate::addr::{Host, parse_host, parse_ip};

pub(super) fn hit(kind: Kind, role: Role, host: Option<Host>, user: Option<&str>) -> Option<Hit> {
    let (addr, name) = match host {
        Some(Host::Ip(ip)) => (Some(ip), None),
        Some(Host::Name(n)) => (None, Some(n)),
        None => (None, None),
    };
    Some(Hit { kind, role, addr, host: name, user: user.map(str::to_string), forget: false, method: None })
}

/// An address only (fail2ban's `<ADDR>`), as a [`Host`].
pub(super) fn ip_only(s: &str) -> Option<Host> {
    parse_ip(s).map(Host::Ip)
}

pub(super) fn forget(mut h: Option<Hit>) -> Option<Hit> {
    if let Some(h) = h.as_mut() {
        h.forget = true;
    }
    h
}

/// Peels sshd's fixed tail off `s` and returns (head, address): `HEAD ADDR[ port N]`.
/// The address is the last word once the optional ` port N` is gone, so nothing a client
/// typed before it can be mistaken for it.
pub(super) fn addr_at_end(s: &str) -> Option<(&str, Host)> {
    let s = strip_port(s);
    let (head, last) = s.rsplit_once(' ')?;
    Some((head, parse_host(last)?))
}

/// Strips one trailing ` port N`.
pub(super) fn strip_port(s: &str) -> &str {
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
pub(super) fn from_addr_at_end(s: &str) -> Option<(&str, Host)> {
    let (head, ip) = addr_at_end(s)?;
    Some((head.strip_suffix(" from")?, ip))
}

/// The address right after a fixed prefix: `PREFIX ADDR[ port N]...`. Only for messages whose
/// text before the address is entirely sshd's own.
pub(super) fn addr_after(rest: &str) -> Option<(Host, &str)> {
    // An IPv6 address holds colons: try the whole word first, then up to a ':' or ','.
    let word = rest.find([' ', ',']).unwrap_or(rest.len());
    let (ip, end) = match parse_host(&rest[..word]) {
        Some(h) => (h, word),
        None => {
            let end = rest.find([' ', ':', ',']).unwrap_or(rest.len());
            (parse_host(&rest[..end])?, end)
        }
    };
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

pub(super) fn strip_preauth(s: &str) -> (&str, bool) {
    match s.strip_suffix(" [preauth]") {
        Some(h) => (h.trim_end(), true),
        None => (s, false),
    }
}

/// A user name field: empty is no user.
pub(super) fn user_opt(u: &str) -> Option<&str> {
    (!u.is_empty()).then_some(u)
}
