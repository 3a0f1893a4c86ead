//! The job model: events folded into processes, files, sensitive reads, egress, DNS names
//! and unix sockets, then turned into a [`Summary`] (`summarize.rs`).

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, VecDeque},
    net::{IpAddr, SocketAddr},
};

use glob::{MatchOptions, Pattern};

use crate::event::{ConnectResult, Event, FsOp, O_ACCMODE, O_CREAT, O_EXCL, O_TRUNC, O_WRONLY, Peer, What, escape};

mod summarize;

/// Credentials and tokens a build has no business reading (`~` is the job's HOME).
pub const DEFAULT_SENSITIVE: &[&str] = &[
    "~/.ssh/**",
    "~/.aws/**",
    "~/.docker/config.json",
    "~/.netrc",
    "~/.git-credentials",
    "~/.config/gh/hosts.yml",
    "~/.npmrc",
    "~/.pypirc",
    "~/.kube/config",
    "~/.runner",
    "~/.credentials",
    "~/.credentials_rsaparams",
    "/proc/*/environ",
];

pub(crate) const MATCH: MatchOptions =
    MatchOptions { case_sensitive: true, require_literal_separator: true, require_literal_leading_dot: false };

/// What the model needs to know about the run.
#[derive(Clone, Debug)]
pub struct Context {
    pub workspace: Vec<u8>,
    pub home: Vec<u8>,
    /// Sensitive-file patterns, `~` already expanded.
    pub sensitive: Vec<Pattern>,
    /// The kernel reports TCP connect outcomes (`What::ConnectOutcome`): a connect that
    /// succeeded without one made no handshake (UDP).
    pub outcomes: bool,
}

impl Context {
    pub fn new(workspace: Vec<u8>, home: Vec<u8>) -> Self {
        let sensitive = DEFAULT_SENSITIVE.iter().filter_map(|p| Pattern::new(&expand_home(p, &home)).ok()).collect();
        Self { workspace, home, sensitive, outcomes: false }
    }

    /// The path as a person reads it: workspace-relative, `~/...`, or absolute.
    pub fn display(&self, path: &[u8]) -> String {
        if let Some(rest) = strip_dir(path, &self.workspace) {
            return if rest.is_empty() { ".".into() } else { escape(rest) };
        }
        if !self.home.is_empty()
            && self.home != b"/"
            && let Some(rest) = strip_dir(path, &self.home)
        {
            return format!("~/{}", escape(rest));
        }
        escape(path)
    }
}

/// `~` or `~/x` at the start of a pattern, as HOME.
pub(crate) fn expand_home(p: &str, home: &[u8]) -> String {
    match p.strip_prefix('~') {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => {
            format!("{}{rest}", String::from_utf8_lossy(home).trim_end_matches('/'))
        }
        _ => p.to_string(),
    }
}

/// `path` below `dir` (the part after `dir/`), or `Some("")` for `dir` itself.
pub(crate) fn strip_dir<'a>(path: &'a [u8], dir: &[u8]) -> Option<&'a [u8]> {
    let dir = if dir.len() > 1 { dir.strip_suffix(b"/").unwrap_or(dir) } else { dir };
    let rest = path.strip_prefix(dir)?;
    if rest.is_empty() || dir == b"/" { Some(rest) } else { rest.strip_prefix(b"/") }
}

/// Written by every shell and never a finding: the null device, terminals, own /proc.
pub(crate) const DEVICES: &[&str] =
    &["/dev/null", "/dev/zero", "/dev/full", "/dev/tty", "/dev/pts", "/dev/shm", "/proc/self"];

fn is_device(path: &[u8]) -> bool {
    DEVICES.iter().any(|d| strip_dir(path, d.as_bytes()).is_some())
}

#[derive(Debug, Default)]
struct Proc {
    pid: u32,
    ppid: Option<u32>,
    comm: Vec<u8>,
    exe: Option<Vec<u8>>,
    argv: Vec<Vec<u8>>,
    start_ns: u64,
    end_ns: Option<u64>,
    status: Option<i32>,
    signal: Option<i32>,
    /// It did something worth a line (exec'ed, failed, touched a file or the network).
    notable: bool,
}

