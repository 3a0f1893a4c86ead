//! The running jail: [`Jail`] logic + firewall + SQLite state.

use std::net::IpAddr;
use std::path::PathBuf;

use crate::config::{BanAction, ConfigError, JailConfig};
use crate::event::Event;
use crate::fw::{CommandRunner, Firewall, FirewallError, FwBan};
use crate::iptables::IptablesFirewall;
use crate::jail::{ActiveBan, Jail, JailSettings, Origin};
use crate::nft::{DEFAULT_TABLE, NftFirewall};
use crate::state::{Counters, DEFAULT_PATH, State, StateError};
use crate::status::JailStatus;

/// `File list` shown by status when lines come from the kernel capture.
pub const KERNEL_SOURCE: &str = "kernel (eBPF)";

#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("firewall: {0}")]
    Firewall(#[from] FirewallError),
    #[error(transparent)]
    State(#[from] StateError),
}

/// How the daemon runs (not part of jail.local).
#[derive(Debug, Clone)]
pub struct GuardOptions {
    /// SQLite database (default `/var/lib/tracer/guard.sqlite3`).
    pub state_path: PathBuf,
    /// Where firewall commands run: the host, or a network namespace / command prefix.
    pub runner: CommandRunner,
    /// `keep_bans`: on stop leave the firewall objects and bans in place (nftables keeps
    /// lifting them by timeout; iptables rules stay until the next start's restore/tick).
    /// Default false: stop removes everything the tool added, as fail2ban's actionstop does.
    pub keep_bans: bool,
    /// nftables table name (default `tracer_guard`, family inet).
    pub nft_table: String,
    /// What status shows as "File list": log paths, or [`KERNEL_SOURCE`].
    pub file_list: Vec<String>,
}

impl Default for GuardOptions {
    fn default() -> Self {
        GuardOptions {
            state_path: DEFAULT_PATH.into(),
            runner: CommandRunner::host(),
            keep_bans: false,
            nft_table: DEFAULT_TABLE.into(),
            file_list: vec![KERNEL_SOURCE.into()],
        }
    }
}

/// The firewall backend for a jail's `banaction`.
pub fn firewall_for(jail: &JailConfig, opts: &GuardOptions) -> Box<dyn Firewall> {
    match jail.banaction {
        BanAction::Nftables { .. } => {
            Box::new(NftFirewall::new(opts.runner.clone(), &opts.nft_table, &jail.name, jail.ports.clone()))
        }
        BanAction::Iptables { multiport, .. } => {
            Box::new(IptablesFirewall::new(opts.runner.clone(), &jail.name, &jail.chain, jail.ports.clone(), multiport))
        }
    }
}

fn fw_ban(ip: IpAddr, b: &ActiveBan, now: i64) -> FwBan {
    FwBan { ip, timeout: b.remaining(now).map(|r| r.max(1) as u64) }
}

pub struct Guard {
    jail: Jail,
    fw: Box<dyn Firewall>,
    state: State,
    opts: GuardOptions,
}

impl Guard {
    /// Opens the state, sets up the firewall and restores unexpired bans (logged as
    /// `Restore Ban`). On error nothing was changed in the firewall unless the error is from
    /// the firewall itself.
    pub fn start(cfg: &JailConfig, opts: GuardOptions, now: i64) -> Result<(Guard, Vec<Event>), GuardError> {
        let state = State::open(&opts.state_path)?;
        let mut jail = Jail::new(JailSettings::from_config(cfg));
        jail.set_ban_counts(state.ban_counts(&cfg.name)?);
        let mut events = Vec::new();
        let mut bans = Vec::new();
        for (ip, ban) in state.active_bans(&cfg.name, now)? {
            events.push(jail.restore_ban(ip, ban));
            bans.push(fw_ban(ip, &ban, now));
        }
        let mut fw = firewall_for(cfg, &opts);
        fw.start(&bans)?;
        let g = Guard { jail, fw, state, opts };
        g.save_counters(now, true)?;
        Ok((g, events))
    }

    pub fn jail(&self) -> &Jail {
        &self.jail
    }

    pub fn firewall(&self) -> &dyn Firewall {
        self.fw.as_ref()
    }

    /// Feeds one log line (see [`Jail::feed`]) and applies resulting bans.
    pub fn feed(&mut self, line: &[u8], origin: Origin, now: i64) -> Result<Vec<Event>, GuardError> {
        let events = self.jail.feed(line, origin, now);
        self.apply(&events, now)?;
        if events.iter().any(|e| matches!(e, Event::Found { .. } | Event::Ban { .. })) {
            self.save_counters(now, true)?;
        }
        Ok(events)
    }

    fn apply(&mut self, events: &[Event], now: i64) -> Result<(), GuardError> {
        for e in events {
            match e {
                Event::Ban { ip, time, bantime, count, restored: false } => {
                    let b = ActiveBan { time: *time, bantime: *bantime, count: *count };
                    self.state.add_ban(&self.jail.settings.name, *ip, &b)?;
                    self.fw.ban(fw_ban(*ip, &b, now))?;
                }
                Event::Unban { ip } => self.fw.unban(*ip)?,
                _ => {}
            }
        }
        Ok(())
    }

    /// Expires bans (call about once a second) and picks up bans/unbans that `tracer guard
    /// ban|unban` wrote to the state database from another process.
    pub fn tick(&mut self, now: i64) -> Result<Vec<Event>, GuardError> {
        let mut events = self.jail.tick(now);
        self.apply(&events, now)?;
        let name = self.jail.settings.name.clone();
        let active = self.state.active_bans(&name, now)?;
        for (ip, ban) in &active {
            if !self.jail.is_banned(ip) {
                let mut e = self.jail.restore_ban(*ip, *ban);
                if let Event::Ban { restored, .. } = &mut e {
                    *restored = false;
                }
                self.jail.total_banned += 1;
                self.fw.ban(fw_ban(*ip, ban, now))?;
                events.push(e);
            }
        }
        let lifted: Vec<IpAddr> =
            self.jail.banned().map(|(ip, _)| *ip).filter(|ip| !active.iter().any(|(a, _)| a == ip)).collect();
        for ip in lifted {
            if let Some(e) = self.jail.unban(ip) {
                self.fw.unban(ip)?;
                events.push(e);
            }
        }
        if !events.is_empty() {
            self.save_counters(now, true)?;
        }
        Ok(events)
    }

    /// Bans by hand (`tracer guard ban IP`).
    pub fn ban(&mut self, ip: IpAddr, now: i64) -> Result<Event, GuardError> {
        let e = self.jail.ban(crate::addr::normalize(ip), now);
        self.apply(std::slice::from_ref(&e), now)?;
        self.save_counters(now, true)?;
        Ok(e)
    }

    /// Lifts a ban by hand (`tracer guard unban IP`).
    pub fn unban(&mut self, ip: IpAddr, now: i64) -> Result<Option<Event>, GuardError> {
        let ip = crate::addr::normalize(ip);
        self.state.lift(&self.jail.settings.name, ip, now)?;
        let e = self.jail.unban(ip);
        self.fw.unban(ip)?;
        Ok(e)
    }

    pub fn status(&self) -> JailStatus {
        let mut banned: Vec<(IpAddr, ActiveBan)> = self.jail.banned().map(|(i, b)| (*i, *b)).collect();
        banned.sort_by_key(|(ip, b)| (b.time, *ip));
        JailStatus {
            jail: self.jail.settings.name.clone(),
            currently_failed: self.jail.currently_failed() as u64,
            total_failed: self.jail.total_failed,
            file_list: self.opts.file_list.clone(),
            currently_banned: banned.len() as u64,
            total_banned: self.jail.total_banned,
            banned: banned.into_iter().map(|(ip, _)| ip).collect(),
        }
    }

    fn save_counters(&self, now: i64, running: bool) -> Result<(), GuardError> {
        let c = Counters {
            currently_failed: self.jail.currently_failed() as u64,
            total_failed: self.jail.total_failed,
            total_banned: self.jail.total_banned,
            file_list: self.opts.file_list.join("\n"),
            updated: now,
            running,
        };
        Ok(self.state.write_counters(&self.jail.settings.name, &c)?)
    }

    /// Stops the jail: unless `keep_bans`, removes the firewall objects (logging `Unban` for
    /// each active ban). Bans stay in the database either way, so the next start restores
    /// the unexpired ones, as fail2ban does.
    pub fn stop(mut self, now: i64) -> Result<Vec<Event>, GuardError> {
        let mut events = Vec::new();
        if !self.opts.keep_bans {
            let mut ips: Vec<IpAddr> = self.jail.banned().map(|(ip, _)| *ip).collect();
            ips.sort();
            events.extend(ips.into_iter().map(|ip| Event::Unban { ip }));
            self.fw.stop()?;
        }
        self.save_counters(now, false)?;
        Ok(events)
    }
}

/// `tracer guard ban IP` from another process: records the ban and, if the jail's firewall
/// objects exist (daemon running), applies it at once; the daemon adopts it on its next tick.
pub fn ban_via_state(cfg: &JailConfig, opts: &GuardOptions, ip: IpAddr, now: i64) -> Result<Event, GuardError> {
    let ip = crate::addr::normalize(ip);
    let state = State::open(&opts.state_path)?;
    if state.active_bans(&cfg.name, now)?.iter().any(|(a, _)| *a == ip) {
        return Ok(Event::AlreadyBanned { ip });
    }
    let prev = state.ban_counts(&cfg.name)?.get(&ip).copied().unwrap_or(0);
    let bantime = JailSettings::from_config(cfg).ban_time(prev);
    let ban = ActiveBan { time: now, bantime, count: prev + 1 };
    let mut fw = firewall_for(cfg, opts);
    if fw.is_running() {
        fw.ban(fw_ban(ip, &ban, now))?;
    }
    state.add_ban(&cfg.name, ip, &ban)?;
    Ok(Event::Ban { ip, time: now, bantime, count: ban.count, restored: false })
}

/// `tracer guard unban IP` from another process.
pub fn unban_via_state(
    cfg: &JailConfig,
    opts: &GuardOptions,
    ip: IpAddr,
    now: i64,
) -> Result<Option<Event>, GuardError> {
    let ip = crate::addr::normalize(ip);
    let state = State::open(&opts.state_path)?;
    let was = state.lift(&cfg.name, ip, now)?;
    let mut fw = firewall_for(cfg, opts);
    if fw.is_running() {
        fw.unban(ip)?;
    }
    Ok(was.then_some(Event::Unban { ip }))
}

/// `tracer guard status` from another process: counters the daemon saved plus the active bans.
pub fn status_via_state(cfg: &JailConfig, opts: &GuardOptions, now: i64) -> Result<JailStatus, GuardError> {
    let state = State::open(&opts.state_path)?;
    let c = state.counters(&cfg.name)?.unwrap_or_default();
    let bans = state.active_bans(&cfg.name, now)?;
    Ok(JailStatus {
        jail: cfg.name.clone(),
        currently_failed: if c.running { c.currently_failed } else { 0 },
        total_failed: c.total_failed,
        file_list: if c.file_list.is_empty() {
            opts.file_list.clone()
        } else {
            c.file_list.lines().map(String::from).collect()
        },
        currently_banned: bans.len() as u64,
        total_banned: c.total_banned,
        banned: bans.into_iter().map(|(ip, _)| ip).collect(),
    })
}
