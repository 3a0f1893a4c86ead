//! `tracer guard ban|unban|status` when no daemon runs the jail: the state database, and the
//! firewall only if its objects exist (a daemon stopped with `--keep-bans`). The CLI goes
//! through the daemon's control socket whenever one runs; these functions never claim a ban
//! that no firewall holds.

use std::net::IpAddr;

use crate::config::JailConfig;
use crate::event::Event;
use crate::guard::{GuardError, GuardOptions, firewall_for, fw_ban};
use crate::jail::{ActiveBan, JailSettings};
use crate::state::State;
use crate::status::JailStatus;

/// What a ban without a daemon did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Offline {
    /// Recorded and put in the firewall (`describe`d) directly.
    Applied { event: Event, firewall: String },
    /// `ip` was already banned.
    Already(Event),
    /// Nothing done: the jail's firewall objects do not exist, so nothing would enforce it.
    NoFirewall { firewall: String },
}

/// `tracer guard ban IP` with no daemon running. The check and the insert are one
/// transaction, so concurrent bans of one address make one ban.
pub fn ban_via_state(cfg: &JailConfig, opts: &GuardOptions, ip: IpAddr, now: i64) -> Result<Offline, GuardError> {
    let ip = crate::addr::normalize(ip);
    let mut fw = firewall_for(cfg, opts);
    if !fw.is_running() {
        return Ok(Offline::NoFirewall { firewall: fw.describe() });
    }
    let mut state = State::open(&opts.state_path)?;
    let settings = JailSettings::from_config(cfg);
    let made = state.add_ban_unless_active(&cfg.name, ip, now, |prev| ActiveBan {
        time: now,
        bantime: settings.ban_time(prev),
        count: prev + 1,
    })?;
    let Some(ban) = made else {
        // Make sure the firewall has it too (adding is idempotent).
        if let Some((_, b)) = state.active_bans(&cfg.name, now)?.into_iter().find(|(a, _)| *a == ip) {
            fw.ban(fw_ban(fw.as_ref(), ip, &b, now).0)?;
        }
        return Ok(Offline::Already(Event::AlreadyBanned { ip }));
    };
    if let Err(e) = fw.ban(fw_ban(fw.as_ref(), ip, &ban, now).0) {
        // Not enforced, so not recorded either.
        state.lift(&cfg.name, ip, now)?;
        return Err(e.into());
    }
    let event = Event::Ban { ip, time: now, bantime: ban.bantime, count: ban.count, restored: false };
    Ok(Offline::Applied { event, firewall: fw.describe() })
}

/// `tracer guard unban IP` with no daemon running: lifted in the database and, if its
/// objects exist, in the firewall (then described in the second value).
pub fn unban_via_state(
    cfg: &JailConfig,
    opts: &GuardOptions,
    ip: IpAddr,
    now: i64,
) -> Result<(Option<Event>, Option<String>), GuardError> {
    let ip = crate::addr::normalize(ip);
    let state = State::open(&opts.state_path)?;
    let was = state.lift(&cfg.name, ip, now)?;
    let mut fw = firewall_for(cfg, opts);
    let mut touched = None;
    if fw.is_running() {
        fw.unban(ip)?;
        touched = Some(fw.describe());
    }
    Ok((was.then_some(Event::Unban { ip }), touched))
}

/// `tracer guard status` with no daemon running: the counters the last daemon saved and the
/// bans of the database.
pub fn status_via_state(cfg: &JailConfig, opts: &GuardOptions, now: i64) -> Result<JailStatus, GuardError> {
    let state = State::open(&opts.state_path)?;
    let c = state.counters(&cfg.name)?.unwrap_or_default();
    let bans = state.active_bans(&cfg.name, now)?;
    let fw = firewall_for(cfg, opts);
    let mut errors = Vec::new();
    if !bans.is_empty() && !fw.is_running() {
        errors.push(format!("{} does not exist: no ban listed is enforced", fw.describe()));
    }
    Ok(JailStatus {
        jail: cfg.name.clone(),
        currently_failed: 0,
        total_failed: c.total_failed,
        file_list: if c.file_list.is_empty() {
            opts.file_list.clone()
        } else {
            c.file_list.lines().map(String::from).collect()
        },
        currently_banned: bans.len() as u64,
        total_banned: c.total_banned.max(bans.len() as u64),
        banned: bans.into_iter().map(|(ip, _)| ip).collect(),
        daemon: None,
        firewall: fw.describe(),
        firewall_errors: errors,
        fleet: Default::default(),
    })
}
