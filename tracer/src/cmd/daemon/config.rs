//! `/etc/tracer/tracer.conf`: auditd.conf's `key = value` syntax and, where they mean the same
//! thing, auditd's keys (see README "Run it as a service" for what each does here), plus
//! `rules` and `buffer_size`. A line is `key = value`, `#` starts a comment line, blank
//! lines are skipped; keys and enum values are case-insensitive, as in auditd.
//! Any unknown key or bad value is an error naming FILE:LINE: nothing is started.

use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LogFormat {
    Audit,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flush {
    None,
    Incremental,
    IncrementalAsync,
    Data,
    Sync,
}

/// `max_log_file_action`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SizeAction {
    Ignore,
    Syslog,
    Suspend,
    Rotate,
    KeepLogs,
}

/// The disk actions (`space_left_action` etc.): auditd's values (auditd.conf(5)). `exec`
/// carries its program in the config's `*_exec` field; `email` acts as `syslog` (no MTA setting).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DiskAction {
    Ignore,
    Syslog,
    Rotate,
    Email,
    Exec,
    Suspend,
    Single,
    Halt,
}

/// `space_left`/`admin_space_left`: MiB, or a percentage of the file system.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Space {
    Mib(u64),
    Percent(u8),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Config {
    pub log_file: PathBuf,
    pub log_format: LogFormat,
    /// Group name and gid: logs are then created 0640 with this group.
    pub log_group: Option<(String, u32)>,
    pub write_logs: bool,
    pub flush: Flush,
    pub freq: u32,
    /// MiB; 0: no limit.
    pub max_log_file: u64,
    pub num_logs: u32,
    pub max_log_file_action: SizeAction,
    pub space_left: Space,
    pub space_left_action: DiskAction,
    pub admin_space_left: Space,
    pub admin_space_left_action: DiskAction,
    pub disk_full_action: DiskAction,
    pub disk_error_action: DiskAction,
    /// The programs of `exec` actions (`space_left_action = exec /path`).
    pub space_left_exec: Option<PathBuf>,
    pub admin_space_left_exec: Option<PathBuf>,
    pub disk_full_exec: Option<PathBuf>,
    /// Rules directory (read once the rules language exists).
    pub rules: PathBuf,
    /// Ring buffer MiB.
    pub buffer_size: u32,
    /// `output = sqlite:PATH | postgresql://...`: databases written beside the log, in order.
    pub outputs: Vec<tracer_store::Target>,
    /// Each PostgreSQL output spools in its own directory under this one.
    pub spool_dir: PathBuf,
    /// MiB per output's spool.
    pub spool_size: u64,
    pub spool_full_action: tracer_store::spool::OnFull,
    /// PostgreSQL outputs: days of partitions kept (0: all).
    pub retention_days: u32,
}

impl Default for Config {
    /// auditd's defaults, with tracer's paths.
    fn default() -> Self {
        Config {
            log_file: "/var/log/tracer/tracer.log".into(),
            log_format: LogFormat::Audit,
            log_group: None,
            write_logs: true,
            flush: Flush::IncrementalAsync,
            freq: 50,
            max_log_file: 8,
            num_logs: 5,
            max_log_file_action: SizeAction::Rotate,
            space_left: Space::Mib(75),
            space_left_action: DiskAction::Syslog,
            admin_space_left: Space::Mib(50),
            admin_space_left_action: DiskAction::Suspend,
            disk_full_action: DiskAction::Suspend,
            disk_error_action: DiskAction::Suspend,
            space_left_exec: None,
            admin_space_left_exec: None,
            disk_full_exec: None,
            rules: "/etc/tracer/rules.d".into(),
            buffer_size: 8,
            outputs: Vec::new(),
            spool_dir: "/var/spool/tracer".into(),
            spool_size: 1024,
            spool_full_action: tracer_store::spool::OnFull::Block,
            retention_days: 0,
        }
    }
}

/// `FILE:LINE: key: message`.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}: {msg}")]
pub(crate) struct ConfigError {
    pub file: String,
    pub line: usize,
    pub msg: String,
}

pub(crate) fn read(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.display().to_string(),
        line: 0,
        msg: format!("cannot read: {e}"),
    })?;
    parse(&text).map_err(|(line, msg)| ConfigError { file: path.display().to_string(), line, msg })
}

fn pick<T: Copy>(v: &str, table: &[(&str, T)]) -> Result<T, String> {
    let lower = v.to_ascii_lowercase();
    table.iter().find(|(n, _)| *n == lower).map(|&(_, t)| t).ok_or_else(|| {
        let names: Vec<&str> = table.iter().map(|(n, _)| *n).collect();
        format!("'{v}' is not one of {}", names.join(", "))
    })
}

fn number<T: std::str::FromStr>(v: &str, what: &str) -> Result<T, String> {
    v.parse().map_err(|_| format!("'{v}' is not {what}"))
}

