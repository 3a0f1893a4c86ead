//! jail.conf / jail.local reader with fail2ban's keys and defaults for the `[sshd]` jail.
//!
//! INI as fail2ban reads it: `[section]`, `key = value` (or `key: value`), indented
//! continuation lines, `#`/`;` comment lines, inline ` ;` (and ` #`) comments, `[DEFAULT]`
//! inherited by every jail, `%(name)s` interpolation (section, then DEFAULT, then Debian's
//! path variables such as `sshd_log`). Later files override earlier ones (jail.conf, then
//! jail.local). Keys the tool does not implement give warnings; bad values give an error that
//! names file, line and key, and the caller must then change nothing.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use crate::addr::{IpNet, parse_ignore_list};
use crate::duration::parse_secs;
use crate::ports::PortSpec;
use crate::sshd::Mode;

/// The only jail this tool runs.
pub const JAIL: &str = "sshd";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{file}:{line}: {message}")]
    Syntax {
        file: String,
        line: usize,
        message: String,
    },
    #[error("{file}:{line}: {key}: {message}")]
    Invalid {
        file: String,
        line: usize,
        key: String,
        message: String,
    },
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
            "nftables" | "nftables-multiport" | "nftables-allports" => {
                Ok(BanAction::Nftables { allports })
            }
            "iptables-multiport" | "iptables-allports" => Ok(BanAction::Iptables {
                multiport: true,
                allports,
            }),
            "iptables" => Ok(BanAction::Iptables {
                multiport: false,
                allports,
            }),
            other => Err(format!(
                "unsupported banaction {other:?} (nftables, nftables-multiport, nftables-allports, iptables-multiport, iptables, iptables-allports)"
            )),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            BanAction::Nftables { .. } => "nftables",
            BanAction::Iptables {
                multiport: true, ..
            } => "iptables-multiport",
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
        Increment {
            enabled: false,
            factor: 1.0,
            maxtime: None,
            multipliers: Vec::new(),
        }
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
    pub logpath: Vec<PathBuf>,
    pub backend: String,
    /// iptables chain the jump is put in (fail2ban's `chain`, default INPUT).
    pub chain: String,
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
            logpath: vec![default_logpath()],
            backend: "auto".into(),
            chain: "INPUT".into(),
        }
    }
}

/// `/var/log/auth.log` (Debian) unless only `/var/log/secure` (Red Hat) exists.
pub fn default_logpath() -> PathBuf {
    let secure = Path::new("/var/log/secure");
    if !Path::new("/var/log/auth.log").exists() && secure.exists() {
        secure.into()
    } else {
        "/var/log/auth.log".into()
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub jail: JailConfig,
    pub warnings: Vec<Warning>,
}

#[derive(Debug, Clone)]
struct Entry {
    value: String,
    file: String,
    line: usize,
}

type Sections = BTreeMap<String, BTreeMap<String, Entry>>;

/// Loads files in order (e.g. jail.conf then jail.local); later values override.
pub fn load<P: AsRef<Path>>(paths: &[P]) -> Result<Config, ConfigError> {
    let mut texts = Vec::new();
    for p in paths {
        let p = p.as_ref();
        let t = std::fs::read_to_string(p).map_err(|e| ConfigError::Io {
            path: p.display().to_string(),
            source: e,
        })?;
        texts.push((p.display().to_string(), t));
    }
    parse_many(
        &texts
            .iter()
            .map(|(n, t)| (n.as_str(), t.as_str()))
            .collect::<Vec<_>>(),
    )
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

fn parse_ini(
    text: &str,
    file: &str,
    out: &mut Sections,
    order: &mut Vec<String>,
) -> Result<(), ConfigError> {
    let mut section: Option<String> = None;
    let mut last_key: Option<String> = None;
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            // Blank lines end a multi-line value only if followed by a non-indented line; keep going.
            continue;
        }
        let indented = raw.starts_with([' ', '\t']);
        if indented && let (Some(s), Some(k)) = (&section, &last_key) {
            let e = out
                .get_mut(s)
                .and_then(|m| m.get_mut(k))
                .expect("current key");
            let v = strip_inline_comment(trimmed);
            if !v.is_empty() {
                if !e.value.is_empty() {
                    e.value.push('\n');
                }
                e.value.push_str(v);
            }
            continue;
        }
        if let Some(name) = trimmed.strip_prefix('[') {
            let name = name.strip_suffix(']').ok_or_else(|| ConfigError::Syntax {
                file: file.into(),
                line: line_no,
                message: format!("bad section header {trimmed:?}"),
            })?;
            let name = name.trim().to_string();
            if !out.contains_key(&name) {
                order.push(name.clone());
            }
            out.entry(name.clone()).or_default();
            section = Some(name);
            last_key = None;
            continue;
        }
        let sep = trimmed
            .find(['=', ':'])
            .ok_or_else(|| ConfigError::Syntax {
                file: file.into(),
                line: line_no,
                message: format!("expected `key = value`, got {trimmed:?}"),
            })?;
        let key = trimmed[..sep].trim().to_string();
        if key.is_empty() {
            return Err(ConfigError::Syntax {
                file: file.into(),
                line: line_no,
                message: "empty key".into(),
            });
        }
        let Some(s) = &section else {
            return Err(ConfigError::Syntax {
                file: file.into(),
                line: line_no,
                message: format!("key {key:?} outside of any [section]"),
            });
        };
        let value = strip_inline_comment(trimmed[sep + 1..].trim()).to_string();
        out.get_mut(s).expect("section").insert(
            key.clone(),
            Entry {
                value,
                file: file.into(),
                line: line_no,
            },
        );
        last_key = Some(key);
    }
    Ok(())
}

