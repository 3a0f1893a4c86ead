//! `tracer guard run`: the jail daemon. sshd's messages come from the kernel (every sendto(2)
//! and every write(2) to stderr by sshd, with the sender's pid) or from log files; each is fed
//! to the jail, whose bans are applied to the firewall before the `Ban` line is printed.
//! One daemon per firewall table and network namespace (`control.rs`: lock and socket);
//! `ban`/`unban`/`status` reach it through that socket (`answer.rs`); SIGHUP reloads the
//! configuration (`reload.rs`).

mod answer;
mod fleet;
mod notify;
mod reload;

pub(super) use answer::ignored;

use std::{io::Write as _, path::PathBuf, time::Duration};

use clap::{Args, ValueEnum};
use tokio::signal::unix::{SignalKind, signal};
use tracer_common::config::ENABLE_SSHLOG;
use tracer_guard::{
    Event as GuardEvent, Guard, GuardOptions, JailConfig, Level, LogLine, Origin, follow::Follower,
    guard::KERNEL_SOURCE, nft::DEFAULT_TABLE, now,
};

use super::{Common, control, load_config, not_enabled, runtime};
use crate::{
    cmd::parse_buffer_mib,
    error::UsageError,
    event::{Detail, Event, LogPeer},
    loader::{Loaded, Options},
    reader::{Growth, Reader},
    sshd_exe::{Change, Trusted},
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Source {
    /// sshd's messages captured in the kernel (syslog datagrams and stderr writes).
    Kernel,
    /// The jail's `logpath` files (auth.log, secure), followed like `tail -F`.
    File,
}

#[derive(Args, Debug)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    pub common: Common,
    /// Where sshd's messages come from.
    #[arg(long, value_enum, default_value = "kernel")]
    pub source: Source,
    /// On exit leave the firewall objects and bans in place (nftables lifts them by timeout).
    #[arg(long)]
    pub keep_bans: bool,
    /// Ring buffer size in MiB (kernel source).
    #[arg(long, default_value = "4", value_parser = parse_buffer_mib)]
    pub buffer_size: u32,
    /// An sshd executable whose messages the kernel source trusts (repeatable; default: those
    /// of /usr/sbin/sshd and OpenSSH's sshd-session/sshd-auth on Debian and RHEL that exist).
    /// Each must be owned by root and writable by no one else.
    #[arg(long, value_name = "PATH")]
    pub sshd_exe: Vec<PathBuf>,
}

/// fail2ban's log layout: `2026-11-24 13:22:29,123 fail2ban.actions        [PID]: NOTICE  [sshd] Ban 192.0.2.7`,
/// one line at a time, flushed at once (a Ban line is a promise the firewall already holds).
#[derive(Clone)]
struct Log {
    pid: u32,
    jail: String,
}

impl Log {
    fn line(&self, logger: &str, l: &LogLine) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{} {:<24}[{}]: {l}", timestamp(), logger, self.pid);
        let _ = out.flush();
    }

    fn msg(&self, logger: &str, level: Level, text: String) {
        self.line(logger, &LogLine { level, text });
    }

    fn event(&self, e: &GuardEvent) {
        let logger = match e {
            GuardEvent::Found { .. } | GuardEvent::Ignored { .. } => "fail2ban.filter",
            _ => "fail2ban.actions",
        };
        if let Some(d) = e.detail(&self.jail) {
            self.line(logger, &d);
        }
        self.line(logger, &e.log_line(&self.jail));
    }

    fn error(&self, what: &str, e: impl std::fmt::Display) {
        self.msg("fail2ban.actions", Level::Error, format!("[{}] {what}: {e}", self.jail));
    }
}

/// Local time with milliseconds, as fail2ban's `%(asctime)s`.
fn timestamp() -> impl std::fmt::Display {
    tracer_guard::event::local(jiff::Timestamp::now(), "%Y-%m-%d %H:%M:%S,%3f")
}

/// One captured message as the jail's line: sshd writes each log message with one call
/// (stderr: `msg\r\n`; syslog: one datagram), so a call is one message. A newline inside it
/// is never a line break: sshd leaves `\r` and `\n` of user names unescaped on stderr, and
/// splitting there would let a client forge a whole log line. Such bytes become spaces; the
/// parser then finds sshd's own address at the end of the message.
pub(super) fn message_of(data: &[u8]) -> Vec<u8> {
    let mut end = data.len();
    while end > 0 && matches!(data[end - 1], b'\n' | b'\r' | 0) {
        end -= 1;
    }
    data[..end].iter().map(|&b| if b == b'\n' || b == b'\r' || b == 0 { b' ' } else { b }).collect()
}

struct Daemon {
    guard: Guard,
    log: Log,
    truncated: u64,
    /// Messages of an sshd holding several peers' connections (never guessed).
    ambiguous: u64,
    /// When the daemon started and what it reads, for status.
    started: i64,
    source: String,
    /// Matched lines per address, for ban mails.
    recent: notify::Recent,
    /// `bansync`: the fleet's bans.
    fleet: Option<fleet::Fleet>,
}

