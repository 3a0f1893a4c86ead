//! The `[sshd]` jail: its keys, values and defaults checked and turned into a [`JailConfig`],
//! with warnings for what tracer guard does not implement.
//!
//! Each implemented key is declared once, in [`KEYS`], with the function that applies its
//! value; a key missing there is "not implemented" by construction.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use super::ini::{Entry, Resolver, Sections};
use super::{BanAction, Config, ConfigError, JAIL, JailConfig, Warning};
use crate::addr::parse_ignore_list;
use crate::duration::parse_secs;
use crate::mail::{MailConfig, MailKind, check_addresses, check_name};
use crate::ports::PortSpec;
use crate::sshd::Mode;

/// The jail being built while the keys are applied.
#[derive(Default)]
struct Build {
    jail: JailConfig,
    warnings: Vec<Warning>,
    /// `filter = sshd[mode=...]` beats the `mode` key, whatever their order.
    filter_mode: Option<Mode>,
    /// Where a custom `bantime.formula` was given (warned once at the end).
    formula_at: Option<(String, usize)>,
    /// The entry being applied (for warnings).
    file: String,
    line: usize,
    /// `action = …mail…`, and the mail values its parameters set.
    mail: Option<MailKind>,
    mail_params: MailValues,
    /// `destemail`, `sender`, `sendername` keys.
    mail_keys: MailValues,
}

/// Mail header values, each checked when set.
#[derive(Default)]
struct MailValues {
    dest: Option<String>,
    sender: Option<String>,
    sendername: Option<String>,
}

impl MailValues {
    fn set(&mut self, key: &str, v: &str) -> Result<bool, String> {
        let slot = match key {
            "dest" | "destemail" => {
                check_addresses(v)?;
                &mut self.dest
            }
            "sender" => {
                check_addresses(&v.replace("<fq-hostname>", "host"))?;
                &mut self.sender
            }
            "sendername" => {
                check_name(v)?;
                &mut self.sendername
            }
            _ => return Ok(false),
        };
        *slot = Some(v.to_string());
        Ok(true)
    }
}

impl Build {
    fn warn(&mut self, message: String) {
        self.warnings.push(Warning { file: self.file.clone(), line: self.line, message });
    }
}

type Apply = fn(&mut Build, &str) -> Result<(), String>;

/// Every key tracer guard implements for the sshd jail, with what its (expanded, trimmed)
/// value does. Errors become `FILE:LINE: key: message`.
const KEYS: &[(&str, Apply)] = &[
    ("enabled", |b, v| {
        b.jail.enabled = parse_bool(v)?;
        Ok(())
    }),
    ("maxretry", |b, v| {
        b.jail.maxretry = v.parse::<u32>().ok().filter(|&n| n > 0).ok_or(format!("{v:?} is not a positive integer"))?;
        Ok(())
    }),
    ("findtime", |b, v| {
        b.jail.findtime = positive_secs(v, "findtime")?;
        Ok(())
    }),
    ("bantime", |b, v| {
        let s = secs(v)?;
        if s == 0 {
            return Err("bantime must not be 0".into());
        }
        b.jail.bantime = if s < 0 { -1 } else { s };
        Ok(())
    }),
    ("bantime.increment", |b, v| {
        b.jail.increment.enabled = parse_bool(v)?;
        Ok(())
    }),
    ("bantime.factor", |b, v| {
        b.jail.increment.factor = v
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite() && *f > 0.0)
            .ok_or(format!("{v:?} is not a positive number"))?;
        Ok(())
    }),
    ("bantime.maxtime", |b, v| {
        b.jail.increment.maxtime = Some(positive_secs(v, "bantime.maxtime")?);
        Ok(())
    }),
    ("bantime.multipliers", |b, v| {
        b.jail.increment.multipliers = v
            .split_whitespace()
            .map(|m| m.parse::<f64>().ok().filter(|f| f.is_finite() && *f > 0.0))
            .collect::<Option<Vec<_>>>()
            .ok_or(format!("{v:?} is not a list of positive numbers"))?;
        Ok(())
    }),
    ("bantime.formula", |b, v| {
        let norm: String = v.chars().filter(|c| !c.is_whitespace()).collect();
        if norm != "ban.Time*(1<<(ban.Countifban.Count<20else20))*banFactor" {
            b.formula_at = Some((b.file.clone(), b.line));
        }
        Ok(())
    }),
    ("bantime.overalljails", |_, v| parse_bool(v).map(|_| ())),
    ("ignoreip", |b, v| {
        b.jail.ignoreip = parse_ignore_list(v)?;
        Ok(())
    }),
    ("ignoreself", |b, v| {
        b.jail.ignoreself = parse_bool(v)?;
        Ok(())
    }),
    ("port", |b, v| {
        b.jail.ports = PortSpec::parse(v)?;
        Ok(())
    }),
    ("banaction", |b, v| {
        b.jail.banaction = BanAction::parse(v)?;
        Ok(())
    }),
    ("banaction_allports", |_, _| Ok(())),
    ("mode", |b, v| {
        b.jail.mode = v.parse()?;
        Ok(())
    }),
    ("usedns", |b, v| {
        b.jail.usedns = v.parse()?;
        Ok(())
    }),
    ("filter", apply_filter),
    ("logpath", |b, v| {
        let paths: Vec<PathBuf> =
            v.split_whitespace().filter(|p| *p != "tail" && *p != "head").map(PathBuf::from).collect();
        if paths.iter().any(|p| !p.is_absolute()) {
            return Err(format!("{v:?}: log paths must be absolute"));
        }
        if !paths.is_empty() {
            b.jail.logpath = paths;
        }
        Ok(())
    }),
    ("backend", |b, v| {
        let name = v.split('[').next().unwrap_or(v).trim();
        match name {
            "auto" | "polling" | "pyinotify" | "gamin" => {}
            "systemd" => b.warn(
                "backend `systemd` (journal) is not supported: sshd's messages are read from logpath or captured in the kernel"
                    .into(),
            ),
            other => return Err(format!("unknown backend {other:?} (auto, polling, pyinotify, systemd)")),
        }
        b.jail.backend = name.to_string();
        Ok(())
    }),
    ("bansync", |b, v| {
        // Checked in full (and reached) when the daemon starts: the guard has no client.
        let rest = v.strip_prefix("postgresql://").or_else(|| v.strip_prefix("postgres://"));
        if rest.is_none_or(|r| !r.contains('/') || r.contains(char::is_whitespace)) {
            return Err(format!("{v:?} is not a postgresql://USER@HOST[:PORT]/DB URL"));
        }
        b.jail.bansync = Some(v.to_string());
        Ok(())
    }),
    ("chain", |b, v| {
        if v.is_empty() || !v.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-') {
            return Err(format!("{v:?} is not a chain name"));
        }
        b.jail.chain = v.to_string();
        Ok(())
    }),
    ("action", apply_action),
    ("destemail", |b, v| b.mail_keys.set("destemail", v).map(drop)),
    ("sender", |b, v| b.mail_keys.set("sender", v).map(drop)),
    ("sendername", |b, v| b.mail_keys.set("sendername", v).map(drop)),
    ("mta", |b, v| match v {
        "sendmail" => Ok(()),
        "mail" => {
            b.warn("mta = mail: mails go through the sendmail interface (/usr/sbin/sendmail)".into());
            Ok(())
        }
        other => Err(format!("unsupported mta {other:?} (sendmail)")),
    }),
    ("protocol", |_, v| {
        if v != "tcp" {
            return Err(format!("only protocol = tcp is supported for sshd, not {v:?}"));
        }
        Ok(())
    }),
];

