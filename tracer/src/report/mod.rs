//! `tracer report`: auditloginfo's per-login-UID summary, aggregated as events arrive.
//!
//! Memory grows with the number of distinct entries (commands, paths, peers, syscalls),
//! never with the number of events: the event list is never kept. The same aggregator is
//! fed by live tracing and by a recorded `tracer trace --format json` file (`input.rs`),
//! so both give the same report for the same events.

mod audit_input;
pub(crate) mod input;
pub(crate) mod json;
pub(crate) mod recorded;
pub(crate) mod syscall;
// Reports computed by a database (`--input sqlite:|postgresql://`).
pub(crate) mod store;
pub(crate) mod text;

use std::{
    collections::{BTreeMap, HashMap},
    net::IpAddr,
};

pub(crate) use self::syscall::{Sysno, sorted_syscalls};
use crate::event::{Detail, Event, Id, Peer};

/// Occurrences of one entry and how many of them failed (ret < 0).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    pub count: u64,
    pub failed: u64,
}

impl Tally {
    fn add(&mut self, failed: bool, n: u64) {
        self.count += n;
        self.failed += if failed { n } else { 0 };
    }
}

/// What one event contributes to a report, whatever its source.
#[derive(Debug)]
pub(crate) enum Activity<'a> {
    /// argv, or the exec'd file name when argv is empty (execve with a NULL argv); `root`
    /// is the host path of the process root ("/" unless chrooted).
    Exec {
        argv: &'a [Vec<u8>],
        filename: &'a [u8],
        root: &'a [u8],
    },
    /// Absolute host path (the name as given when its base directory was unknown).
    Open {
        path: &'a [u8],
    },
    Connect {
        peer: &'a Peer,
    },
}

/// The report of one login UID.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct UserReport {
    /// Syscall -> calls; None when the source does not have them (recorded files).
    pub syscalls: Option<BTreeMap<Sysno, u64>>,
    /// Keyed by argv: two commands that join to the same text stay apart.
    pub commands: HashMap<Vec<Vec<u8>>, Tally>,
    pub files: HashMap<Vec<u8>, Tally>,
    pub connections: HashMap<Peer, Tally>,
    /// Chroot roots (host paths) the commands ran under -> commands; "/" is not listed.
    pub roots: HashMap<Vec<u8>, Tally>,
}

/// Every report of a run, in AUID order (numeric, then unset, then unknown).
#[derive(Debug)]
pub(crate) struct Reports {
    /// Only this login UID (`--auid`): its report exists even when nothing was seen.
    only: Option<Id>,
    pub users: BTreeMap<Id, UserReport>,
    /// Whether syscall counts exist for this source (live: yes; a recorded file: no).
    pub has_syscalls: bool,
    /// Events missing from the report (ring full, undecodable); None when the
    /// source cannot tell (a recorded file).
    pub lost: Option<u64>,
}

impl Reports {
    pub(crate) fn new(only: Option<Id>, has_syscalls: bool) -> Self {
        let mut r = Self { only, users: BTreeMap::new(), has_syscalls, lost: None };
        if let Some(id) = only {
            r.user(id);
        }
        r
    }

    fn user(&mut self, auid: Id) -> &mut UserReport {
        let has = self.has_syscalls;
        self.users.entry(auid).or_insert_with(|| UserReport { syscalls: has.then(BTreeMap::new), ..Default::default() })
    }

    /// One report asked for (`--auid`): JSON gives an object, not an array.
    pub(crate) fn single(&self) -> bool {
        self.only.is_some()
    }

    fn wanted(&self, auid: Id) -> bool {
        self.only.is_none_or(|o| o == auid)
    }

    pub(crate) fn add(&mut self, auid: Id, act: Activity, failed: bool) {
        self.add_n(auid, act, failed, 1);
    }

    /// `n` occurrences of one activity (the kernel counts repeats: `Reports::add_event_n`).
    pub(crate) fn add_n(&mut self, auid: Id, act: Activity, failed: bool, n: u64) {
        if n == 0 || !self.wanted(auid) {
            return;
        }
        let u = self.user(auid);
        match act {
            // Lookups by slice first: no allocation for an entry seen before.
            Activity::Exec { argv, filename, root } => {
                match u.commands.get_mut(argv) {
                    Some(t) if !argv.is_empty() => t.add(failed, n),
                    _ => {
                        let key = if argv.is_empty() { vec![filename.to_vec()] } else { argv.to_vec() };
                        u.commands.entry(key).or_default().add(failed, n);
                    }
                }
                if root != b"/" {
                    u.roots.entry(root.to_vec()).or_default().add(failed, n);
                }
            }
            Activity::Open { path } => match u.files.get_mut(path) {
                Some(t) => t.add(failed, n),
                None => u.files.entry(path.to_vec()).or_default().add(failed, n),
            },
            Activity::Connect { peer } => u.connections.entry(peer.clone()).or_default().add(failed, n),
        }
    }

