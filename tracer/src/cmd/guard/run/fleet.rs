//! `bansync = postgresql://…` (jail.local `[DEFAULT]`): this guard's bans go to the fleet's
//! table (tracer-store's `bansync`) and the others' bans come back through LISTEN/NOTIFY.
//! A fleet ban goes through this host's own checks: an exempt address (`ignoreip`,
//! `ignoreself`) is not banned here, whoever banned it elsewhere.

use std::{collections::BTreeMap, net::IpAddr};

use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};
use tracer_guard::{Event as GuardEvent, JailConfig, Level, now};
use tracer_store::{
    Host,
    bansync::{BanSync, FleetBan},
};

use super::{Daemon, answer::ignored};
use crate::error::UsageError;

pub(in crate::cmd::guard) struct Fleet {
    sync: BanSync,
    /// Bans this guard holds because another host made them: address -> that host.
    pub from_fleet: BTreeMap<IpAddr, String>,
}

/// Connects when the jail says `bansync`; the bans in force elsewhere, to apply at start.
/// The fleet, the bans in force elsewhere, and the others' announcements as they come.
pub(super) type Started = (Fleet, Vec<FleetBan>, UnboundedReceiver<FleetBan>);

pub(super) fn start(jail: &JailConfig) -> anyhow::Result<Option<Started>> {
    let Some(url) = &jail.bansync else { return Ok(None) };
    let (tx, rx) = unbounded_channel();
    let (sync, current) = BanSync::start(url, &jail.name, identity(), now(), move |b| {
        let _ = tx.send(b);
    })
    .map_err(|e| UsageError(format!("bansync: {e}")))?;
    Ok(Some((Fleet { sync, from_fleet: BTreeMap::new() }, current, rx)))
}

/// This guard in the fleet: the host, and its network namespace when it is not the host's
/// own (a guard is one per firewall, so per namespace).
fn identity() -> Host {
    use std::os::unix::fs::MetadataExt;
    let mut h = Host::this();
    let ino = |p: &str| std::fs::metadata(p).map(|m| m.ino()).ok();
    if let Some(mine) = ino("/proc/self/ns/net")
        && ino("/proc/1/ns/net") != Some(mine)
    {
        h.machine_id = format!("{}:net{mine}", h.machine_id);
        h.hostname = format!("{}[net:{mine}]", h.hostname);
    }
    h
}

impl Daemon {
    /// Tells the fleet about bans and unbans this host made (not those it took from it).
    pub(super) fn publish(&mut self, events: &[GuardEvent]) {
        let Some(f) = &mut self.fleet else { return };
        for e in events {
            match e {
                GuardEvent::Ban { ip, time, bantime, restored: false, .. } if !f.from_fleet.contains_key(ip) => {
                    f.sync.ban(&ip.to_string(), (*bantime >= 0).then(|| time + bantime));
                }
                GuardEvent::Unban { ip } if !f.from_fleet.contains_key(ip) => f.sync.unban(&ip.to_string()),
                _ => {}
            }
        }
    }

    /// A hand-made unban: the fleet lifts it too, wherever it came from.
    pub(super) fn publish_unban(&mut self, ip: IpAddr) {
        if let Some(f) = &mut self.fleet {
            f.from_fleet.remove(&ip);
            f.sync.unban(&ip.to_string());
        }
    }

    /// `status`: which of the bans came from the fleet.
    pub(super) fn fleet_status(&self, st: &mut tracer_guard::JailStatus) {
        if let Some(f) = &self.fleet {
            st.fleet =
                f.from_fleet.iter().filter(|(ip, _)| st.banned.contains(ip)).map(|(ip, h)| (*ip, h.clone())).collect();
        }
    }

    /// Fleet bans that ran out here are this host's to make again.
    pub(super) fn forget_expired(&mut self, events: &[GuardEvent]) {
        if let Some(f) = &mut self.fleet {
            for e in events {
                if let GuardEvent::Unban { ip } = e {
                    f.from_fleet.remove(ip);
                }
            }
        }
    }

    /// Applies another host's announcement.
    pub(super) fn apply_fleet(&mut self, b: FleetBan) {
        let Ok(ip) = b.ip.parse::<IpAddr>() else { return };
        let jail = self.log.jail.clone();
        let (host, t) = (b.hostname.clone(), now());
        if b.op == "ban" {
            if b.until.is_some_and(|u| u <= t) || self.guard.jail().is_banned(&ip) {
                return;
            }
            if let Some(why) = ignored(&self.guard.jail().settings, &ip) {
                let why = why.split(':').next().unwrap_or_default().to_owned();
                self.log.msg(
                    "fail2ban.actions",
                    Level::Info,
                    format!("[{jail}] fleet ban of {ip} by {host} not applied: {why}"),
                );
                return;
            }
            if let Some(f) = &mut self.fleet {
                f.from_fleet.insert(ip, host.clone());
            }
            match self.guard.ban(ip, t) {
                Ok(e) => {
                    self.log.msg("fail2ban.actions", Level::Info, format!("[{jail}] fleet ban of {ip} by {host}"));
                    self.log.event(&e);
                }
                Err(e) => self.log.error("fleet ban", e),
            }
        } else if b.op == "unban" {
            if let Some(f) = &mut self.fleet {
                f.from_fleet.remove(&ip);
            }
            match self.guard.unban(ip, t) {
                Ok(Some(e)) => {
                    self.log.msg("fail2ban.actions", Level::Info, format!("[{jail}] fleet unban of {ip} by {host}"));
                    self.log.event(&e);
                }
                Ok(None) => {}
                Err(e) => self.log.error("fleet unban", e),
            }
        }
        self.guard_log();
    }
}
