//! Failure counting and ban policy of one jail (no I/O: the [`crate::Guard`] applies the result).
//!
//! Text lines go through per-pid [`Sessions`] (fail2ban's multi-line failure id): messages
//! without an address are counted for the pid's known address, or wait until a line names it.
//!
//! Successful logins (`Accepted ...`), as in fail2ban: they drop the session's *pending*
//! failures (those still waiting for an address) and end the session, but failures already
//! counted for the address stay counted — a login does not reset an address's failure count.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

use crate::addr::{Host, IgnoreList, Resolver, UseDns, normalize};
use crate::config::{Increment, JailConfig};
use crate::event::Event;
use crate::session::Sessions;
use crate::sshd::{Hit, Kind, Mode, Role, parse_line};

/// Settings the jail runs with (derived from [`JailConfig`]).
#[derive(Debug, Clone)]
pub struct JailSettings {
    pub name: String,
    pub mode: Mode,
    pub usedns: UseDns,
    pub maxretry: u32,
    pub findtime: i64,
    pub bantime: i64,
    pub increment: Increment,
    pub ignore: IgnoreList,
}

impl JailSettings {
    pub fn from_config(c: &JailConfig) -> Self {
        JailSettings {
            name: c.name.clone(),
            mode: c.mode,
            usedns: c.usedns,
            maxretry: c.maxretry,
            findtime: c.findtime,
            bantime: c.bantime,
            increment: c.increment.clone(),
            ignore: IgnoreList::new(c.ignoreip.clone(), c.ignoreself),
        }
    }

    /// Ban time for an address banned `prev` times before (fail2ban's default formula):
    /// `bantime * 2^min(prev, 20) * factor` (or `bantime * factor * multipliers[min(prev, n-1)]`),
    /// never below `bantime`, capped by `bantime.maxtime`. First bans and permanent bans are
    /// not changed.
    pub fn ban_time(&self, prev: u32) -> i64 {
        let base = self.bantime;
        let inc = &self.increment;
        if base < 0 || !inc.enabled || prev == 0 {
            return base;
        }
        let t = if inc.multipliers.is_empty() {
            (base as f64 * (1u64 << prev.min(20)) as f64 * inc.factor).max(base as f64)
        } else {
            let m = inc.multipliers[(prev as usize).min(inc.multipliers.len() - 1)];
            base as f64 * inc.factor * m
        };
        let t = match inc.maxtime {
            Some(max) => t.min(max as f64),
            None => t,
        };
        (t.round() as i64).clamp(1, i64::MAX / 4)
    }
}