fn parse_bool(v: &str) -> Result<bool, String> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" | "ok" => Ok(true),
        "false" | "no" | "off" | "0" => Ok(false),
        other => Err(format!("{other:?} is not a boolean (true/false)")),
    }
}

fn secs(v: &str) -> Result<i64, String> {
    parse_secs(v).map_err(|e| e.to_string())
}

fn positive_secs(v: &str, key: &str) -> Result<i64, String> {
    let s = secs(v)?;
    if s <= 0 {
        return Err(format!("{key} must be positive"));
    }
    Ok(s)
}

/// `filter = sshd[mode=...]`; the obsolete `sshd-ddos` / `sshd-aggressive` filters set the mode.
fn apply_filter(b: &mut Build, v: &str) -> Result<(), String> {
    let (name, params) = match v.split_once('[') {
        Some((n, p)) => (n.trim(), p.trim_end_matches(']')),
        None => (v, ""),
    };
    match name {
        "sshd" => {}
        "sshd-ddos" | "sshd-aggressive" => {
            b.warn(format!("filter `{name}` is obsolete; using sshd with mode = {}", &name[5..]));
            b.filter_mode = Some(name[5..].parse()?);
        }
        other => return Err(format!("only the sshd filter is supported, not {other:?}")),
    }
    for p in params.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match p.split_once('=') {
            Some(("mode", m)) => b.filter_mode = Some(m.trim().trim_matches('"').parse()?),
            Some((k, _)) => b.warn(format!("filter parameter `{}` is not implemented; ignored", k.trim())),
            None => return Err(format!("bad filter parameter {p:?}")),
        }
    }
    Ok(())
}

/// `action`: one action per line, `name[key=value, …]`. The ban action is `banaction`'s; the
/// mail actions (fail2ban's `mail*`/`sendmail*`, e.g. from `%(action_mwl)s`) notify.
fn apply_action(b: &mut Build, v: &str) -> Result<(), String> {
    for line in v.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (name, params) = match line.split_once('[') {
            Some((n, p)) => (n.trim(), p.trim_end().strip_suffix(']').ok_or(format!("unterminated [ in {line:?}"))?),
            None => (line, ""),
        };
        if let Some(kind) = MailKind::from_action(name) {
            b.mail = Some(kind);
            for p in params.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let (k, val) = p.split_once('=').ok_or(format!("bad action parameter {p:?}"))?;
                b.mail_params.set(k.trim(), val.trim().trim_matches('"'))?;
            }
        } else if name == "ban" || BanAction::parse(name).is_ok() {
            // The ban itself: `banaction` decides how.
        } else {
            b.warn(format!("action `{name}` is not implemented by tracer guard; ignored"));
        }
    }
    Ok(())
}

