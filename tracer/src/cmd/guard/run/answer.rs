//! The daemon's answers to `tracer guard ban|unban|status` (received on the control socket,
//! handled one at a time in the daemon's loop, so they never race with each other).

use std::net::IpAddr;

use tracer_guard::{DaemonInfo, Event, JailSettings, addr::normalize, now};

use super::super::control::{Reply, Request};
use super::Daemon;

/// Why `ip` must not be banned without `--force` (fail2ban warns about these too).
pub(crate) fn ignored(settings: &JailSettings, ip: &IpAddr) -> Option<String> {
    settings.ignore.check(ip).map(|reason| {
        format!("{ip} is exempt by {reason} (ignoreip/ignoreself): not banned; add --force to ban it anyway")
    })
}

impl Daemon {
    pub(super) fn answer(&mut self, req: Request) -> Reply {
        let name = self.log.jail.clone();
        let jail = match &req {
            Request::Ban { jail, .. } | Request::Unban { jail, .. } | Request::Status { jail, .. } => jail,
        };
        if *jail != name {
            return Reply::fail(2, format!("Sorry but the jail '{jail}' does not exist (the only jail is '{name}')"));
        }
        if let Request::Unban { ip, .. } = &req {
            // A hand-made unban lifts the address in the whole fleet (`bansync`).
            self.publish_unban(normalize(*ip));
        }
        let reply = match req {
            Request::Ban { ip, force, .. } => self.ban(normalize(ip), force),
            Request::Unban { ip, .. } => match self.guard.unban(ip, now()) {
                Ok(Some(e)) if !self.guard.is_lifted(&normalize(ip)) => {
                    self.log.event(&e);
                    Reply {
                        code: 1,
                        stdout: format!("{}\n", e.log_line(&name)),
                        stderr: format!(
                            "{} still holds {}: removing it failed; the daemon retries (see `tracer guard status`)",
                            self.guard.firewall().describe(),
                            normalize(ip)
                        ),
                    }
                }
                Ok(Some(e)) => {
                    self.log.event(&e);
                    Reply::ok(format!("{}\n", e.log_line(&name)))
                }
                Ok(None) => Reply::ok(format!("{:<8}[{name}] {} is not banned\n", "NOTICE", normalize(ip))),
                Err(e) => Reply::fail(1, format!("unban: {e}")),
            },
            Request::Status { json, .. } => {
                let mut st = self.guard.status();
                self.fleet_status(&mut st);
                let t = now();
                st.daemon = Some(DaemonInfo {
                    pid: self.log.pid,
                    started: self.started,
                    uptime: t - self.started,
                    source: self.source.clone(),
                });
                if json {
                    Reply::ok(serde_json::to_string(&st).map(|s| s + "\n").unwrap_or_default())
                } else {
                    Reply::ok(st.to_string())
                }
            }
        };
        self.guard_log();
        reply
    }

    fn ban(&mut self, ip: IpAddr, force: bool) -> Reply {
        if !force && let Some(why) = ignored(&self.guard.jail().settings, &ip) {
            return Reply::fail(2, why);
        }
        match self.guard.ban(ip, now()) {
            Ok(e) => {
                self.log.event(&e);
                self.notify(std::slice::from_ref(&e), None);
                self.publish(std::slice::from_ref(&e));
                let line = format!("{}\n", e.log_line(&self.log.jail));
                if matches!(e, Event::Ban { .. }) && !self.guard.is_enforced(&ip) {
                    // Recorded and retried every second, but not held yet: say so.
                    Reply {
                        code: 1,
                        stdout: line,
                        stderr: format!(
                            "the firewall ({}) does not hold this ban yet; the daemon retries it (see `tracer guard status`)",
                            self.guard.firewall().describe()
                        ),
                    }
                } else {
                    Reply::ok(line)
                }
            }
            Err(e) => Reply::fail(1, format!("ban: {e}")),
        }
    }
}
