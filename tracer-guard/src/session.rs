//! Per-sshd-pid sessions (fail2ban's multi-line failure id), shared by the jail and test-log.
//!
//! A session remembers the peer address from any earlier line of the pid that named it, so
//! messages without one (`Disconnecting: Too many authentication failures`) are counted for
//! it; a failure whose address is not yet known waits until a later line names it, and then
//! counts once with that line. As fail2ban
//! does, once a session has seen more than one user name, its helper lines (PAM failures,
//! refused keys, even a login) count as failures: an intruder cannot hide guesses behind a
//! successful login as another user.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::sshd::{Hit, Kind, Role};

/// Sessions kept at most (a flood of connections must not grow memory without bound).
pub const MAX_SESSIONS: usize = 65_536;
/// Pending failures kept per session.
const MAX_PENDING: usize = 32;
/// Distinct user names remembered per session (two are enough to decide; a few for display).
const MAX_USERS: usize = 4;

#[derive(Debug)]
struct Session<T> {
    addr: Option<IpAddr>,
    pending: Vec<T>,
    users: Vec<String>,
    last: i64,
}

impl<T> Default for Session<T> {
    fn default() -> Self {
        Session { addr: None, pending: Vec::new(), users: Vec::new(), last: 0 }
    }
}

/// What one line means once the session is taken into account.
#[derive(Debug)]
pub struct Step<T> {
    /// The address the line is charged to (its own, else the session's).
    pub addr: Option<IpAddr>,
    /// The line counts as one failure: by itself, or because it gives the address that earlier
    /// failures of the session waited for (`released`). As in fail2ban, those are merged into
    /// this one failure (one ticket), not counted again.
    pub failure: bool,
    /// Earlier failures of the session that waited for an address, merged into this line's.
    pub released: Vec<T>,
}

#[derive(Debug)]
pub struct Sessions<T> {
    map: HashMap<u64, Session<T>>,
    /// Seconds an idle session is kept.
    ttl: i64,
}

impl<T> Sessions<T> {
    pub fn new(ttl: i64) -> Self {
        Sessions { map: HashMap::new(), ttl }
    }

    /// Applies one classified line of session `pid` (a kernel pid, or a text line's
    /// [`crate::sshd::ParsedLine::session`]). `named` is the address the line itself gives
    /// (`None` also when it names a host that did not resolve: `unresolved`, which is never
    /// charged to the session's address). `pending` makes the token kept for a failure that
    /// has to wait for its address.
    pub fn step(
        &mut self,
        pid: Option<u64>,
        hit: &Hit,
        named: Option<IpAddr>,
        unresolved: bool,
        now: i64,
        pending: impl FnOnce() -> T,
    ) -> Step<T> {
        let Some(pid) = pid else {
            return Step { addr: named, failure: hit.role == Role::Failure, released: Vec::new() };
        };
        if self.map.len() >= MAX_SESSIONS && !self.map.contains_key(&pid) {
            self.prune(now, true);
        }
        // A new connection on a reused pid starts afresh.
        // So is a line naming another address than the session's: an sshd process serves one
        // connection, and sshd at LogLevel INFO logs no `Connection from`. Without this an
        // intruder's user names would turn the next user's login on that pid into failures.
        let other = |s: &Session<T>| matches!((s.addr, named), (Some(a), Some(b)) if a != b);
        if hit.kind == Kind::ConnectionFrom || self.map.get(&pid).is_some_and(other) {
            self.map.remove(&pid);
        }
        let s = self.map.entry(pid).or_default();
        s.last = now;
        if let Some(u) = &hit.user
            && !s.users.contains(u)
            && s.users.len() < MAX_USERS
        {
            s.users.push(u.clone());
        }
        let failure = hit.role == Role::Failure || s.users.len() > 1;
        let addr = match named {
            Some(a) => {
                s.addr = Some(a);
                Some(a)
            }
            None if unresolved => None,
            None => s.addr,
        };
        let mut released = if addr.is_some() { std::mem::take(&mut s.pending) } else { Vec::new() };
        if failure && addr.is_none() && !unresolved && s.pending.len() < MAX_PENDING {
            s.pending.push(pending());
        }
        if hit.role == Role::Gained && !failure {
            released.clear();
        }
        let failure = failure || !released.is_empty();
        if hit.forget {
            self.map.remove(&pid);
        }
        Step { addr, failure, released }
    }

    /// The address known for `pid`, if any.
    pub fn addr(&self, pid: u64) -> Option<IpAddr> {
        self.map.get(&pid).and_then(|s| s.addr)
    }

    /// Forgets idle sessions; `force` halves a still full table.
    pub fn prune(&mut self, now: i64, force: bool) {
        let ttl = self.ttl;
        self.map.retain(|_, s| s.last > now.saturating_sub(ttl));
        if force && self.map.len() >= MAX_SESSIONS {
            let mut lasts: Vec<i64> = self.map.values().map(|s| s.last).collect();
            lasts.sort_unstable();
            let cut = lasts[lasts.len() / 2];
            self.map.retain(|_, s| s.last > cut);
        }
    }
}
