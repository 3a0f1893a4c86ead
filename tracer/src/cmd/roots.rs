//! `tracer roots`: every running process whose root is not "/" (chroot jails such as
//! named's /var/named/chroot), like `ls -lad /proc/PID/root` for every process at once.

use std::{fs, io::Write as _, os::unix::ffi::OsStrExt, path::PathBuf};

use clap::{Args, ValueEnum};

use crate::bytes::{json_str, text_escape};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    Text,
    Json,
}

#[derive(Args, Debug)]
pub(crate) struct RootsArgs {
    /// List every process, chrooted or not.
    #[arg(long)]
    pub all: bool,
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Proc {
    pub pid: u32,
    pub comm: Vec<u8>,
    pub uid: Option<u32>,
    /// None when unset (-1) or unreadable.
    pub auid: Option<u32>,
    pub root: Vec<u8>,
    pub mntns: Option<u64>,
}

fn read_proc(pid: u32) -> Option<Proc> {
    let base = PathBuf::from(format!("/proc/{pid}"));
    // A process may exit while we look: skip it rather than report half of it.
    let root = fs::read_link(base.join("root")).ok()?;
    let mut comm = fs::read(base.join("comm")).ok()?;
    if comm.last() == Some(&b'\n') {
        comm.pop();
    }
    let status = fs::read_to_string(base.join("status")).unwrap_or_default();
    let uid =
        status.lines().find_map(|l| l.strip_prefix("Uid:")).and_then(|v| v.split_whitespace().next()?.parse().ok());
    let auid = fs::read_to_string(base.join("loginuid"))
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .filter(|&a| a != u32::MAX);
    let mntns = fs::read_link(base.join("ns/mnt"))
        .ok()
        .and_then(|l| l.to_str()?.strip_prefix("mnt:[")?.strip_suffix(']')?.parse().ok());
    Some(Proc { pid, comm, uid, auid, root: root.as_os_str().as_bytes().to_vec(), mntns })
}

pub(crate) fn scan(all: bool) -> Vec<Proc> {
    let mut pids: Vec<u32> = fs::read_dir("/proc")
        .map(|d| d.flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).collect())
        .unwrap_or_default();
    pids.sort_unstable();
    pids.into_iter().filter_map(read_proc).filter(|p| all || p.root != b"/").collect()
}

pub(crate) fn run(args: RootsArgs) -> anyhow::Result<i32> {
    anyhow::ensure!(
        // SAFETY: geteuid has no preconditions and cannot fail.
        unsafe { libc::geteuid() } == 0,
        crate::error::UsageError("reading other processes' roots needs root".into())
    );
    let procs = scan(args.all);
    let mut out = Vec::new();
    match args.format {
        Format::Text => {
            out.extend_from_slice(
                format!("{:>7} {:<16} {:>6} {:>6} {:>12} ROOT\n", "PID", "COMM", "UID", "AUID", "MNTNS").as_bytes(),
            );
            for p in &procs {
                let mut comm = String::new();
                text_escape(&mut comm, &p.comm);
                let mut root = String::new();
                text_escape(&mut root, &p.root);
                let opt = |v: Option<u32>, none: &str| v.map_or(none.to_string(), |v| v.to_string());
                let ns = p.mntns.map_or("?".into(), |n| n.to_string());
                out.extend_from_slice(
                    format!(
                        "{:>7} {:<16} {:>6} {:>6} {:>12} {root}\n",
                        p.pid,
                        comm,
                        opt(p.uid, "?"),
                        opt(p.auid, "unset"),
                        ns
                    )
                    .as_bytes(),
                );
            }
        }
        Format::Json => {
            for p in &procs {
                let _ = write!(out, "{{\"pid\":{},\"comm\":", p.pid);
                json_str(&mut out, &p.comm);
                let num = |v: Option<u32>, none: &str| v.map_or(none.to_string(), |v| v.to_string());
                out.extend_from_slice(
                    format!(
                        ",\"uid\":{},\"auid\":{},\"mntns\":{},\"root\":",
                        num(p.uid, "null"),
                        num(p.auid, "\"unset\""),
                        p.mntns.map_or("null".into(), |n| n.to_string())
                    )
                    .as_bytes(),
                );
                json_str(&mut out, &p.root);
                let _ = writeln!(out, ",\"chrooted\":{}}}", p.root != b"/");
            }
        }
    }
    std::io::stdout().write_all(&out)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn own_process_is_not_chrooted() {
        let me = super::read_proc(std::process::id()).unwrap();
        assert_eq!(me.root, b"/");
        assert!(me.mntns.is_some());
        assert!(!super::scan(false).iter().any(|p| p.pid == std::process::id()));
        assert!(super::scan(true).iter().any(|p| p.pid == std::process::id()));
    }
}