fn disk_action(v: &str) -> Result<DiskAction, String> {
    use DiskAction::*;
    pick(
        v,
        &[
            ("ignore", Ignore),
            ("syslog", Syslog),
            ("rotate", Rotate),
            ("email", Email),
            ("exec", Exec),
            ("suspend", Suspend),
            ("single", Single),
            ("halt", Halt),
        ],
    )
}

/// `ACTION` or `exec /absolute/program`.
fn disk_action_exec(v: &str) -> Result<(DiskAction, Option<PathBuf>), String> {
    let (word, rest) = v.split_once(char::is_whitespace).map_or((v, ""), |(a, b)| (a, b.trim()));
    let a = disk_action(word)?;
    match (a, rest.is_empty()) {
        (DiskAction::Exec, true) => Err("exec needs a program: `exec /path/to/program`".into()),
        (DiskAction::Exec, false) => Ok((a, Some(absolute(rest)?))),
        (_, true) => Ok((a, None)),
        (_, false) => Err(format!("'{v}': only exec takes an argument")),
    }
}

fn space(v: &str) -> Result<Space, String> {
    match v.strip_suffix('%') {
        Some(p) => match p.trim().parse::<u8>() {
            Ok(n) if n <= 100 => Ok(Space::Percent(n)),
            _ => Err(format!("'{v}' is not a percentage from 0% to 100%")),
        },
        None => number(v, "a size in MiB or a percentage (N%)").map(Space::Mib),
    }
}

fn group(v: &str) -> Result<(String, u32), String> {
    if let Ok(gid) = v.parse::<u32>() {
        return Ok((v.to_string(), gid));
    }
    let name = std::ffi::CString::new(v).map_err(|_| format!("'{v}' is not a group"))?;
    let mut buf = vec![0 as libc::c_char; 16384];
    // SAFETY: group is plain data the call fills in; all-zero is a valid value for it.
    let mut gr: libc::group = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::group = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call and buf's length is passed with it.
    let rc = unsafe { libc::getgrnam_r(name.as_ptr(), &raw mut gr, buf.as_mut_ptr(), buf.len(), &raw mut found) };
    if rc == 0 && !found.is_null() { Ok((v.to_string(), gr.gr_gid)) } else { Err(format!("no group named '{v}'")) }
}

/// A database the daemon writes to; the message never holds a password.
fn output(v: &str) -> Result<tracer_store::Target, String> {
    match tracer_store::Target::parse(v) {
        Some(t) => t.map_err(|e| e.to_string()),
        None => Err(format!(
            "'{}' is not sqlite:PATH or postgresql://USER@HOST[:PORT]/DB (the log itself is log_file)",
            tracer_store::pg::redact(v)
        )),
    }
}

fn absolute(v: &str) -> Result<PathBuf, String> {
    let p = PathBuf::from(v);
    if p.is_absolute() { Ok(p) } else { Err(format!("'{v}' is not an absolute path")) }
}

/// Parses the text; errors carry the line number and `key: message`.
pub(crate) fn parse(text: &str) -> Result<Config, (usize, String)> {
    let mut c = Config::default();
    let mut seen: Vec<String> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err((n, format!("'{line}' is not `key = value`")));
        };
        let (key, v) = (key.trim().to_ascii_lowercase(), value.trim());
        // `output` names one database per line; the same one twice is still an error.
        if seen.contains(&key) && (key != "output" || seen.iter().any(|k| *k == format!("output {v}"))) {
            return Err((n, format!("{key}: set twice")));
        }
        apply(&mut c, &key, v).map_err(|m| (n, format!("{key}: {m}")))?;
        if key == "output" {
            seen.push(format!("output {v}"));
        }
        seen.push(key);
    }
    Ok(c)
}

