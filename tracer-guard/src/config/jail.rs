//! The `[sshd]` jail: its keys, values and defaults checked and turned into a [`JailConfig`],
//! with warnings for what tracer guard does not implement.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use super::ini::{Entry, Resolver, Sections};
use super::{BanAction, Config, ConfigError, JAIL, JailConfig, Warning};
use crate::addr::parse_ignore_list;
use crate::duration::parse_secs;
use crate::ports::PortSpec;

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
    "usedns",
    "filter",
    "logpath",
    "backend",
    "chain",
    "protocol",
];

fn parse_bool(v: &str) -> Result<bool, String> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" | "ok" => Ok(true),
        "false" | "no" | "off" | "0" => Ok(false),
        other => Err(format!("{other:?} is not a boolean (true/false)")),
    }
}

pub(super) fn build(sections: &Sections, order: &[String]) -> Result<Config, ConfigError> {
    let mut warnings = Vec::new();
    let mut jail = JailConfig::default();
    let empty = BTreeMap::new();
    let sshd = sections.get(JAIL).unwrap_or(&empty);
    let default = sections.get("DEFAULT").unwrap_or(&empty);
    let r = Resolver { sections, section: JAIL };

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
            "usedns" => jail.usedns = v.parse().map_err(invalid)?,
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
                            message: format!("filter `{name}` is obsolete; using sshd with mode = {}", &name[5..]),
                        });
                        filter_mode = Some(name[5..].parse().map_err(invalid)?);
                    }
                    other => {
                        return Err(invalid(format!("only the sshd filter is supported, not {other:?}")));
                    }
                }
                for p in params.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                    match p.split_once('=') {
                        Some(("mode", m)) => filter_mode = Some(m.trim().trim_matches('"').parse().map_err(invalid)?),
                        Some((k, _)) => warnings.push(Warning {
                            file: entry.file.clone(),
                            line: entry.line,
                            message: format!("filter parameter `{}` is not implemented; ignored", k.trim()),
                        }),
                        None => return Err(invalid(format!("bad filter parameter {p:?}"))),
                    }
                }
            }
            "logpath" => {
                let paths: Vec<PathBuf> =
                    v.split_whitespace().filter(|p| *p != "tail" && *p != "head").map(PathBuf::from).collect();
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
                if v.is_empty() || !v.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-') {
                    return Err(invalid(format!("{v:?} is not a chain name")));
                }
                jail.chain = v.to_string();
            }
            "protocol" => {
                if v != "tcp" {
                    return Err(invalid(format!("only protocol = tcp is supported for sshd, not {v:?}")));
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
    if let BanAction::Nftables { allports: true } | BanAction::Iptables { allports: true, .. } = jail.banaction {
        jail.ports = PortSpec::All;
    }
    if let BanAction::Iptables { multiport: true, .. } = jail.banaction
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
    if let BanAction::Iptables { multiport: false, .. } = jail.banaction
        && !matches!(&jail.ports, PortSpec::List(l) if l.len() == 1)
    {
        let e = keys.get("banaction").copied();
        return Err(ConfigError::Invalid {
            file: e.map(|e| e.file.clone()).unwrap_or_default(),
            line: e.map(|e| e.line).unwrap_or(0),
            key: "banaction".into(),
            message: "banaction = iptables takes a single port or range; use iptables-multiport".into(),
        });
    }

    for name in order {
        if name == "DEFAULT" || name == JAIL {
            continue;
        }
        let m = &sections[name];
        let first_line = m.values().map(|e| (e.file.clone(), e.line)).min_by_key(|(_, l)| *l);
        let (file, line) = first_line.unwrap_or_default();
        let r = Resolver { sections, section: name };
        let enabled =
            r.raw("enabled").and_then(|e| r.expand(&e.value, 0).ok()).is_some_and(|v| parse_bool(&v).unwrap_or(false));
        let message = match name.as_str() {
            "INCLUDES" => "[INCLUDES] is not supported: pass the files to load explicitly".to_string(),
            "Definition" | "Init" => format!("[{name}] belongs in filter/action files; ignored"),
            _ if enabled => {
                format!("jail [{name}] is enabled but only [sshd] is supported; it is ignored")
            }
            _ => format!("jail [{name}] is not supported; ignored"),
        };
        warnings.push(Warning { file, line: line.saturating_sub(1).max(1), message });
    }
    Ok(Config { jail, warnings })
}