    pub(crate) fn add_event(&mut self, ev: &Event) {
        self.add_event_n(ev, 1);
    }

    /// `ev` and `n - 1` more occurrences of the same entry.
    pub(crate) fn add_event_n(&mut self, ev: &Event, n: u64) {
        let act = match &ev.detail {
            Detail::Exec(e) => Activity::Exec { argv: &e.argv, filename: &e.filename, root: &ev.root },
            Detail::Open(o) => Activity::Open { path: &o.host_path },
            Detail::Connect(c) => Activity::Connect { peer: &c.peer },
            // sshd's log lines (the guard's source) are not enabled for reports.
            _ => return,
        };
        self.add_n(ev.auid, act, !ev.ok(), n);
    }

    /// Kernel counts per (raw auid, x86_64 syscall nr). The kernel keys them by raw value,
    /// so "unset" and "unknown" (no CONFIG_AUDIT) both arrive as -1: they go to whichever
    /// of the two the events used, "unset" if none.
    pub(crate) fn add_syscounts(&mut self, counts: &HashMap<(u32, u32), u64>) {
        let no_auid = if self.users.contains_key(&Id::Unknown) && !self.users.contains_key(&Id::Unset) {
            Id::Unknown
        } else {
            Id::Unset
        };
        for (&(auid, nr), &n) in counts {
            let id = if auid == crate::event::AUID_UNSET { no_auid } else { Id::Set(auid) };
            if !self.wanted(id) {
                continue;
            }
            if let Some(s) = self.user(id).syscalls.as_mut() {
                *s.entry(Sysno::from_key(nr)).or_insert(0) += n;
            }
        }
    }
}

/// The text name of a peer: `127.0.0.1:9`, `[::1]:80`, `unix:/path`, `unix:@abstract`.
pub(crate) fn peer_name(p: &Peer) -> Vec<u8> {
    match p {
        Peer::Inet { address: IpAddr::V4(a), port } => format!("{a}:{port}").into_bytes(),
        Peer::Inet { address: IpAddr::V6(a), port } => format!("[{a}]:{port}").into_bytes(),
        Peer::Unix { path } => match path.strip_prefix(b"\0") {
            Some(abs) => [b"unix:@".as_slice(), abs].concat(),
            None => [b"unix:".as_slice(), path].concat(),
        },
    }
}

/// argv joined with spaces, as auditloginfo shows a command.
pub(crate) fn command_line(argv: &[Vec<u8>]) -> Vec<u8> {
    argv.join(&b' ')
}