fn apply(c: &mut Config, key: &str, v: &str) -> Result<(), String> {
    if v.is_empty() {
        return Err("no value".into());
    }
    match key {
        "log_file" => c.log_file = absolute(v)?,
        "log_format" => {
            // auditd's RAW is the audit format; ENRICHED needs lookups the kernel did.
            c.log_format =
                pick(v, &[("audit", LogFormat::Audit), ("raw", LogFormat::Audit), ("json", LogFormat::Json)])?;
        }
        "log_group" => c.log_group = Some(group(v)?),
        "write_logs" => c.write_logs = pick(v, &[("yes", true), ("no", false)])?,
        "flush" => {
            use Flush::*;
            let t = [
                ("none", None),
                ("incremental", Incremental),
                ("incremental_async", IncrementalAsync),
                ("data", Data),
                ("sync", Sync),
            ];
            c.flush = pick(v, &t)?;
        }
        "freq" => c.freq = number(v, "a record count")?,
        "max_log_file" => c.max_log_file = number(v, "a size in MiB")?,
        "num_logs" => match number::<u32>(v, "a number of logs from 0 to 999")? {
            n @ 0..=999 => c.num_logs = n,
            _ => return Err(format!("'{v}' is not a number of logs from 0 to 999")),
        },
        "max_log_file_action" => {
            use SizeAction::*;
            let t = [
                ("ignore", Ignore),
                ("syslog", Syslog),
                ("suspend", Suspend),
                ("rotate", Rotate),
                ("keep_logs", KeepLogs),
            ];
            c.max_log_file_action = pick(v, &t)?;
        }
        "space_left" => c.space_left = space(v)?,
        "space_left_action" => (c.space_left_action, c.space_left_exec) = disk_action_exec(v)?,
        "admin_space_left" => c.admin_space_left = space(v)?,
        "admin_space_left_action" => (c.admin_space_left_action, c.admin_space_left_exec) = disk_action_exec(v)?,
        "disk_full_action" => (c.disk_full_action, c.disk_full_exec) = disk_action_exec(v)?,
        "disk_error_action" => c.disk_error_action = disk_action(v)?,
        "rules" => c.rules = absolute(v)?,
        "buffer_size" => c.buffer_size = super::super::parse_buffer_mib(v)?,
        "output" => c.outputs.push(output(v)?),
        "spool_dir" => c.spool_dir = absolute(v)?,
        "spool_size" => match number::<u64>(v, "a size in MiB")? {
            0 => return Err("'0' is not a size in MiB (at least 1)".into()),
            n => c.spool_size = n,
        },
        "spool_full_action" => {
            use tracer_store::spool::OnFull;
            c.spool_full_action = pick(v, &[("block", OnFull::Block), ("drop_oldest", OnFull::DropOldest)])?;
        }
        "retention_days" => c.retention_days = number(v, "a number of days")?,
        _ => return Err("unknown key".into()),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_values_and_errors() {
        let c = parse("# comment\n\nlog_file = /tmp/x.log\nLOG_FORMAT = JSON\nnum_logs=3\nmax_log_file_action = keep_logs\nspace_left = 10%\nbuffer_size = 16\n").unwrap();
        assert_eq!(c.log_file, Path::new("/tmp/x.log"));
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(c.num_logs, 3);
        assert_eq!(c.max_log_file_action, SizeAction::KeepLogs);
        assert_eq!(c.space_left, Space::Percent(10));
        assert_eq!(c.buffer_size, 16);
        assert_eq!(parse("\nfoo = 1\n").unwrap_err(), (2, "foo: unknown key".into()));
        assert!(parse("max_log_file = big").unwrap_err().1.starts_with("max_log_file: "));
        assert!(parse("log_file = relative.log").is_err());
        assert!(parse("flush = sometimes").is_err());
        assert!(parse("num_logs = 1\nnum_logs = 2").unwrap_err().0 == 2);
        assert!(parse("buffer_size = 3").is_err());
        assert!(parse("just words").is_err());
        assert!(parse("log_group = no-such-group-here").is_err());
        assert_eq!(parse("log_group = root").unwrap().log_group, Some(("root".into(), 0)));
    }

    #[test]
    fn outputs_and_spool_settings() {
        use tracer_store::{Target, spool::OnFull};
        let c = parse(
            "output = sqlite:/var/lib/tracer/events.db\noutput = postgresql://t@db:5432/events\n\
             spool_dir = /srv/spool\nspool_size = 64\nspool_full_action = DROP_OLDEST\nretention_days = 30\n",
        )
        .unwrap();
        assert_eq!(
            c.outputs,
            vec![
                Target::Sqlite("/var/lib/tracer/events.db".into()),
                Target::Postgres("postgresql://t@db:5432/events".into())
            ]
        );
        assert_eq!((c.spool_size, c.spool_full_action, c.retention_days), (64, OnFull::DropOldest, 30));
        assert_eq!(c.spool_dir, Path::new("/srv/spool"));
        assert_eq!(parse("output = sqlite:/a\noutput = sqlite:/a\n").unwrap_err(), (2, "output: set twice".into()));
        let e = parse("output = postgres://t:pw@h:x/db\n").unwrap_err();
        assert!(e.1.starts_with("output: ") && !e.1.contains("pw"), "{e:?}");
        let e = parse("output = /var/log/x.json\n").unwrap_err();
        assert!(e.1.contains("not sqlite:PATH"), "{e:?}");
        assert!(parse("output = postgresq://t:pw@h/db\n").unwrap_err().1.contains("postgresq://t@h/db"));
        assert!(parse("spool_size = 0").is_err());
        assert!(parse("spool_full_action = wait").is_err());
        assert!(parse("spool_dir = spool").is_err());
    }

    #[test]
    fn exec_actions_take_an_absolute_program() {
        let c = parse("space_left_action = EXEC /usr/local/bin/low\ndisk_full_action = halt\n").unwrap();
        assert_eq!((c.space_left_action, c.space_left_exec), (DiskAction::Exec, Some("/usr/local/bin/low".into())));
        assert_eq!((c.disk_full_action, c.disk_full_exec), (DiskAction::Halt, None));
        assert!(parse("space_left_action = exec\n").unwrap_err().1.contains("exec needs a program"));
        assert!(parse("space_left_action = exec low\n").unwrap_err().1.contains("not an absolute path"));
        assert!(parse("admin_space_left_action = syslog now\n").unwrap_err().1.contains("only exec takes"));
    }
}
