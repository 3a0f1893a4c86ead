//! SIGHUP: re-read the configuration like `fail2ban-client reload`. Current bans and counted
//! failures stay; a configuration that does not load is logged (FILE:LINE: key: message)
//! and the running one stays in force.

use std::path::PathBuf;

use tracer_guard::{Level, now};

use super::super::load_config;
use super::{Daemon, settings};

impl Daemon {
    pub(super) fn reload(&mut self, config: &[PathBuf]) {
        let jail = self.log.jail.clone();
        let keep = "keeping the running configuration";
        match load_config(config, false) {
            Err(e) => self.log.msg("fail2ban.jail", Level::Error, format!("[{jail}] reload: {e:#}; {keep}")),
            Ok((cfg, _)) if !cfg.enabled => self.log.msg(
                "fail2ban.jail",
                Level::Error,
                format!("[{jail}] reload: the jail is no longer enabled; {keep} (stop the daemon to stop the jail)"),
            ),
            Ok((cfg, _)) => match self.guard.reload(&cfg, now()) {
                Ok(()) => self.log.msg(
                    "fail2ban.jail",
                    Level::Info,
                    format!("Jail '{jail}' reloaded ({})", settings(&cfg, &self.source)),
                ),
                Err(e) => self.log.error(&format!("reload ({keep})"), e),
            },
        }
        self.guard_log();
    }
}
