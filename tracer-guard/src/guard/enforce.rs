//! Keeping the firewall in step with the jail: every ban enforced or listed as not enforced
//! (and retried), every lift done or retried, clamped elements refreshed before they lapse.

use std::net::IpAddr;

use super::{Guard, GuardError};
use crate::fw::{Firewall, FwBan};
use crate::jail::ActiveBan;

/// A clamped element is refreshed when it has less than this left (and the ban goes on).
const REFRESH_BEFORE: i64 = 30 * 86400;

/// The element for `b`, its timeout clamped to what `fw` accepts; the second value is when a
/// clamped element runs out (None: it lasts as long as the ban).
pub(crate) fn fw_ban(fw: &dyn Firewall, ip: IpAddr, b: &ActiveBan, now: i64) -> (FwBan, Option<i64>) {
    let left = b.remaining(now).map(|r| r.max(1) as u64);
    match (left, fw.max_timeout()) {
        (Some(l), Some(max)) if l > max => (FwBan { ip, timeout: Some(max) }, Some(now + max as i64)),
        _ => (FwBan { ip, timeout: left }, None),
    }
}

impl Guard {
    /// Creates the firewall objects with every current ban: all in one go, or, when the
    /// firewall refuses that, the objects alone and then each ban on its own.
    pub(super) fn start_firewall(&mut self, now: i64) -> Result<(), GuardError> {
        let bans: Vec<(IpAddr, ActiveBan)> = self.jail.banned().map(|(i, b)| (*i, *b)).collect();
        let elems: Vec<(FwBan, Option<i64>)> =
            bans.iter().map(|(ip, b)| fw_ban(self.fw.as_ref(), *ip, b, now)).collect();
        let all: Vec<FwBan> = elems.iter().map(|(e, _)| *e).collect();
        self.clamped.clear();
        match self.fw.start(&all) {
            Ok(()) => {
                self.unenforced.clear();
                self.clamped.extend(elems.iter().filter_map(|(e, u)| u.map(|u| (e.ip, u))));
                Ok(())
            }
            Err(e) if !bans.is_empty() => {
                self.error(format!("restoring {} bans at once failed ({e}); adding them one by one", bans.len()));
                self.fw.start(&[])?;
                for (ip, b) in bans {
                    self.enforce(ip, &b, now);
                }
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Puts `ip`'s ban in the firewall; a failure is logged and kept for retry and status.
    pub(super) fn enforce(&mut self, ip: IpAddr, b: &ActiveBan, now: i64) -> bool {
        let (elem, until) = fw_ban(self.fw.as_ref(), ip, b, now);
        self.unlifted.remove(&ip);
        match self.fw.ban(elem) {
            Ok(()) => {
                self.unenforced.remove(&ip);
                match until {
                    Some(u) => self.clamped.insert(ip, u),
                    None => self.clamped.remove(&ip),
                };
                true
            }
            Err(e) => {
                let msg = e.to_string();
                if self.unenforced.get(&ip) != Some(&msg) {
                    self.error(format!("the firewall does not hold the ban of {ip} (retrying): {msg}"));
                }
                self.unenforced.insert(ip, msg);
                false
            }
        }
    }

    pub(super) fn lift(&mut self, ip: IpAddr) {
        self.unenforced.remove(&ip);
        self.clamped.remove(&ip);
        match self.fw.unban(ip) {
            Ok(()) => {
                self.unlifted.remove(&ip);
            }
            Err(e) => {
                let msg = e.to_string();
                if self.unlifted.get(&ip) != Some(&msg) {
                    self.error(format!("cannot remove {ip} from the firewall (retrying): {msg}"));
                }
                self.unlifted.insert(ip, msg);
            }
        }
    }

    /// Retries what the firewall refused and refreshes clamped elements before they run out.
    pub(super) fn repair(&mut self, now: i64) {
        if !self.unenforced.is_empty() && !self.fw.is_running() {
            // Someone removed the jail's table/chain: put it back with every current ban.
            self.error(format!("{} is gone; recreating it with every current ban", self.fw.describe()));
            if let Err(e) = self.start_firewall(now) {
                self.error(format!("cannot recreate {}: {e}", self.fw.describe()));
            }
        }
        let mut redo: Vec<IpAddr> = self.unenforced.keys().copied().collect();
        redo.extend(self.clamped.iter().filter(|(_, until)| **until - now < REFRESH_BEFORE).map(|(ip, _)| *ip));
        for ip in redo {
            let ban = self.jail.banned().find(|(i, _)| **i == ip).map(|(_, b)| *b);
            match ban {
                Some(b) => {
                    self.enforce(ip, &b, now);
                }
                None => {
                    self.unenforced.remove(&ip);
                    self.clamped.remove(&ip);
                }
            }
        }
        let unlifted: Vec<IpAddr> = self.unlifted.keys().copied().filter(|ip| !self.jail.is_banned(ip)).collect();
        for ip in unlifted {
            self.lift(ip);
        }
    }
}