impl Daemon {
    fn feed(&mut self, line: &[u8], origin: Origin) {
        match self.guard.feed(line, origin, now()) {
            Ok(events) => {
                events.iter().for_each(|e| self.log.event(e));
                self.notify(&events, Some(line));
                self.publish(&events);
            }
            Err(e) => self.log.error("cannot apply", e),
        }
        self.guard_log();
    }

    /// The jail's own warnings and errors (firewall failures, state moved aside).
    fn guard_log(&mut self) {
        for l in self.guard.take_log() {
            self.log.line("fail2ban.actions", &l);
        }
    }

    fn kernel_event(&mut self, ev: Event) {
        let Detail::Log(l) = &ev.detail else { return };
        if l.truncated {
            // A cut message could end inside client text that looks like sshd's suffix.
            self.truncated += 1;
            self.log.msg(
                "fail2ban.filter",
                Level::Warning,
                format!("[{}] ignored a message of sshd[{}] cut at {} bytes", self.log.jail, ev.pid, l.data.len()),
            );
            return;
        }
        // The address is the one the kernel read from the sender's connection socket.
        if l.peer == LogPeer::Ambiguous {
            self.ambiguous += 1;
            self.log.msg(
                "fail2ban.filter",
                Level::Warning,
                format!(
                    "[{}] sshd[{}] holds connections of several peers: its message is not attributed ({} so far)",
                    self.log.jail, ev.pid, self.ambiguous
                ),
            );
        }
        let msg = message_of(&l.data);
        if msg.is_empty() {
            return;
        }
        let before = self.guard.jail().unattributed;
        self.feed(&msg, Origin::Kernel { pid: ev.pid, peer: l.peer.ip() });
        // A failure charged to no one is never silent: with no peer, the connection was
        // accepted before the daemon started, or the kernel forgot it after 65 536 newer
        // connections (a flood can force that).
        if l.peer == LogPeer::None && self.guard.jail().unattributed > before {
            self.log.msg(
                "fail2ban.filter",
                Level::Warning,
                format!(
                    "[{}] a failure of sshd[{}] could not be attributed: it holds no connection the kernel saw accepted \
                     (accepted before the guard started, or forgotten after 65536 newer connections)",
                    self.log.jail, ev.pid
                ),
            );
        }
    }

    /// Vets the sshd executables again (a package upgrade replaces them) and tells the kernel.
    fn refresh_exes(&mut self, t: &mut Trusted, l: &mut Loaded) {
        let changes = t.refresh();
        if changes.is_empty() {
            return;
        }
        for c in changes {
            match c {
                Change::Trusted(p) => self.log.msg(
                    "fail2ban.filter",
                    Level::Info,
                    format!("[{}] trusting the sshd executable {} (a new file)", self.log.jail, p.display()),
                ),
                Change::Refused(e) => self.log.error("sshd executable no longer trusted", e),
            }
        }
        if let Err(e) = l.set_sshd_exes(&t.keys()) {
            self.log.error("cannot update the trusted sshd executables", e);
        }
    }

    fn tick(&mut self) {
        match self.guard.tick(now()) {
            Ok(events) => {
                events.iter().for_each(|e| self.log.event(e));
                self.notify(&events, None);
                self.forget_expired(&events);
            }
            Err(e) => self.log.error("tick", e),
        }
        self.guard_log();
    }
}

/// Loss and undecodable records are shown as soon as the loop sees them.
fn warn_growth(log: &Log, g: Growth) {
    if let Some(n) = g.lost {
        log.msg(
            "fail2ban.filter",
            Level::Warning,
            format!("[{}] {n} sshd messages lost so far (ring buffer full); raise --buffer-size", log.jail),
        );
    }
    if let Some(n) = g.undecodable {
        log.msg(
            "fail2ban.filter",
            Level::Warning,
            format!("[{}] {n} kernel records could not be decoded so far", log.jail),
        );
    }
}

