//! The INI layer: fail2ban's `[section]` / `key = value` syntax with continuation lines and
//! inline comments, and `%(name)s` interpolation.

use std::collections::BTreeMap;

use super::ConfigError;

#[derive(Debug, Clone)]
pub(super) struct Entry {
    pub(super) value: String,
    pub(super) file: String,
    pub(super) line: usize,
}

pub(super) type Sections = BTreeMap<String, BTreeMap<String, Entry>>;

pub(super) fn parse_ini(
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
            let e = out.get_mut(s).and_then(|m| m.get_mut(k)).expect("current key");
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
        let sep = trimmed.find(['=', ':']).ok_or_else(|| ConfigError::Syntax {
            file: file.into(),
            line: line_no,
            message: format!("expected `key = value`, got {trimmed:?}"),
        })?;
        let key = trimmed[..sep].trim().to_string();
        if key.is_empty() {
            return Err(ConfigError::Syntax { file: file.into(), line: line_no, message: "empty key".into() });
        }
        let Some(s) = &section else {
            return Err(ConfigError::Syntax {
                file: file.into(),
                line: line_no,
                message: format!("key {key:?} outside of any [section]"),
            });
        };
        let value = strip_inline_comment(trimmed[sep + 1..].trim()).to_string();
        out.get_mut(s).expect("section").insert(key.clone(), Entry { value, file: file.into(), line: line_no });
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
        // jail.conf's action shortcuts (ban only; + mail with whois; + matched lines).
        "action_" => "ban",
        "action_mw" => "ban\nmail-whois",
        "action_mwl" => "ban\nmail-whois-lines",
        "mta" => "sendmail",
        "destemail" => "root@localhost",
        "sender" => "root@<fq-hostname>",
        "sendername" => "Fail2Ban",
        "protocol" => "tcp",
        "chain" => "INPUT",
        "logpath" => "/var/log/auth.log",
        _ => return None,
    })
}

/// Interpolation limits: fail2ban's own nesting limit is 10 levels.
const MAX_DEPTH: usize = 10;
const MAX_SUBSTITUTIONS: usize = 1000;
const MAX_EXPANDED: usize = 64 * 1024;

pub(super) struct Resolver<'a> {
    pub(super) sections: &'a Sections,
    pub(super) section: &'a str,
}

impl Resolver<'_> {
    pub(super) fn raw(&self, key: &str) -> Option<&Entry> {
        self.sections
            .get(self.section)
            .and_then(|m| m.get(key))
            .or_else(|| self.sections.get("DEFAULT").and_then(|m| m.get(key)))
    }

    /// Expands `%(name)s`; `%%` is a literal percent sign. Nesting, the number of
    /// substitutions and the expanded size are bounded, so a small file cannot expand to
    /// gigabytes or loop for hours (`a = %(b)s%(b)s…`, `b = %(c)s%(c)s…`, …).
    pub(super) fn expand(&self, v: &str) -> Result<String, String> {
        let mut budget = MAX_SUBSTITUTIONS;
        self.expand_at(v, 0, &mut budget)
    }

    fn expand_at(&self, v: &str, depth: usize, budget: &mut usize) -> Result<String, String> {
        if depth > MAX_DEPTH {
            return Err(format!("interpolation nests more than {MAX_DEPTH} levels deep"));
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
                let (name, tail) = a.split_once(")s").ok_or_else(|| format!("unterminated interpolation in {v:?}"))?;
                let name = name.strip_prefix("known/").unwrap_or(name);
                *budget = budget
                    .checked_sub(1)
                    .ok_or(format!("interpolation needs more than {MAX_SUBSTITUTIONS} substitutions"))?;
                let val = if name == "__name__" {
                    self.section.to_string()
                } else if let Some(e) = self.raw(name) {
                    self.expand_at(&e.value, depth + 1, budget)?
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
            if out.len() > MAX_EXPANDED {
                return Err(format!("interpolation expands to more than {MAX_EXPANDED} bytes"));
            }
        }
        out.push_str(rest);
        Ok(out)
    }
}
