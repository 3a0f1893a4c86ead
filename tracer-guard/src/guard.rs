//! The running jail: [`Jail`] logic + firewall + SQLite state.
//!
//! A firewall failure never loses an event: the ban stays in the jail and the database, is
//! logged (see [`Guard::take_log`]) and listed by status as not enforced, and every tick
//! tries again. Bans longer than the firewall's largest timeout are refreshed before their
//! element runs out.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use crate::config::{BanAction, ConfigError, JailConfig};
use crate::event::{Event, Level, LogLine};
use crate::fw::{CommandRunner, Firewall, FirewallError};
use crate::iptables::IptablesFirewall;
use crate::jail::{ActiveBan, Jail, JailSettings, Origin};
use crate::nft::{DEFAULT_TABLE, NftFirewall};
use crate::state::{Counters, DEFAULT_PATH, State, StateError};
use crate::status::JailStatus;

mod enforce;

pub(crate) use enforce::fw_ban;

/// `File list` shown by status when lines come from the kernel capture.
pub const KERNEL_SOURCE: &str = "kernel (eBPF)";

#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    // Display carries the whole message; no `source`, so `{:#}` does not repeat it.
    #[error("firewall: {0}")]
    Firewall(FirewallError),
    #[error(transparent)]
    State(#[from] StateError),
}

impl From<FirewallError> for GuardError {
    fn from(e: FirewallError) -> Self {
        GuardError::Firewall(e)
    }
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

/// Opens the state; a file that is not (or no longer) an SQLite database is moved aside to
/// `PATH.corrupt-TIME` with a warning, and the jail starts with an empty state.
fn open_state(path: &Path, jail: &str, now: i64, log: &mut Vec<LogLine>) -> Result<Loaded, GuardError> {
    let load = || -> Result<Loaded, StateError> {
        let s = State::open(path)?;
        let bans = s.active_bans(jail, now)?;
        let counts = s.ban_counts(jail)?;
        Ok((s, bans, counts))
    };
    match load() {
        Err(e) if e.is_corrupt() => {
            let aside = PathBuf::from(format!("{}.corrupt-{now}", path.display()));
            std::fs::rename(path, &aside)
                .map_err(|io| StateError::Dir { path: path.display().to_string(), source: io })?;
            for ext in ["-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{ext}", path.display()));
            }
            log.push(LogLine {
                level: Level::Warning,
                text: format!("[{jail}] {e}: moved aside to {}; starting with an empty state", aside.display()),
            });
            Ok(load()?)
        }
        r => Ok(r?),
    }
}

type Loaded = (State, Vec<(IpAddr, ActiveBan)>, HashMap<IpAddr, u32>);

pub struct Guard {
    jail: Jail,
    cfg: JailConfig,
    fw: Box<dyn Firewall>,
    state: State,
    opts: GuardOptions,
    /// Bans the firewall does not hold, with the last error; retried on every tick.
    unenforced: BTreeMap<IpAddr, String>,
    /// Lifted bans the firewall may still hold, with the last error; retried on every tick.
    unlifted: BTreeMap<IpAddr, String>,
    /// Bans the database did not take (a failed write); retried on every tick.
    unrecorded: BTreeMap<IpAddr, ActiveBan>,
    /// When each clamped element runs out (bans longer than the firewall's largest timeout).
    clamped: HashMap<IpAddr, i64>,
    /// Warnings and errors for the daemon's log.
    log: Vec<LogLine>,
}

impl Guard {
    /// Opens the state, sets up the firewall and restores unexpired bans (logged as
    /// `Restore Ban`). A ban the firewall refuses does not stop the start: it is logged and
    /// retried. On error nothing was changed in the firewall unless the error is from the
    /// firewall itself.
    pub fn start(cfg: &JailConfig, opts: GuardOptions, now: i64) -> Result<(Guard, Vec<Event>), GuardError> {
        let mut log = Vec::new();
        let (state, active, counts) = open_state(&opts.state_path, &cfg.name, now, &mut log)?;
        let mut jail = Jail::new(JailSettings::from_config(cfg));
        jail.set_ban_counts(counts);
        let events: Vec<Event> = active.iter().map(|(ip, ban)| jail.restore_ban(*ip, *ban)).collect();
        let fw = firewall_for(cfg, &opts);
        let mut g = Guard {
            jail,
            cfg: cfg.clone(),
            fw,
            state,
            opts,
            unenforced: BTreeMap::new(),
            unlifted: BTreeMap::new(),
            unrecorded: BTreeMap::new(),
            clamped: HashMap::new(),
            log,
        };
        g.start_firewall(now)?;
        g.save_counters(now, true)?;
        Ok((g, events))
    }

    pub fn jail(&self) -> &Jail {
        &self.jail
    }

    pub fn config(&self) -> &JailConfig {
        &self.cfg
    }

    pub fn firewall(&self) -> &dyn Firewall {
        self.fw.as_ref()
    }

    /// Warnings and errors since the last call (firewall failures, a state moved aside).
    pub fn take_log(&mut self) -> Vec<LogLine> {
        std::mem::take(&mut self.log)
    }

    /// False while the firewall may still hold `ip` after an unban failed (retried each tick).
    pub fn is_lifted(&self, ip: &IpAddr) -> bool {
        !self.unlifted.contains_key(ip)
    }

    /// False while the firewall does not hold `ip`'s ban (see status's firewall errors).
    pub fn is_enforced(&self, ip: &IpAddr) -> bool {
        self.jail.is_banned(ip) && !self.unenforced.contains_key(ip)
    }