pub(super) async fn run(args: RunArgs) -> anyhow::Result<i32> {
    let (jail, files) = load_config(&args.common.config, false)?;
    if !jail.enabled {
        return Err(not_enabled(&files));
    }
    // The lock first: a second daemon changes nothing, not even the first one's firewall.
    let (lock, listener) = control::lock(DEFAULT_TABLE).map_err(|e| match e {
        control::LockError::Running(..) => anyhow::Error::new(UsageError(e.to_string())),
        e => anyhow::Error::new(e),
    })?;
    let pid = std::process::id();
    let log = Log { pid, jail: jail.name.clone() };
    // The fleet's database before any firewall change: unreachable is an error at start.
    let (fleet, current, mut fleet_rx) = match fleet::start(&jail)? {
        Some((f, c, rx)) => (Some(f), c, Some(rx)),
        None => (None, Vec::new(), None),
    };

    // Sources first: if the kernel programs cannot be loaded the firewall is not touched.
    let mut exes = None;
    let (mut loaded, mut followers, file_list) = match args.source {
        Source::Kernel => {
            let t = Trusted::new(&args.sshd_exe).map_err(UsageError)?;
            let opts = Options {
                enabled: ENABLE_SSHLOG,
                ring_bytes: args.buffer_size << 20,
                sshd_exes: t.keys(),
                ..Default::default()
            };
            exes = Some(t);
            (Some(crate::error::load_or_usage_error(&opts)?), Vec::new(), vec![KERNEL_SOURCE.to_string()])
        }
        Source::File => {
            if jail.backend == "systemd" {
                eprintln!("tracer: warning: backend = systemd: there is no journal reader; following logpath instead");
            }
            let mut f = Vec::new();
            for p in &jail.logpath {
                f.push(
                    Follower::open(p, false)
                        .map_err(|e| UsageError(format!("cannot read logpath {}: {e}", p.display())))?,
                );
            }
            let names = jail.logpath.iter().map(|p: &PathBuf| p.display().to_string()).collect();
            (None, f, names)
        }
    };
    let mut reader = match loaded.as_mut() {
        Some(l) => Some(Reader::new(l, true)?),
        None => None,
    };
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sighup = signal(SignalKind::hangup())?;

    let opts = GuardOptions {
        state_path: args.common.state.clone(),
        keep_bans: args.keep_bans,
        file_list: file_list.clone(),
        ..Default::default()
    };
    let (guard, restored) = Guard::start(&jail, opts, now()).map_err(runtime)?;
    let source = file_list.join(" ");
    log.msg("fail2ban.jail", Level::Info, format!("Jail '{}' started ({})", jail.name, settings(&jail, &source)));
    let mut d =
        Daemon { guard, log, truncated: 0, ambiguous: 0, started: now(), source, recent: Default::default(), fleet };
    d.guard_log();
    for e in &restored {
        d.log.event(e);
    }
    // A guard that was down applies the fleet's bans in force.
    current.into_iter().for_each(|b| d.apply_fleet(b));
    let mut requests = control::serve(listener)?;

    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut poll = tokio::time::interval(Duration::from_millis(200));
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            r = async { reader.as_mut().unwrap().readable().await }, if reader.is_some() => {
                r?;
                reader.as_mut().unwrap().drain_each(|ev| d.kernel_event(ev));
            }
            _ = poll.tick(), if !followers.is_empty() => {
                for f in &mut followers {
                    match f.poll() {
                        Ok(lines) => lines.iter().for_each(|l| d.feed(l, Origin::Text)),
                        Err(e) => d.log.error(&format!("reading {}", f.path().display()), e),
                    }
                }
            }
            _ = tick.tick() => {
                d.tick();
                if let (Some(t), Some(l)) = (exes.as_mut(), loaded.as_mut()) {
                    d.refresh_exes(t, l);
                }
                if let (Some(r), Some(l)) = (reader.as_mut(), &loaded) {
                    warn_growth(&d.log, r.grown(l)?);
                }
            }
            Some(p) = requests.recv() => {
                let reply = d.answer(p.request);
                let _ = p.reply.send(reply);
            }
            Some(b) = async { fleet_rx.as_mut().unwrap().recv().await }, if fleet_rx.is_some() => d.apply_fleet(b),
            _ = sighup.recv() => d.reload(&args.common.config),
            _ = sigint.recv() => break,
            _ = sigterm.recv() => break,
        }
    }
    // Messages already captured still count (and may ban) before the jail stops.
    if let (Some(r), Some(l)) = (reader.as_mut(), &loaded) {
        r.drain_each(|ev| d.kernel_event(ev));
        warn_growth(&d.log, r.grown(l)?);
        let c = r.counts(l)?;
        d.log.msg("fail2ban.filter", Level::Info, format!("[{}] kernel source: {c}", d.log.jail));
    }
    let Daemon { guard, log, recent, .. } = d;
    match guard.stop(now()) {
        Ok(events) => events.iter().for_each(|e| log.event(e)),
        Err(e) => {
            log.error("stop", &e);
            return Err(runtime(e));
        }
    }
    recent.finish_mails().await;
    drop(lock);
    log.msg("fail2ban.jail", Level::Info, format!("Jail '{}' stopped", log.jail));
    Ok(0)
}

/// The settings logged at start and reload.
fn settings(jail: &JailConfig, source: &str) -> String {
    format!(
        "source: {source}, banaction: {}, maxretry: {}, findtime: {}s, bantime: {}s",
        jail.banaction.name(),
        jail.maxretry,
        jail.findtime,
        jail.bantime
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_call_is_one_message() {
        assert_eq!(
            message_of(b"Failed password for root from 192.0.2.7 port 22 ssh2\r\n"),
            b"Failed password for root from 192.0.2.7 port 22 ssh2"
        );
        assert_eq!(
            message_of(
                b"Invalid user x\nFailed password for root from 10.9.9.9 port 22 ssh2\n from 192.0.2.7 port 5\r\n"
            ),
            b"Invalid user x Failed password for root from 10.9.9.9 port 22 ssh2  from 192.0.2.7 port 5"
        );
        assert_eq!(message_of(b"<38>Nov 24 13:22:29 sshd[7]: msg\0"), b"<38>Nov 24 13:22:29 sshd[7]: msg");
        assert!(message_of(b"\r\n").is_empty());
    }
}