/// fail2ban takes ` ;` as an inline comment; ` #` is taken too since jail.local files in the wild use it.
fn strip_inline_comment(v: &str) -> &str {
    let b = v.as_bytes();
    for i in 1..b.len() {
        if (b[i] == b';' || b[i] == b'#') && b[i - 1].is_ascii_whitespace() {
            return v[..i].trim_end();
        }
    }
    v
}

/// Keys this tool implements for the sshd jail.
const IMPLEMENTED: &[&str] = &[
    "enabled",
    "maxretry",
    "findtime",
    "bantime",
    "bantime.increment",
    "bantime.factor",
    "bantime.maxtime",
    "bantime.multipliers",
    "bantime.formula",
    "bantime.overalljails",
    "ignoreip",
    "ignoreself",
    "port",
    "banaction",
    "banaction_allports",
    "mode",
    "filter",
    "logpath",
    "backend",
    "chain",
    "protocol",
];

/// Debian's paths-debian.conf / paths-common.conf values that jail.conf refers to.
fn builtin_var(name: &str) -> Option<&'static str> {
    Some(match name {
        "sshd_log" | "syslog_authpriv" => "/var/log/auth.log",
        "sshd_backend" => "auto",
        "syslog_backend" | "default_backend" => "auto",
        "banaction" => "nftables",
        "banaction_allports" => "nftables[type=allports]",
        "port" => "0:65535",
        "mode" => "normal",
        "filter" => "sshd",
        _ => return None,
    })
}

struct Resolver<'a> {
    sections: &'a Sections,
    section: &'a str,
}

impl Resolver<'_> {
    fn raw(&self, key: &str) -> Option<&Entry> {
        self.sections
            .get(self.section)
            .and_then(|m| m.get(key))
            .or_else(|| self.sections.get("DEFAULT").and_then(|m| m.get(key)))
    }

    /// Expands `%(name)s`; `%%` is a literal percent sign.
    fn expand(&self, v: &str, depth: usize) -> Result<String, String> {
        if depth > 10 {
            return Err("interpolation nests too deeply".into());
        }
        let mut out = String::new();
        let mut rest = v;
        while let Some(i) = rest.find('%') {
            out.push_str(&rest[..i]);
            let after = &rest[i + 1..];
            if let Some(a) = after.strip_prefix('%') {
                out.push('%');
                rest = a;
            } else if let Some(a) = after.strip_prefix('(') {
                let (name, tail) = a
                    .split_once(")s")
                    .ok_or_else(|| format!("unterminated interpolation in {v:?}"))?;
                let name = name.strip_prefix("known/").unwrap_or(name);
                let val = if name == "__name__" {
                    self.section.to_string()
                } else if let Some(e) = self.raw(name) {
                    self.expand(&e.value, depth + 1)?
                } else if let Some(b) = builtin_var(name) {
                    b.to_string()
                } else {
                    return Err(format!("%({name})s is not defined"));
                };
                out.push_str(&val);
                rest = tail;
            } else {
                out.push('%');
                rest = after;
            }
        }
        out.push_str(rest);
        Ok(out)
    }
}

