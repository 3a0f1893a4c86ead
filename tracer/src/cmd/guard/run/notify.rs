//! Ban mails (`action = mail…`): after the firewall holds a ban, a background task runs
//! `whois` (bounded in time and size) and hands one message to `/usr/sbin/sendmail -t -i`.
//! The daemon never waits for either; a failure is logged.

use std::{
    collections::{HashMap, VecDeque},
    net::IpAddr,
    process::Stdio,
    time::Duration,
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    process::Command,
    task::JoinHandle,
};
use tracer_guard::{
    Event as GuardEvent, Level,
    mail::{BanMail, MailConfig, compose},
};

use super::{Daemon, Log};

const SENDMAIL: &str = "/usr/sbin/sendmail";
const WHOIS_TIMEOUT: Duration = Duration::from_secs(15);
const SENDMAIL_TIMEOUT: Duration = Duration::from_secs(60);
const MAX_WHOIS: usize = 64 * 1024;
/// Matched lines kept per address, and addresses kept (oldest dropped first).
const LINES_PER_IP: usize = 20;
const MAX_IPS: usize = 4096;
/// Bytes kept of each line: sshd writes at most 1 KiB per message, but a text source may
/// carry lines of 64 KiB that anyone with `logger -t sshd` can write (4096 addresses x 20
/// lines x 64 KiB would be 5 GiB).
const MAX_LINE_KEPT: usize = 2048;

/// The latest matched lines of each address with failures, for `mail-whois-lines`.
#[derive(Default)]
pub(super) struct Recent {
    lines: HashMap<IpAddr, (u64, usize, VecDeque<Vec<u8>>)>,
    seq: u64,
    /// Mails being sent.
    sending: Vec<JoinHandle<()>>,
}

impl Recent {
    fn push(&mut self, ip: IpAddr, line: &[u8]) {
        if self.lines.len() >= MAX_IPS && !self.lines.contains_key(&ip) {
            let oldest = self.lines.iter().min_by_key(|(_, (s, ..))| *s).map(|(ip, _)| *ip);
            oldest.map(|o| self.lines.remove(&o));
        }
        self.seq += 1;
        let e = self.lines.entry(ip).or_default();
        e.0 = self.seq;
        e.1 += 1;
        if e.2.len() == LINES_PER_IP {
            e.2.pop_front();
        }
        e.2.push_back(line[..line.len().min(MAX_LINE_KEPT)].to_vec());
    }

    /// Lets mails under way finish (each has its own timeouts) before the daemon exits.
    pub(super) async fn finish_mails(self) {
        let deadline = tokio::time::Instant::now() + WHOIS_TIMEOUT + SENDMAIL_TIMEOUT;
        for h in self.sending {
            let _ = tokio::time::timeout_at(deadline, h).await;
        }
    }

    /// The failure count and lines that led to `ip`'s ban (and forgets them).
    fn take(&mut self, ip: &IpAddr) -> (usize, Vec<Vec<u8>>) {
        self.lines.remove(ip).map(|(_, n, l)| (n, l.into())).unwrap_or_default()
    }
}

/// This machine's name, as fail2ban's `<fq-hostname>`.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

impl Daemon {
    /// Keeps the matched line of each `Found`, and mails each new ban.
    pub(super) fn notify(&mut self, events: &[GuardEvent], line: Option<&[u8]>) {
        let Some(cfg) = self.guard.config().mail.clone() else { return };
        for e in events {
            match e {
                GuardEvent::Found { ip, .. } => {
                    if let Some(l) = line {
                        self.recent.push(*ip, l);
                    }
                }
                GuardEvent::Ban { ip, restored: false, .. } if self.guard.is_enforced(ip) => {
                    let (failures, lines) = self.recent.take(ip);
                    self.recent.sending.retain(|h| !h.is_finished());
                    self.recent.sending.push(tokio::spawn(send(cfg.clone(), self.log.clone(), *ip, failures, lines)));
                }
                _ => {}
            }
        }
    }
}

async fn whois(ip: IpAddr) -> Option<String> {
    whois_with("whois", ip).await
}