#[derive(Debug, Default)]
struct FileFacts {
    ops: BTreeSet<String>,
    pids: BTreeSet<u32>,
}

#[derive(Debug, Default)]
struct Dest {
    pids: BTreeSet<u32>,
    attempts: u32,
    established: u32,
    in_progress: u32,
    /// Connected without a handshake (no TCP outcome came): UDP.
    datagram: u32,
    /// Outcomes the kernel reported (a TCP handshake was tried).
    handshakes: u32,
    failed: BTreeMap<String, u32>,
}

#[derive(Debug)]
pub struct Job {
    ctx: Context,
    start_ns: Option<u64>,
    end_ns: u64,
    procs: Vec<Proc>,
    /// pid → index of its latest process in `procs` (a pid may be reused).
    by_pid: HashMap<u32, usize>,
    files: BTreeMap<Vec<u8>, FileFacts>,
    sensitive: Vec<(Vec<u8>, u32, Option<String>)>,
    egress: BTreeMap<(IpAddr, u16), Dest>,
    dns: BTreeMap<Vec<u8>, BTreeSet<u32>>,
    unix: BTreeMap<Vec<u8>, BTreeSet<u32>>,
    listeners: BTreeMap<SocketAddr, BTreeSet<u32>>,
    /// Addresses the job's DNS answers gave, with the names asked.
    resolved: HashMap<IpAddr, BTreeSet<Vec<u8>>>,
    /// In-progress connects per (pid, address, port) not settled yet.
    unsettled: HashMap<(u32, IpAddr, u16), u32>,
    /// Outcomes that arrived before their connect (a blocking connect's outcome is
    /// reported inside the call): the next connect to the peer takes one.
    early: HashMap<(u32, IpAddr, u16), VecDeque<ConnectResult>>,
}

impl Dest {
    fn apply(&mut self, r: &ConnectResult) {
        match r {
            ConnectResult::Connected => self.established += 1,
            ConnectResult::InProgress => self.in_progress += 1,
            ConnectResult::Failed(e) => *self.failed.entry(e.clone()).or_default() += 1,
        }
    }
}

impl Job {
    pub fn new(ctx: Context) -> Self {
        Self {
            ctx,
            start_ns: None,
            end_ns: 0,
            procs: Vec::new(),
            by_pid: HashMap::new(),
            files: BTreeMap::new(),
            sensitive: Vec::new(),
            egress: BTreeMap::new(),
            dns: BTreeMap::new(),
            unix: BTreeMap::new(),
            listeners: BTreeMap::new(),
            resolved: HashMap::new(),
            unsettled: HashMap::new(),
            early: HashMap::new(),
        }
    }

    pub fn context(&self) -> &Context {
        &self.ctx
    }

    fn proc(&mut self, ev: &Event) -> &mut Proc {
        let idx = match self.by_pid.get(&ev.pid) {
            Some(&i) if self.procs[i].end_ns.is_none() => i,
            _ => {
                self.procs.push(Proc {
                    pid: ev.pid,
                    ppid: ev.ppid,
                    comm: ev.comm.clone(),
                    start_ns: ev.time_ns,
                    ..Default::default()
                });
                let i = self.procs.len() - 1;
                self.by_pid.insert(ev.pid, i);
                i
            }
        };
        let p = &mut self.procs[idx];
        if p.ppid.is_none() {
            p.ppid = ev.ppid;
        }
        p
    }

