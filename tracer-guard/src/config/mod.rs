//! jail.conf / jail.local reader with fail2ban's keys and defaults for the `[sshd]` jail.
//!
//! INI as fail2ban reads it: `[section]`, `key = value` (or `key: value`), indented
//! continuation lines, `#`/`;` comment lines, inline ` ;` (and ` #`) comments, `[DEFAULT]`
//! inherited by every jail, `%(name)s` interpolation (section, then DEFAULT, then Debian's
//! path variables such as `sshd_log`). Later files override earlier ones (jail.conf, then
//! jail.local). Keys the tool does not implement give warnings; bad values give an error that
//! names file, line and key, and the caller must then change nothing.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::addr::{IpNet, UseDns, parse_ignore_list};
use crate::mail::MailConfig;
use crate::ports::PortSpec;
use crate::sshd::Mode;

mod ini;
mod jail;
#[cfg(test)]
mod tests;

use ini::{Sections, parse_ini};
use jail::build;

/// The only jail this tool runs.
pub const JAIL: &str = "sshd";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{file}:{line}: {message}")]
    Syntax { file: String, line: usize, message: String },
    #[error("{file}:{line}: {key}: {message}")]
    Invalid { file: String, line: usize, key: String, message: String },
}

/// A non-fatal remark about the configuration, e.g. an unimplemented key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

/// Which firewall the bans go to (`banaction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BanAction {
    /// `nftables` (fail2ban's default on Debian): own table, timeout sets.
    Nftables { allports: bool },
    /// `iptables-multiport` / `iptables` / `iptables-allports`: fail2ban's `f2b-<jail>` chain.
    Iptables { multiport: bool, allports: bool },
}

impl BanAction {
    fn parse(v: &str) -> Result<Self, String> {
        let (name, params) = match v.split_once('[') {
            Some((n, p)) => (n.trim(), p.trim_end_matches(']')),
            None => (v.trim(), ""),
        };
        let allports = name.ends_with("-allports") || params.contains("type=allports");
        match name {
            "nftables" | "nftables-multiport" | "nftables-allports" => Ok(BanAction::Nftables { allports }),
            "iptables-multiport" | "iptables-allports" => Ok(BanAction::Iptables { multiport: true, allports }),
            "iptables" => Ok(BanAction::Iptables { multiport: false, allports }),
            other => Err(format!(
                "unsupported banaction {other:?} (nftables, nftables-multiport, nftables-allports, iptables-multiport, iptables, iptables-allports)"
            )),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            BanAction::Nftables { .. } => "nftables",
            BanAction::Iptables { multiport: true, .. } => "iptables-multiport",
            BanAction::Iptables { .. } => "iptables",
        }
    }
}

/// `bantime.*` settings for repeat offenders.
#[derive(Debug, Clone, PartialEq)]
pub struct Increment {
    pub enabled: bool,
    pub factor: f64,
    /// Cap in seconds.
    pub maxtime: Option<i64>,
    /// When set, replace the default `2^count` growth (fail2ban's `bantime.multipliers`).
    pub multipliers: Vec<f64>,
}

impl Default for Increment {
    fn default() -> Self {
        Increment { enabled: false, factor: 1.0, maxtime: None, multipliers: Vec::new() }
    }
}

/// The effective `[sshd]` jail.
#[derive(Debug, Clone, PartialEq)]
pub struct JailConfig {
    pub name: String,
    pub enabled: bool,
    pub maxretry: u32,
    /// Seconds.
    pub findtime: i64,
    /// Seconds; negative means permanent.
    pub bantime: i64,
    pub increment: Increment,
    pub ignoreip: Vec<IpNet>,
    pub ignoreself: bool,
    pub ports: PortSpec,
    pub banaction: BanAction,
    pub mode: Mode,
    /// fail2ban's `usedns`: host names in text sources (default warn: resolve).
    pub usedns: UseDns,
    pub logpath: Vec<PathBuf>,
    pub backend: String,
    /// iptables chain the jump is put in (fail2ban's `chain`, default INPUT).
    pub chain: String,
    /// `action = mail…`: a mail on each ban.
    pub mail: Option<MailConfig>,
    /// `bansync = postgresql://…`: bans shared with every guard using the same database.
    pub bansync: Option<String>,
}

impl Default for JailConfig {
    fn default() -> Self {
        JailConfig {
            name: JAIL.into(),
            enabled: false,
            maxretry: 5,
            findtime: 600,
            bantime: 600,
            increment: Increment::default(),
            ignoreip: parse_ignore_list("127.0.0.1/8 ::1").expect("default ignoreip"),
            ignoreself: true,
            ports: PortSpec::ssh(),
            banaction: BanAction::Nftables { allports: false },
            mode: Mode::Normal,
            usedns: UseDns::Warn,
            logpath: vec![default_logpath()],
            backend: "auto".into(),
            chain: "INPUT".into(),
            mail: None,
            bansync: None,
        }
    }
}

/// `/var/log/auth.log` (Debian) unless only `/var/log/secure` (Red Hat) exists.
pub fn default_logpath() -> PathBuf {
    let secure = Path::new("/var/log/secure");
    if !Path::new("/var/log/auth.log").exists() && secure.exists() { secure.into() } else { "/var/log/auth.log".into() }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub jail: JailConfig,
    pub warnings: Vec<Warning>,
}

/// Loads files in order (e.g. jail.conf then jail.local); later values override.
pub fn load<P: AsRef<Path>>(paths: &[P]) -> Result<Config, ConfigError> {
    let mut texts = Vec::new();
    for p in paths {
        let p = p.as_ref();
        let t = std::fs::read_to_string(p).map_err(|e| ConfigError::Io { path: p.display().to_string(), source: e })?;
        texts.push((p.display().to_string(), t));
    }
    parse_many(&texts.iter().map(|(n, t)| (n.as_str(), t.as_str())).collect::<Vec<_>>())
}

/// Parses one configuration text; `file` is used in messages.
pub fn parse_str(text: &str, file: &str) -> Result<Config, ConfigError> {
    parse_many(&[(file, text)])
}

fn parse_many(files: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let mut sections: Sections = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    for (file, text) in files {
        parse_ini(text, file, &mut sections, &mut order)?;
    }
    build(&sections, &order)
}