fn parse_bool(v: &str) -> Result<bool, String> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" | "ok" => Ok(true),
        "false" | "no" | "off" | "0" => Ok(false),
        other => Err(format!("{other:?} is not a boolean (true/false)")),
    }
}

fn build(sections: &Sections, order: &[String]) -> Result<Config, ConfigError> {
    let mut warnings = Vec::new();
    let mut jail = JailConfig::default();
    let empty = BTreeMap::new();
    let sshd = sections.get(JAIL).unwrap_or(&empty);
    let default = sections.get("DEFAULT").unwrap_or(&empty);
    let r = Resolver {
        sections,
        section: JAIL,
    };

    // Names used through %(name)s are variables, not unimplemented options.
    let mut referenced = HashSet::new();
    for m in sections.values() {
        for e in m.values() {
            let mut s = e.value.as_str();
            while let Some(i) = s.find("%(") {
                if let Some((n, t)) = s[i + 2..].split_once(")s") {
                    referenced.insert(n.strip_prefix("known/").unwrap_or(n).to_string());
                    s = t;
                } else {
                    break;
                }
            }
        }
    }

    // Effective entries of the sshd jail: DEFAULT, overridden by [sshd].
    let mut keys: BTreeMap<&str, &Entry> = BTreeMap::new();
    for (k, e) in default.iter().chain(sshd.iter()) {
        keys.insert(k.as_str(), e);
    }
    let mut formula_mode = None;
    // `filter = sshd[mode=...]` beats the `mode` key, whatever their order.
    let mut filter_mode = None;
    for (&key, &entry) in &keys {
        let invalid = |message: String| ConfigError::Invalid {
            file: entry.file.clone(),
            line: entry.line,
            key: key.to_string(),
            message,
        };
        if !IMPLEMENTED.contains(&key) {
            if !referenced.contains(key) {
                warnings.push(Warning {
                    file: entry.file.clone(),
                    line: entry.line,
                    message: format!("`{key}` is not implemented by tracer guard; ignored"),
                });
            }
            continue;
        }
        let v = r.expand(&entry.value, 0).map_err(invalid)?;
        let v = v.trim();
        match key {
            "enabled" => jail.enabled = parse_bool(v).map_err(invalid)?,
            "maxretry" => {
                jail.maxretry = v
                    .parse::<u32>()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| invalid(format!("{v:?} is not a positive integer")))?
            }
            "findtime" => {
                let s = parse_secs(v).map_err(|e| invalid(e.to_string()))?;
                if s <= 0 {
                    return Err(invalid("findtime must be positive".into()));
                }
                jail.findtime = s;
            }
            "bantime" => {
                let s = parse_secs(v).map_err(|e| invalid(e.to_string()))?;
                if s == 0 {
                    return Err(invalid("bantime must not be 0".into()));
                }
                jail.bantime = if s < 0 { -1 } else { s };
            }
            "bantime.increment" => jail.increment.enabled = parse_bool(v).map_err(invalid)?,
            "bantime.factor" => {
                jail.increment.factor = v
                    .parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite() && *f > 0.0)
                    .ok_or_else(|| invalid(format!("{v:?} is not a positive number")))?
            }
            "bantime.maxtime" => {
                let s = parse_secs(v).map_err(|e| invalid(e.to_string()))?;
                if s <= 0 {
                    return Err(invalid("bantime.maxtime must be positive".into()));
                }
                jail.increment.maxtime = Some(s);
            }
            "bantime.multipliers" => {
                jail.increment.multipliers = v
                    .split_whitespace()
                    .map(|m| m.parse::<f64>().ok().filter(|f| f.is_finite() && *f > 0.0))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| invalid(format!("{v:?} is not a list of positive numbers")))?;
            }
            "bantime.formula" => {
                let norm: String = v.chars().filter(|c| !c.is_whitespace()).collect();
                if norm != "ban.Time*(1<<(ban.Countifban.Count<20else20))*banFactor" {
                    formula_mode = Some((entry.file.clone(), entry.line));
                }
            }
            "bantime.overalljails" => {
                parse_bool(v).map_err(invalid)?;
            }
            "ignoreip" => jail.ignoreip = parse_ignore_list(v).map_err(invalid)?,
            "ignoreself" => jail.ignoreself = parse_bool(v).map_err(invalid)?,
            "port" => jail.ports = PortSpec::parse(v).map_err(invalid)?,
            "banaction" => jail.banaction = BanAction::parse(v).map_err(invalid)?,
            "banaction_allports" => {}
            "mode" => jail.mode = v.parse().map_err(invalid)?,
            "filter" => {
                let (name, params) = match v.split_once('[') {
                    Some((n, p)) => (n.trim(), p.trim_end_matches(']')),
                    None => (v, ""),
                };
                match name {
                    "sshd" => {}
                    "sshd-ddos" | "sshd-aggressive" => {
                        warnings.push(Warning {
                            file: entry.file.clone(),
                            line: entry.line,
                            message: format!(
                                "filter `{name}` is obsolete; using sshd with mode = {}",
                                &name[5..]
                            ),
                        });
                        filter_mode = Some(name[5..].parse().map_err(invalid)?);
                    }
                    other => {
                        return Err(invalid(format!(
                            "only the sshd filter is supported, not {other:?}"
                        )));
                    }
                }
                for p in params.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                    match p.split_once('=') {
                        Some(("mode", m)) => {
                            filter_mode = Some(m.trim().trim_matches('"').parse().map_err(invalid)?)
                        }
                        Some((k, _)) => warnings.push(Warning {
                            file: entry.file.clone(),
                            line: entry.line,
                            message: format!(
                                "filter parameter `{}` is not implemented; ignored",
                                k.trim()
                            ),
                        }),
                        None => return Err(invalid(format!("bad filter parameter {p:?}"))),
                    }
                }
            }
            "logpath" => {
                let paths: Vec<PathBuf> = v
                    .split_whitespace()
                    .filter(|p| *p != "tail" && *p != "head")
                    .map(PathBuf::from)
                    .collect();
                if paths.iter().any(|p| !p.is_absolute()) {
                    return Err(invalid(format!("{v:?}: log paths must be absolute")));
                }
                if !paths.is_empty() {
                    jail.logpath = paths;
                }
            }
            "backend" => {
                let b = v.split('[').next().unwrap_or(v).trim();
                match b {
                    "auto" | "polling" | "pyinotify" | "gamin" => {}
                    "systemd" => warnings.push(Warning {
                        file: entry.file.clone(),
                        line: entry.line,
                        message: "backend `systemd` (journal) is not supported: sshd's messages are read from logpath or captured in the kernel".into(),
                    }),
                    other => return Err(invalid(format!("unknown backend {other:?} (auto, polling, pyinotify, systemd)"))),
                }
                jail.backend = b.to_string();
            }
            "chain" => {
                if v.is_empty()
                    || !v
                        .bytes()
                        .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
                {
                    return Err(invalid(format!("{v:?} is not a chain name")));
                }
                jail.chain = v.to_string();
            }
            "protocol" => {
                if v != "tcp" {
                    return Err(invalid(format!(
                        "only protocol = tcp is supported for sshd, not {v:?}"
                    )));
                }
            }
            _ => unreachable!("implemented key without handler: {key}"),
        }
    }
    if let Some(m) = filter_mode {
        jail.mode = m;
    }
    if let Some((file, line)) = formula_mode {
        warnings.push(Warning {
            file,
            line,
            message: "custom `bantime.formula` is not supported; using the default formula".into(),
        });
    }
    if let BanAction::Nftables { allports: true } | BanAction::Iptables { allports: true, .. } =
        jail.banaction
    {
        jail.ports = PortSpec::All;
    }
    if let BanAction::Iptables {
        multiport: true, ..
    } = jail.banaction
        && jail.ports.multiport_slots() > 15
    {
        let e = keys.get("port").copied();
        return Err(ConfigError::Invalid {
            file: e.map(|e| e.file.clone()).unwrap_or_default(),
            line: e.map(|e| e.line).unwrap_or(0),
            key: "port".into(),
            message: "iptables multiport allows at most 15 ports".into(),
        });
    }
    if let BanAction::Iptables {
        multiport: false, ..
    } = jail.banaction
        && !matches!(&jail.ports, PortSpec::List(l) if l.len() == 1)
    {
        let e = keys.get("banaction").copied();
        return Err(ConfigError::Invalid {
            file: e.map(|e| e.file.clone()).unwrap_or_default(),
            line: e.map(|e| e.line).unwrap_or(0),
            key: "banaction".into(),
            message: "banaction = iptables takes a single port or range; use iptables-multiport"
                .into(),
        });
    }

    for name in order {
        if name == "DEFAULT" || name == JAIL {
            continue;
        }
        let m = &sections[name];
        let first_line = m
            .values()
            .map(|e| (e.file.clone(), e.line))
            .min_by_key(|(_, l)| *l);
        let (file, line) = first_line.unwrap_or_default();
        let r = Resolver {
            sections,
            section: name,
        };
        let enabled = r
            .raw("enabled")
            .and_then(|e| r.expand(&e.value, 0).ok())
            .is_some_and(|v| parse_bool(&v).unwrap_or(false));
        let message = match name.as_str() {
            "INCLUDES" => {
                "[INCLUDES] is not supported: pass the files to load explicitly".to_string()
            }
            "Definition" | "Init" => format!("[{name}] belongs in filter/action files; ignored"),
            _ if enabled => {
                format!("jail [{name}] is enabled but only [sshd] is supported; it is ignored")
            }
            _ => format!("jail [{name}] is not supported; ignored"),
        };
        warnings.push(Warning {
            file,
            line: line.saturating_sub(1).max(1),
            message,
        });
    }
    Ok(Config { jail, warnings })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> (String, usize, String, String) {
        match parse_str(text, "jail.local").unwrap_err() {
            ConfigError::Invalid {
                file,
                line,
                key,
                message,
            } => (file, line, key, message),
            e => panic!("unexpected {e}"),
        }
    }

    #[test]
    fn seed_sample_loads() {
        let c = parse_str(
            "[DEFAULT]\nbantime = 3600\nbanaction = iptables-multiport\n[sshd]\nenabled = true\n",
            "jail.local",
        )
        .unwrap();
        assert!(c.jail.enabled);
        assert_eq!(c.jail.bantime, 3600);
        assert_eq!(
            c.jail.banaction,
            BanAction::Iptables {
                multiport: true,
                allports: false
            }
        );
        assert_eq!((c.jail.maxretry, c.jail.findtime), (5, 600));
        assert_eq!(c.jail.ports, PortSpec::ssh());
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }

    #[test]
    fn defaults_match_fail2ban() {
        let c = parse_str("", "x").unwrap().jail;
        assert!(!c.enabled);
        assert_eq!((c.maxretry, c.findtime, c.bantime), (5, 600, 600));
        assert_eq!(c.banaction, BanAction::Nftables { allports: false });
        assert_eq!(c.mode, Mode::Normal);
        assert!(c.ignoreself);
        assert_eq!(c.ignoreip.len(), 2);
        assert!(!c.increment.enabled);
    }

    #[test]
    fn full_file_with_interpolation_and_warnings() {
        let text = "\
[DEFAULT]
ignoreip = 127.0.0.1/8 ::1, 192.0.2.0/24
bantime  = 1h30m ; comment
findtime = 10m
bantime.increment = true
bantime.factor = 2
bantime.maxtime = 1w
bantime.multipliers = 1 5 30
action = %(action_mwl)s
destemail = root@localhost
sendername = Fail2Ban
mta = sendmail
my_port = 2222

[sshd]
enabled = true
port    = ssh,%(my_port)s,3000:3005
mode    = aggressive
logpath = %(sshd_log)s
backend = %(sshd_backend)s
filter  = sshd[mode=extra]

[apache-auth]
enabled = true

[nginx-http-auth]
port = http
";
        let c = parse_str(text, "jail.local").unwrap();
        let j = &c.jail;
        assert_eq!(j.bantime, 5400);
        assert_eq!(j.ports.iptables(), "22,2222,3000:3005");
        assert_eq!(j.mode, Mode::Extra, "filter's mode wins");
        assert_eq!(j.logpath, vec![PathBuf::from("/var/log/auth.log")]);
        assert_eq!(
            j.increment,
            Increment {
                enabled: true,
                factor: 2.0,
                maxtime: Some(604800),
                multipliers: vec![1.0, 5.0, 30.0]
            }
        );
        let w: Vec<String> = c.warnings.iter().map(|w| w.to_string()).collect();
        for want in [
            "jail.local:9: `action`",
            "jail.local:10: `destemail`",
            "jail.local:11: `sendername`",
            "jail.local:12: `mta`",
        ] {
            assert!(
                w.iter().any(|x| x.starts_with(want)),
                "missing {want} in {w:?}"
            );
        }
        assert!(!w.iter().any(|x| x.contains("my_port")), "{w:?}");
        assert!(
            w.iter().any(|x| x.contains("[apache-auth] is enabled")),
            "{w:?}"
        );
        assert!(
            w.iter()
                .any(|x| x.contains("[nginx-http-auth] is not supported")),
            "{w:?}"
        );
    }

    #[test]
    fn bad_values_name_file_line_key() {
        let (f, l, k, _) = err("[sshd]\nenabled = true\nmaxretry = five\n");
        assert_eq!((f.as_str(), l, k.as_str()), ("jail.local", 3, "maxretry"));
        let (_, line, key, msg) = err("[DEFAULT]\nbantime = 10x\n[sshd]\nenabled=true\n");
        assert_eq!((line, key.as_str()), (2, "bantime"));
        assert!(msg.contains("10x"), "{msg}");
        let (_, line, key, _) = err("[sshd]\n\nignoreip = 127.0.0.1/8 not-an-ip\n");
        assert_eq!((line, key.as_str()), (3, "ignoreip"));
        assert_eq!(err("[sshd]\nbanaction = ufw\n").2, "banaction");
        assert_eq!(err("[sshd]\nport = nosuch\n").2, "port");
        assert_eq!(err("[sshd]\nmode = silly\n").2, "mode");
        assert_eq!(err("[sshd]\nenabled = maybe\n").2, "enabled");
        assert_eq!(err("[sshd]\nport = %(undefined_var)s\n").2, "port");
        let e = parse_str("[sshd]\nmaxretry = five\n", "jail.local")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "jail.local:2: maxretry: \"five\" is not a positive integer"
        );
        assert!(matches!(
            parse_str("novalue\n", "f"),
            Err(ConfigError::Syntax { line: 1, .. })
        ));
    }

    #[test]
    fn multiline_and_later_file_overrides() {
        let c = parse_many(&[
            ("jail.conf", "[DEFAULT]\nbantime = 10m\n[sshd]\nport = ssh\nlogpath = /var/log/a.log\n    /var/log/b.log\n"),
            ("jail.local", "[sshd]\nenabled = true\nbantime = -1\n"),
        ])
        .unwrap();
        assert!(c.jail.enabled);
        assert_eq!(c.jail.bantime, -1);
        assert_eq!(
            c.jail.logpath,
            vec![
                PathBuf::from("/var/log/a.log"),
                PathBuf::from("/var/log/b.log")
            ]
        );
    }
}