    pub fn add(&mut self, ev: &Event) {
        self.start_ns = Some(self.start_ns.map_or(ev.time_ns, |s| s.min(ev.time_ns)));
        self.end_ns = self.end_ns.max(ev.time_ns);
        let pid = ev.pid;
        match &ev.what {
            What::Exec { filename, argv, ok } => {
                let p = self.proc(ev);
                p.notable = true;
                if *ok {
                    p.exe = Some(filename.clone());
                    p.argv.clone_from(argv);
                    p.comm.clone_from(&ev.comm);
                }
            }
            What::Exit { status, signal } => {
                let p = self.proc(ev);
                p.end_ns = Some(ev.time_ns);
                p.status = *status;
                p.signal = *signal;
                if *status != Some(0) {
                    p.notable = true;
                }
            }
            What::Open { path, flags, error } => {
                self.proc(ev).notable = true;
                let acc = flags & O_ACCMODE;
                if acc != O_WRONLY && self.is_sensitive(path, pid) {
                    self.sensitive.push((path.clone(), pid, error.clone()));
                }
                if error.is_some() {
                    return;
                }
                let op = if flags & (O_CREAT | O_EXCL) == (O_CREAT | O_EXCL) {
                    "created"
                } else if acc != 0 || flags & O_TRUNC != 0 {
                    "written"
                } else {
                    return;
                };
                if is_device(path) {
                    return;
                }
                let f = self.files.entry(path.clone()).or_default();
                f.ops.insert(op.into());
                f.pids.insert(pid);
            }
            What::Fs { op, path, to, error } => {
                self.proc(ev).notable = true;
                if error.is_some() {
                    return;
                }
                let f = self.files.entry(path.clone()).or_default();
                f.pids.insert(pid);
                match (op, to) {
                    (FsOp::Rename, Some(to)) => {
                        f.ops.insert(format!("renamed to {}", self.ctx.display(to)));
                        let t = self.files.entry(to.clone()).or_default();
                        t.ops.insert("renamed here".into());
                        t.pids.insert(pid);
                    }
                    _ => {
                        f.ops.insert(op.name().into());
                    }
                }
            }
            What::Connect { peer, result } => {
                self.proc(ev).notable = true;
                match peer {
                    Peer::Unix(path) => {
                        self.unix.entry(path.clone()).or_default().insert(pid);
                    }
                    Peer::Inet(sa) => {
                        let (ip, port) = (sa.ip().to_canonical(), sa.port());
                        let early = self.early.get_mut(&(pid, ip, port)).and_then(VecDeque::pop_front);
                        let d = self.egress.entry((ip, port)).or_default();
                        d.pids.insert(pid);
                        d.attempts += 1;
                        match (result, early) {
                            (ConnectResult::InProgress, Some(settled)) => {
                                d.handshakes += 1;
                                d.apply(&settled);
                            }
                            (ConnectResult::Connected, None) if self.ctx.outcomes => d.datagram += 1,
                            (r, Some(_)) => {
                                d.handshakes += 1;
                                d.apply(r);
                            }
                            (ConnectResult::InProgress, None) => {
                                d.apply(result);
                                *self.unsettled.entry((pid, ip, port)).or_default() += 1;
                            }
                            // The call's own result says it all.
                            (r, _) => d.apply(r),
                        }
                    }
                }
            }
            What::ConnectOutcome { peer, result } => {
                let key = (pid, peer.ip().to_canonical(), peer.port());
                match self.unsettled.get_mut(&key) {
                    Some(n) if *n > 0 => {
                        *n -= 1;
                        let d = self.egress.entry((key.1, key.2)).or_default();
                        d.in_progress = d.in_progress.saturating_sub(1);
                        d.handshakes += 1;
                        d.apply(result);
                    }
                    _ => self.early.entry(key).or_default().push_back(result.clone()),
                }
            }
            What::Listen { local } => {
                self.proc(ev).notable = true;
                self.listeners.entry(*local).or_default().insert(pid);
            }
            What::Dns { message } => {
                self.proc(ev).notable = true;
                let Some(m) = crate::dns::parse(message) else { return };
                for n in m.names {
                    self.dns.entry(n).or_default().insert(pid);
                }
                for (name, ip) in m.answers {
                    self.resolved.entry(ip.to_canonical()).or_default().insert(name);
                }
            }
        }
    }

    fn is_sensitive(&self, path: &[u8], pid: u32) -> bool {
        let Ok(s) = std::str::from_utf8(path) else { return false };
        // Only another process's environment is a secret worth reporting.
        if let Some(rest) = s.strip_prefix("/proc/") {
            let who = rest.split('/').next().unwrap_or("");
            if who == "self" || who == "thread-self" || who == pid.to_string() {
                return false;
            }
        }
        self.ctx.sensitive.iter().any(|p| p.matches_with(s, MATCH))
    }
}