/// `program IP`'s output, at most `MAX_WHOIS` bytes of it ever held: the answer comes from a
/// whois server the banned address's owner may run (a referral), so it can be endless.
async fn whois_with(program: &str, ip: IpAddr) -> Option<String> {
    let mut child = Command::new(program)
        .arg(ip.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .ok()?;
    let stdout = child.stdout.take()?;
    let read = async {
        let mut out = Vec::new();
        // Dropping the pipe after the cap ends a whois that keeps writing (EPIPE/SIGPIPE).
        stdout.take(MAX_WHOIS as u64 + 1).read_to_end(&mut out).await?;
        let cut = out.len() > MAX_WHOIS;
        if cut {
            let _ = child.start_kill();
        }
        let status = child.wait().await?;
        std::io::Result::Ok((out, cut, status))
    };
    let (out, cut, status) = tokio::time::timeout(WHOIS_TIMEOUT, read).await.ok()?.ok()?;
    let mut text = String::from_utf8_lossy(&out[..out.len().min(MAX_WHOIS)]).into_owned();
    if (!cut && !status.success()) || text.trim().is_empty() {
        return None;
    }
    if cut {
        text.push_str("\n[whois output cut]\n");
    }
    Some(text)
}

async fn send(cfg: MailConfig, log: Log, ip: IpAddr, failures: usize, lines: Vec<Vec<u8>>) {
    let who = if cfg.kind.whois() { whois(ip).await } else { None };
    let host = hostname();
    let lines = if cfg.kind.lines() { lines } else { Vec::new() };
    let m = BanMail { jail: &log.jail, ip, failures, host: &host, whois: who.as_deref(), lines: &lines };
    let msg = compose(&cfg, &m);
    let run = async {
        let mut child = Command::new(SENDMAIL)
            .args(["-t", "-i"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let mut stdin = child.stdin.take().expect("piped stdin");
        stdin.write_all(msg.as_bytes()).await?;
        drop(stdin);
        let out = child.wait_with_output().await?;
        if out.status.success() {
            Ok(())
        } else {
            Err(std::io::Error::other(format!("{}: {}", out.status, String::from_utf8_lossy(&out.stderr).trim())))
        }
    };
    let r = match tokio::time::timeout(SENDMAIL_TIMEOUT, run).await {
        Ok(r) => r,
        Err(_) => Err(std::io::Error::other(format!("no answer within {}s", SENDMAIL_TIMEOUT.as_secs()))),
    };
    match r {
        Ok(()) => {
            log.msg("fail2ban.actions", Level::Info, format!("[{}] Ban mail for {ip} sent to {}", log.jail, cfg.dest))
        }
        Err(e) => log.msg(
            "fail2ban.actions",
            Level::Error,
            format!("[{}] Ban mail for {ip}: {SENDMAIL} -t -i: {e}", log.jail),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Memory per attacker-chosen address stays bounded: `MAX_IPS` addresses, `LINES_PER_IP`
    /// lines each, `MAX_LINE_KEPT` bytes per line, however long and many the lines fed.
    #[test]
    fn kept_lines_are_bounded_per_address_and_in_total() {
        let mut r = Recent::default();
        let long = vec![b'x'; 64 * 1024];
        for i in 0..(MAX_IPS as u32 + 100) {
            let ip = IpAddr::from(std::net::Ipv6Addr::from(0x2001_0db8_u128 << 96 | u128::from(i)));
            for _ in 0..(LINES_PER_IP + 5) {
                r.push(ip, &long);
            }
        }
        assert_eq!(r.lines.len(), MAX_IPS);
        let bytes: usize = r.lines.values().flat_map(|(_, _, l)| l.iter().map(Vec::len)).sum();
        assert_eq!(bytes, MAX_IPS * LINES_PER_IP * MAX_LINE_KEPT);
        // The newest addresses stayed; the count goes on past the lines kept.
        let last = IpAddr::from(std::net::Ipv6Addr::from(0x2001_0db8_u128 << 96 | u128::from(MAX_IPS as u32 + 99)));
        assert_eq!(r.take(&last).0, LINES_PER_IP + 5);
    }

    /// A whois answer that never ends (a hostile referral server) is cut at `MAX_WHOIS` bytes
    /// as it is read: the daemon never holds more, and does not wait for the timeout.
    #[tokio::test]
    async fn endless_whois_output_is_cut_while_read() {
        let t = std::time::Instant::now();
        // `yes IP` writes "IP\n" forever, as fast as the pipe takes it.
        let text = whois_with("yes", "192.0.2.9".parse().unwrap()).await.expect("output");
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        assert!(text.len() <= MAX_WHOIS + 32, "{}", text.len());
        assert!(text.starts_with("192.0.2.9\n192.0.2.9\n"), "{}", &text[..40]);
        assert!(text.ends_with("\n[whois output cut]\n"));
        // A whois that fails (no network) gives no text; the mail still goes without it.
        assert_eq!(whois_with("false", "192.0.2.9".parse().unwrap()).await, None);
    }
}