/// Where a line comes from, which decides where its address is taken from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A text source (log file, test-log): pid from the syslog tag, address from sshd's own text.
    Text,
    /// Captured in the kernel from a trusted sshd process: `peer` is the remote address of the
    /// connection socket that process holds, read by the kernel (None: none or several). The text
    /// only classifies the message; no address is ever parsed from it.
    Kernel { pid: u32, peer: Option<IpAddr> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActiveBan {
    pub time: i64,
    /// Seconds; negative: permanent.
    pub bantime: i64,
    pub count: u32,
}

impl ActiveBan {
    pub fn end(&self) -> Option<i64> {
        (self.bantime >= 0).then(|| self.time.saturating_add(self.bantime))
    }
    pub fn remaining(&self, now: i64) -> Option<i64> {
        self.end().map(|e| (e - now).max(0))
    }
}

#[derive(Debug)]
pub struct Jail {
    pub settings: JailSettings,
    failures: HashMap<IpAddr, VecDeque<i64>>,
    sessions: Sessions<(Kind, Option<String>)>,
    banned: HashMap<IpAddr, ActiveBan>,
    /// Bans each address had so far (persisted by the caller).
    ban_counts: HashMap<IpAddr, u32>,
    pub total_failed: u64,
    pub total_banned: u64,
    /// Failures from the kernel source whose process held no (or more than one) peer socket:
    /// counted here, charged to no address.
    pub unattributed: u64,
    resolver: Resolver,
}

impl Jail {
    pub fn new(settings: JailSettings) -> Self {
        Jail {
            sessions: Sessions::new(settings.findtime.max(600)),
            settings,
            failures: HashMap::new(),
            banned: HashMap::new(),
            ban_counts: HashMap::new(),
            total_failed: 0,
            total_banned: 0,
            unattributed: 0,
            resolver: Resolver::default(),
        }
    }

    pub fn name(&self) -> &str {
        &self.settings.name
    }

    /// Seeds the repeat-offender counts (from the state database).
    pub fn set_ban_counts(&mut self, counts: HashMap<IpAddr, u32>) {
        self.ban_counts = counts;
    }

    /// Re-installs a ban that survived a restart.
    pub fn restore_ban(&mut self, ip: IpAddr, ban: ActiveBan) -> Event {
        self.banned.insert(ip, ban);
        let c = self.ban_counts.entry(ip).or_default();
        *c = (*c).max(ban.count);
        Event::Ban { ip, time: ban.time, bantime: ban.bantime, count: ban.count, restored: true }
    }

    /// Feeds one log line. With [`Origin::Text`] the pid is the syslog tag's and the address
    /// sshd's own text; with [`Origin::Kernel`] the text only classifies the message and the
    /// failure is charged to the kernel's `peer` (or to no one).
    pub fn feed(&mut self, line: &[u8], origin: Origin, now: i64) -> Vec<Event> {
        let text = String::from_utf8_lossy(line);
        let Some(mut parsed) = parse_line(&text, self.settings.mode) else {
            return Vec::new();
        };
        let Some(mut hit) = parsed.hit.take() else {
            return Vec::new();
        };
        match origin {
            Origin::Text => {
                // A host name (sshd's UseDNS): the failure goes to every address it resolves
                // to under `usedns`, or to no one — never to the session's earlier address.
                let (named, more, unresolved) = match hit.host.take() {
                    Some(name) => {
                        let mut ips = self.resolver.resolve(&Host::Name(name), self.settings.usedns, now);
                        let first = (!ips.is_empty()).then(|| ips.remove(0));
                        (first, ips, first.is_none())
                    }
                    None => (hit.addr, Vec::new(), false),
                };
                let mut out = self.feed_hit(&hit, parsed.session(), named, unresolved, now);
                if out.iter().any(|e| matches!(e, Event::Found { .. } | Event::Ignored { .. })) {
                    for ip in more {
                        self.failure(ip, hit.kind, hit.user.clone(), now, &mut out);
                    }
                }
                out
            }
            Origin::Kernel { pid, peer } => {
                // The text only classifies: the failure is the kernel peer's, or no one's.
                let Some(ip) = peer.map(normalize) else {
                    if hit.role == Role::Failure {
                        self.unattributed += 1;
                    }
                    return Vec::new();
                };
                self.feed_hit(&hit, Some(u64::from(pid)), Some(ip), false, now)
            }
        }
    }

    /// Applies one classified text line through the pid's session.
    fn feed_hit(
        &mut self,
        hit: &Hit,
        pid: Option<u64>,
        named: Option<IpAddr>,
        unresolved: bool,
        now: i64,
    ) -> Vec<Event> {
        let step = self.sessions.step(pid, hit, named, unresolved, now, || (hit.kind, hit.user.clone()));
        let mut out = Vec::new();
        if let Some(ip) = step.addr
            && step.failure
        {
            // A helper line that only gave the address: the failure is the waiting one's.
            let (kind, user) = match step.released.into_iter().next() {
                Some(p) if hit.role != Role::Failure => p,
                _ => (hit.kind, hit.user.clone()),
            };
            self.failure(ip, kind, user, now, &mut out);
        }
        out
    }

    fn failure(&mut self, ip: IpAddr, kind: Kind, user: Option<String>, now: i64, out: &mut Vec<Event>) {
        if let Some(reason) = self.settings.ignore.check(&ip) {
            out.push(Event::Ignored { ip, reason });
            return;
        }
        self.total_failed += 1;
        out.push(Event::Found { ip, kind, user, time: now });
        if self.banned.contains_key(&ip) {
            return;
        }
        let window = now - self.settings.findtime;
        let times = self.failures.entry(ip).or_default();
        times.push_back(now);
        while times.front().is_some_and(|&t| t <= window) {
            times.pop_front();
        }
        while times.len() > self.settings.maxretry as usize {
            times.pop_front();
        }
        if times.len() >= self.settings.maxretry as usize {
            self.failures.remove(&ip);
            out.push(self.ban(ip, now));
        }
    }

    /// Bans `ip` now (as `fail2ban-client set sshd banip` does); ignore rules do not apply.
    pub fn ban(&mut self, ip: IpAddr, now: i64) -> Event {
        if self.banned.contains_key(&ip) {
            return Event::AlreadyBanned { ip };
        }
        let prev = self.ban_counts.get(&ip).copied().unwrap_or(0);
        let bantime = self.settings.ban_time(prev);
        let count = prev + 1;
        self.ban_counts.insert(ip, count);
        self.banned.insert(ip, ActiveBan { time: now, bantime, count });
        self.failures.remove(&ip);
        self.total_banned += 1;
        Event::Ban { ip, time: now, bantime, count, restored: false }
    }

    /// Lifts a ban by hand.
    pub fn unban(&mut self, ip: IpAddr) -> Option<Event> {
        self.banned.remove(&ip).map(|_| Event::Unban { ip })
    }

    /// Expires bans and forgets stale failures and sessions.
    pub fn tick(&mut self, now: i64) -> Vec<Event> {
        let expired: Vec<IpAddr> =
            self.banned.iter().filter(|(_, b)| b.end().is_some_and(|e| e <= now)).map(|(ip, _)| *ip).collect();
        let mut out = Vec::new();
        for ip in expired {
            self.banned.remove(&ip);
            out.push(Event::Unban { ip });
        }
        let window = now - self.settings.findtime;
        self.failures.retain(|_, t| t.back().is_some_and(|&l| l > window));
        self.sessions.prune(now, false);
        out
    }

    pub fn is_banned(&self, ip: &IpAddr) -> bool {
        self.banned.contains_key(ip)
    }

    pub fn banned(&self) -> impl Iterator<Item = (&IpAddr, &ActiveBan)> {
        self.banned.iter()
    }

    /// Addresses with failures inside findtime (fail2ban's "Currently failed").
    pub fn currently_failed(&self) -> usize {
        self.failures.len()
    }

    pub fn failures_of(&self, ip: &IpAddr) -> usize {
        self.failures.get(ip).map_or(0, |t| t.len())
    }
}

#[cfg(test)]
#[path = "jail_tests.rs"]
mod tests;
