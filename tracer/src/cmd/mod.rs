//! One module per subcommand.

pub(crate) mod ci;
pub(crate) mod daemon;
pub(crate) mod generate;
pub(crate) mod guard;
pub(crate) mod protect;
pub(crate) mod report;
pub(crate) mod roots;
pub(crate) mod rules;
pub(crate) mod status;
pub(crate) mod store;
pub(crate) mod trace;

use std::{ffi::OsString, time::Duration};

use clap::Args;
use tracer_common::event::AUID_UNSET;

use crate::loader::Options;

/// The in-kernel filters shared by `trace` and `report`.
#[derive(Args, Clone, Debug, Default)]
pub(crate) struct Filters {
    /// Only processes with this login UID: a number, a user name, or `unset` for processes no
    /// login set.
    #[arg(long, value_parser = parse_auid)]
    pub auid: Option<u32>,
    /// Only processes with this real UID (a number or a user name).
    #[arg(long, value_parser = parse_uid)]
    pub uid: Option<u32>,
    /// Only these running processes and all their descendants (repeatable, or comma-separated).
    #[arg(long, value_delimiter = ',', value_parser = parse_pid)]
    pub pid: Vec<u32>,
    /// Only processes with this command name (at most 15 bytes, as the kernel keeps it;
    /// repeatable: any of them).
    #[arg(long, value_parser = parse_comm)]
    pub comm: Vec<String>,
    /// Ring buffer size in MiB (a power of two).
    #[arg(long, default_value = "8", value_parser = parse_buffer_mib)]
    pub buffer_size: u32,
}

fn parse_auid(s: &str) -> Result<u32, String> {
    match s {
        "unset" | "-1" | "4294967295" => Ok(AUID_UNSET),
        s => user_id(s).ok_or_else(|| format!("'{s}' is not a login UID (a number, a user name or 'unset')")),
    }
}

fn parse_uid(s: &str) -> Result<u32, String> {
    user_id(s).ok_or_else(|| format!("'{s}' is not a UID (a number or a user name)"))
}

/// A number, or a user name looked up as ls(1) and id(1) do (getpwnam_r: /etc/passwd, NSS).
fn user_id(s: &str) -> Option<u32> {
    if let Ok(n) = s.parse::<u32>() {
        return Some(n);
    }
    let name = std::ffi::CString::new(s).ok()?;
    let mut buf = vec![0 as libc::c_char; 16384];
    // SAFETY: passwd is plain data the call fills in; all-zero is a valid value for it.
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call and buf's length is passed with it.
    let rc = unsafe { libc::getpwnam_r(name.as_ptr(), &raw mut pw, buf.as_mut_ptr(), buf.len(), &raw mut found) };
    (rc == 0 && !found.is_null()).then_some(pw.pw_uid)
}

/// A running process: pid 0 is the idle task (no process), and a pid that does not exist
/// would trace nothing.
fn parse_pid(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(0) => Err("pid 0 is not a process".into()),
        Ok(n) if std::path::Path::new(&format!("/proc/{n}")).exists() => Ok(n),
        Ok(n) => Err(format!("no process has pid {n}")),
        Err(_) => Err(format!("'{s}' is not a pid")),
    }
}

/// `-- CMD`: `--` with nothing after it would trace the whole machine instead of a command.
pub(crate) fn check_command(command: &[OsString]) -> Result<(), crate::error::UsageError> {
    if command.is_empty() && std::env::args_os().any(|a| a == "--") {
        return Err(crate::error::UsageError("`--` must be followed by a command to run".into()));
    }
    Ok(())
}

fn parse_comm(s: &str) -> Result<String, String> {
    if s.is_empty() || s.len() > 15 {
        return Err(format!("'{s}' is not a command name: the kernel keeps 1 to 15 bytes"));
    }
    Ok(s.to_string())
}

/// `--buffer-size`: MiB, a power of two (the kernel's ring buffer size rule).
pub(crate) fn parse_buffer_mib(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(n) if n.is_power_of_two() && n <= 1024 => Ok(n),
        _ => Err(format!("'{s}' is not a power of two from 1 to 1024")),
    }
}

pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(s.len()));
    let n: f64 = num.parse().map_err(|_| format!("'{s}' is not a duration (e.g. 30s, 5m, 1h)"))?;
    let mult = match unit {
        "" | "s" => 1.0,
        "ms" => 0.001,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return Err(format!("'{s}' has an unknown unit (ms, s, m, h)")),
    };
    Duration::try_from_secs_f64(n * mult).map_err(|_| format!("'{s}' is too long a duration"))
}

impl Filters {
    /// What clap cannot check per value: the number of `--comm` values the kernel map holds.
    pub(crate) fn check(&self) -> Result<(), crate::error::UsageError> {
        let max = tracer_common::config::COMMS_MAX as usize;
        if self.comm.len() > max {
            return Err(crate::error::UsageError(format!("at most {max} --comm values")));
        }
        Ok(())
    }

    pub(crate) fn options(&self, enabled: u32, follow_children: bool) -> Options {
        Options {
            auid: self.auid,
            uid: self.uid,
            pids: with_descendants(&self.pid),
            comms: self.comm.clone(),
            follow_children,
            enabled,
            ring_bytes: self.buffer_size << 20,
            // Streams and reports can wait a few ms for a batch; the reader drains on a
            // timer too (reader::DRAIN_EVERY).
            wakeup_bytes: 64 << 10,
            ..Default::default()
        }
    }
}

/// `--pid` follows new children through fork in the kernel; children that exist already
/// are found here in /proc.
fn with_descendants(pids: &[u32]) -> Vec<u32> {
    if pids.is_empty() {
        return Vec::new();
    }
    let mut parent_of = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
            // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
            let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else { continue };
            if let Some(ppid) = rest.split_whitespace().nth(1).and_then(|p| p.parse::<u32>().ok()) {
                parent_of.push((pid, ppid));
            }
        }
    }
    let mut out: Vec<u32> = pids.to_vec();
    let mut i = 0;
    while i < out.len() {
        let p = out[i];
        for &(c, pp) in &parent_of {
            if pp == p && !out.contains(&c) {
                out.push(c);
            }
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_inputs() {
        assert_eq!(parse_auid("unset"), Ok(AUID_UNSET));
        assert_eq!(parse_auid("7005"), Ok(7005));
        assert!(parse_auid("no-such-user-here").is_err());
        assert_eq!(parse_uid("root"), Ok(0));
        assert!(parse_pid("0").is_err());
        assert!(parse_comm("a-very-long-command-name").is_err());
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("3 weeks").is_err());
        assert!(parse_duration("99999999999999999999h").is_err(), "overflow is an error, not a panic");
        assert!(parse_buffer_mib("3").is_err());
    }

    #[test]
    fn finds_own_descendants() {
        let mut child = std::process::Command::new("sleep").arg("5").spawn().unwrap();
        let all = with_descendants(&[std::process::id()]);
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(all.contains(&child.id()));
    }
}
