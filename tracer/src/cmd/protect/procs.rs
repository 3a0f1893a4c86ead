//! Who a process is, for the report: its argv and its ancestors. Exec events fill a cache
//! (a stealer such as `cat` is usually gone before its open is read); /proc is the fallback
//! for processes that were running before the tracer started.

use std::collections::HashMap;

use crate::event::{Detail, Event};

/// Processes remembered at most; the cache is emptied when full (then /proc answers).
const CACHE_MAX: usize = 32768;
/// Ancestors listed at most.
const TREE_MAX: usize = 16;

#[derive(Clone, Debug, Default)]
pub(crate) struct Proc {
    pub ppid: Option<u32>,
    pub exe: Vec<u8>,
    pub argv: Vec<Vec<u8>>,
    /// The working directory at exec (relative socket names of a process already gone are
    /// resolved against it; a later chdir is not seen).
    pub cwd: Vec<u8>,
}

#[derive(Default)]
pub(crate) struct Procs {
    known: HashMap<u32, Proc>,
}

impl Procs {
    /// Remembers a successful exec.
    pub(crate) fn exec(&mut self, ev: &Event) {
        let Detail::Exec(x) = &ev.detail else { return };
        if !ev.ok() {
            return;
        }
        if self.known.len() >= CACHE_MAX {
            self.known.clear();
        }
        let exe = ev.exe.clone().unwrap_or_else(|| x.filename.clone());
        self.known.insert(ev.pid, Proc { ppid: ev.ppid, exe, argv: x.argv.clone(), cwd: x.cwd.clone() });
    }

    pub(crate) fn get(&self, pid: u32) -> Option<Proc> {
        self.known.get(&pid).cloned().or_else(|| from_proc(pid))
    }

    /// The ancestors of a process whose parent is `ppid`, nearest first: (pid, exe or comm).
    pub(crate) fn tree(&self, ppid: Option<u32>) -> Vec<(u32, Vec<u8>)> {
        let mut out = Vec::new();
        let mut next = ppid;
        while let Some(pid) = next {
            if pid == 0 || out.len() >= TREE_MAX || out.iter().any(|(p, _)| *p == pid) {
                break;
            }
            let p = self.get(pid).unwrap_or_default();
            out.push((pid, p.exe));
            next = p.ppid;
        }
        out
    }
}

fn from_proc(pid: u32) -> Option<Proc> {
    let stat = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    // pid (comm) state ppid ...: comm may hold spaces and parentheses, so split after the last ')'.
    let close = stat.iter().rposition(|&b| b == b')')?;
    let rest = String::from_utf8_lossy(&stat[close + 1..]);
    let ppid = rest.split_whitespace().nth(1).and_then(|s| s.parse().ok());
    let exe = std::fs::read_link(format!("/proc/{pid}/exe"))
        .map(|p| p.into_os_string().into_encoded_bytes())
        .unwrap_or_else(|_| stat[stat.iter().position(|&b| b == b'(').map_or(0, |i| i + 1)..close].to_vec());
    let argv = std::fs::read(format!("/proc/{pid}/cmdline"))
        .unwrap_or_default()
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).map(|p| p.into_os_string().into_encoded_bytes());
    Some(Proc { ppid, exe, argv, cwd: cwd.unwrap_or_default() })
}