/// Entries of a section, highest count first, ties by name (then by key, for commands
/// whose arguments join to the same text).
pub(crate) fn sorted<K: Ord>(m: &HashMap<K, Tally>, name: impl Fn(&K) -> Vec<u8>) -> Vec<(Vec<u8>, &K, Tally)> {
    let mut v: Vec<_> = m.iter().map(|(k, t)| (name(k), k, *t)).collect();
    v.sort_by(|a, b| b.2.count.cmp(&a.2.count).then_with(|| a.0.cmp(&b.0)).then_with(|| a.1.cmp(b.1)));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inet(a: &str, port: u16) -> Peer {
        Peer::Inet { address: a.parse().unwrap(), port }
    }

    #[test]
    fn aggregates_per_auid_with_failures() {
        let mut r = Reports::new(None, true);
        let argv = vec![b"uname".to_vec(), b"-m".to_vec()];
        for _ in 0..3 {
            r.add(Id::Set(7005), Activity::Open { path: b"/etc/passwd" }, false);
        }
        r.add(Id::Set(7005), Activity::Open { path: b"/etc/shadow" }, true);
        r.add(Id::Set(7005), Activity::Exec { argv: &argv, filename: b"/usr/bin/uname", root: b"/" }, false);
        r.add(Id::Set(7005), Activity::Exec { argv: &[], filename: b"/bin/x", root: b"/srv/jail" }, true);
        r.add(Id::Unset, Activity::Connect { peer: &inet("127.0.0.1", 9) }, true);
        r.add(Id::Unset, Activity::Connect { peer: &inet("127.0.0.1", 9) }, false);
        let u = &r.users[&Id::Set(7005)];
        assert_eq!(u.files[&b"/etc/passwd".to_vec()], Tally { count: 3, failed: 0 });
        assert_eq!(u.files[&b"/etc/shadow".to_vec()], Tally { count: 1, failed: 1 });
        assert_eq!(u.commands[&argv], Tally { count: 1, failed: 0 });
        assert_eq!(u.commands[&vec![b"/bin/x".to_vec()]], Tally { count: 1, failed: 1 });
        assert_eq!(u.roots.len(), 1, "only chrooted commands are listed under Roots");
        assert_eq!(u.roots[&b"/srv/jail".to_vec()], Tally { count: 1, failed: 1 });
        assert_eq!(r.users[&Id::Unset].connections[&inet("127.0.0.1", 9)], Tally { count: 2, failed: 1 });
        assert_eq!(
            r.users.keys().copied().collect::<Vec<_>>(),
            vec![Id::Set(7005), Id::Unset],
            "AUID order, unset last"
        );
    }

    #[test]
    fn only_one_auid_and_its_report_exists_when_empty() {
        let mut r = Reports::new(Some(Id::Set(7)), true);
        r.add(Id::Set(8), Activity::Open { path: b"/x" }, false);
        r.add_syscounts(&HashMap::from([((7, 0), 5), ((8, 0), 9), ((u32::MAX, 1), 2)]));
        assert_eq!(r.users.len(), 1);
        let u = &r.users[&Id::Set(7)];
        assert!(u.files.is_empty());
        assert_eq!(u.syscalls.as_ref().unwrap()[&Sysno { nr: 0, i386: false }], 5);
    }

    #[test]
    fn syscounts_keep_number_and_table() {
        use tracer_common::syscount::SYSCOUNT_COMPAT;
        let mut r = Reports::new(None, true);
        r.add_syscounts(&HashMap::from([
            ((7005, 257), 4),
            ((7005, 5 | SYSCOUNT_COMPAT), 3),
            ((7005, 100_000), 1),
            ((u32::MAX, 59), 1),
        ]));
        let s = r.users[&Id::Set(7005)].syscalls.as_ref().unwrap();
        let labels: Vec<(String, u64)> = sorted_syscalls(s).into_iter().map(|(_, l, n)| (l, n)).collect();
        assert_eq!(labels, [("openat".into(), 4), ("open (i386)".into(), 3), ("unknown-syscall(100000)".into(), 1)]);
        assert_eq!(r.users[&Id::Unset].syscalls.as_ref().unwrap()[&Sysno { nr: 59, i386: false }], 1);
        let recorded = Reports::new(Some(Id::Set(1)), false);
        assert_eq!(recorded.users[&Id::Set(1)].syscalls, None, "a recorded file has no syscall counts");
    }

    #[test]
    fn sorts_by_count_then_name() {
        let m: HashMap<Vec<u8>, Tally> = HashMap::from([
            (b"/b".to_vec(), Tally { count: 2, failed: 0 }),
            (b"/a".to_vec(), Tally { count: 2, failed: 0 }),
            (b"/c".to_vec(), Tally { count: 5, failed: 1 }),
        ]);
        let names: Vec<Vec<u8>> = sorted(&m, |k| k.clone()).into_iter().map(|e| e.0).collect();
        assert_eq!(names, vec![b"/c".to_vec(), b"/a".to_vec(), b"/b".to_vec()]);
        let nr = |nr| Sysno { nr, i386: false };
        let s = BTreeMap::from([(nr(1), 3), (nr(3), 3), (nr(0), 9)]);
        let labels: Vec<String> = sorted_syscalls(&s).into_iter().map(|e| e.1).collect();
        assert_eq!(labels, ["read", "close", "write"]);
    }

    #[test]
    fn names_peers_and_commands() {
        assert_eq!(peer_name(&inet("127.0.0.1", 9)), b"127.0.0.1:9");
        assert_eq!(peer_name(&inet("::1", 80)), b"[::1]:80");
        assert_eq!(peer_name(&Peer::Unix { path: b"\0abs".to_vec() }), b"unix:@abs");
        assert_eq!(peer_name(&Peer::Unix { path: b"/run/s".to_vec() }), b"unix:/run/s");
        assert_eq!(command_line(&[b"uname".to_vec(), b"-m".to_vec()]), b"uname -m");
    }
}