/// Names used through `%(name)s` anywhere: variables, not unimplemented options.
fn referenced(sections: &Sections) -> HashSet<String> {
    let mut out = HashSet::new();
    for e in sections.values().flat_map(|m| m.values()) {
        let mut s = e.value.as_str();
        while let Some(i) = s.find("%(") {
            let Some((n, t)) = s[i + 2..].split_once(")s") else { break };
            out.insert(n.strip_prefix("known/").unwrap_or(n).to_string());
            s = t;
        }
    }
    out
}

fn invalid_at(entry: Option<&Entry>, key: &str, message: &str) -> ConfigError {
    ConfigError::Invalid {
        file: entry.map(|e| e.file.clone()).unwrap_or_default(),
        line: entry.map(|e| e.line).unwrap_or(0),
        key: key.into(),
        message: message.into(),
    }
}

pub(super) fn build(sections: &Sections, order: &[String]) -> Result<Config, ConfigError> {
    let empty = BTreeMap::new();
    let r = Resolver { sections, section: JAIL };
    let referenced = referenced(sections);
    // Effective entries of the sshd jail: DEFAULT, overridden by [sshd].
    let mut keys: BTreeMap<&str, &Entry> = BTreeMap::new();
    for (k, e) in sections.get("DEFAULT").unwrap_or(&empty).iter().chain(sections.get(JAIL).unwrap_or(&empty)) {
        keys.insert(k.as_str(), e);
    }
    let mut b = Build::default();
    for (&key, &entry) in &keys {
        (b.file, b.line) = (entry.file.clone(), entry.line);
        let invalid = |message: String| ConfigError::Invalid {
            file: entry.file.clone(),
            line: entry.line,
            key: key.to_string(),
            message,
        };
        let Some((_, apply)) = KEYS.iter().find(|(k, _)| *k == key) else {
            if !referenced.contains(key) {
                b.warn(format!("`{key}` is not implemented by tracer guard; ignored"));
            }
            continue;
        };
        let v = r.expand(&entry.value).map_err(invalid)?;
        apply(&mut b, v.trim()).map_err(invalid)?;
    }
    let Build { mut jail, mut warnings, filter_mode, formula_at, mail, mail_params: p, mail_keys: k, .. } = b;
    jail.mail = mail.map(|kind| MailConfig {
        kind,
        dest: p.dest.or(k.dest).unwrap_or_else(|| "root@localhost".into()),
        sender: p.sender.or(k.sender).unwrap_or_else(|| "root@<fq-hostname>".into()),
        sendername: p.sendername.or(k.sendername).unwrap_or_else(|| "Fail2Ban".into()),
    });
    if let Some(m) = filter_mode {
        jail.mode = m;
    }
    if let Some((file, line)) = formula_at {
        warnings.push(Warning {
            file,
            line,
            message: "custom `bantime.formula` is not supported; using the default formula".into(),
        });
    }
    if let BanAction::Nftables { allports: true } | BanAction::Iptables { allports: true, .. } = jail.banaction {
        jail.ports = PortSpec::All;
    }
    if let BanAction::Iptables { multiport: true, .. } = jail.banaction
        && jail.ports.multiport_slots() > 15
    {
        return Err(invalid_at(keys.get("port").copied(), "port", "iptables multiport allows at most 15 ports"));
    }
    if let BanAction::Iptables { multiport: false, .. } = jail.banaction
        && !matches!(&jail.ports, PortSpec::List(l) if l.len() == 1)
    {
        return Err(invalid_at(
            keys.get("banaction").copied(),
            "banaction",
            "banaction = iptables takes a single port or range; use iptables-multiport",
        ));
    }
    warnings.extend(other_sections(sections, order));
    Ok(Config { jail, warnings })
}

/// One warning per section other than `[DEFAULT]` and `[sshd]`.
fn other_sections(sections: &Sections, order: &[String]) -> Vec<Warning> {
    let mut out = Vec::new();
    for name in order.iter().filter(|n| *n != "DEFAULT" && *n != JAIL) {
        let m = &sections[name];
        let (file, line) = m.values().map(|e| (e.file.clone(), e.line)).min_by_key(|(_, l)| *l).unwrap_or_default();
        let r = Resolver { sections, section: name };
        let enabled =
            r.raw("enabled").and_then(|e| r.expand(&e.value).ok()).is_some_and(|v| parse_bool(&v).unwrap_or(false));
        let message = match name.as_str() {
            "INCLUDES" => "[INCLUDES] is not supported: pass the files to load explicitly".to_string(),
            "Definition" | "Init" => format!("[{name}] belongs in filter/action files; ignored"),
            _ if enabled => format!("jail [{name}] is enabled but only [sshd] is supported; it is ignored"),
            _ => format!("jail [{name}] is not supported; ignored"),
        };
        out.push(Warning { file, line: line.saturating_sub(1).max(1), message });
    }
    out
}