    fn error(&mut self, text: String) {
        self.log.push(LogLine { level: Level::Error, text: format!("[{}] {text}", self.jail.settings.name) });
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
                    if let Err(e) = self.state.add_ban(&self.jail.settings.name, *ip, &b) {
                        self.error(format!("cannot record the ban of {ip} (retrying): {e}"));
                        self.unrecorded.insert(*ip, b);
                    }
                    self.enforce(*ip, &b, now);
                }
                Event::Unban { ip } => self.lift(*ip),
                _ => {}
            }
        }
        Ok(())
    }

    /// Expires bans (call about once a second), retries firewall failures and picks up bans
    /// and unbans that `tracer guard ban|unban` wrote to the state database while no daemon
    /// ran the jail.
    pub fn tick(&mut self, now: i64) -> Result<Vec<Event>, GuardError> {
        let mut events = self.jail.tick(now);
        self.apply(&events, now)?;
        self.repair(now);
        let unrecorded = std::mem::take(&mut self.unrecorded);
        for (ip, b) in unrecorded.into_iter().filter(|(ip, _)| self.jail.is_banned(ip)) {
            if self.state.add_ban(&self.jail.settings.name, ip, &b).is_err() {
                self.unrecorded.insert(ip, b);
            }
        }
        let name = self.jail.settings.name.clone();
        let active = self.state.active_bans(&name, now)?;
        for (ip, ban) in &active {
            if !self.jail.is_banned(ip) {
                let mut e = self.jail.restore_ban(*ip, *ban);
                if let Event::Ban { restored, .. } = &mut e {
                    *restored = false;
                }
                self.jail.total_banned += 1;
                self.enforce(*ip, ban, now);
                events.push(e);
            }
        }
        // Bans the database lost track of were lifted by hand while no daemon ran; not those
        // it never got (a failed write, retried below).
        let lifted: Vec<IpAddr> = self
            .jail
            .banned()
            .map(|(ip, _)| *ip)
            .filter(|ip| !active.iter().any(|(a, _)| a == ip) && !self.unrecorded.contains_key(ip))
            .collect();
        for ip in lifted {
            if let Some(e) = self.jail.unban(ip) {
                self.lift(ip);
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
        self.lift(ip);
        Ok(e)
    }

    /// Applies a new configuration (SIGHUP, like `fail2ban-client reload`) without dropping
    /// current bans or failures: new settings count from the next line on. When the firewall
    /// settings changed, the firewall objects are rebuilt with every current ban. On error
    /// the old configuration stays in force.
    pub fn reload(&mut self, cfg: &JailConfig, now: i64) -> Result<(), GuardError> {
        let old = &self.cfg;
        if (&cfg.banaction, &cfg.ports, &cfg.chain) != (&old.banaction, &old.ports, &old.chain) {
            let same_nft =
                matches!((old.banaction, cfg.banaction), (BanAction::Nftables { .. }, BanAction::Nftables { .. }));
            // nftables: the new table replaces the old one in one transaction; iptables: the
            // old chain goes first.
            if !same_nft {
                self.fw.stop()?;
            }
            let old_fw = std::mem::replace(&mut self.fw, firewall_for(cfg, &self.opts));
            self.unenforced.clear();
            self.unlifted.clear();
            if let Err(e) = self.start_firewall(now) {
                // Back to the old objects, with every ban.
                self.fw = old_fw;
                if let Err(e2) = self.start_firewall(now) {
                    self.error(format!("cannot restore {} after a failed reload: {e2}", self.fw.describe()));
                }
                return Err(e);
            }
        }
        self.jail.settings = JailSettings::from_config(cfg);
        self.cfg = cfg.clone();
        Ok(())
    }

    pub fn status(&self) -> JailStatus {
        let mut banned: Vec<(IpAddr, ActiveBan)> = self.jail.banned().map(|(i, b)| (*i, *b)).collect();
        banned.sort_by_key(|(ip, b)| (b.time, *ip));
        let mut errors: Vec<String> =
            self.unenforced.iter().map(|(ip, e)| format!("ban of {ip} not enforced: {e}")).collect();
        errors.extend(self.unlifted.iter().map(|(ip, e)| format!("{ip} not removed: {e}")));
        JailStatus {
            jail: self.jail.settings.name.clone(),
            currently_failed: self.jail.currently_failed() as u64,
            total_failed: self.jail.total_failed,
            file_list: self.opts.file_list.clone(),
            currently_banned: banned.len() as u64,
            total_banned: self.jail.total_banned.max(banned.len() as u64),
            banned: banned.into_iter().map(|(ip, _)| ip).collect(),
            daemon: None,
            firewall: self.fw.describe(),
            firewall_errors: errors,
            fleet: Default::default(),
        }
    }

    /// Saves the counters `status` shows without a daemon. A failure is logged, never fatal:
    /// counters must not cost a ban or an event.
    fn save_counters(&mut self, now: i64, running: bool) -> Result<(), GuardError> {
        let c = Counters {
            currently_failed: self.jail.currently_failed() as u64,
            total_failed: self.jail.total_failed,
            total_banned: self.jail.total_banned,
            file_list: self.opts.file_list.join("\n"),
            updated: now,
            running,
        };
        if let Err(e) = self.state.write_counters(&self.jail.settings.name, &c) {
            self.error(format!("cannot save the counters: {e}"));
        }
        Ok(())
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
