//! `tracer protect`: private-key reads and ssh-agent hijacking, filtered in the kernel
//! (`PROTECT_ONLY`: opens of protected inodes by executables not allowed, connects reaching
//! an agent's socket), judged here against the agent's owner, reported with key `ssh-key` /
//! `ssh-agent`. What is protected is found at start and kept current by a rescan.

mod output;
mod procs;
mod scan;

use std::{os::unix::ffi::OsStrExt as _, path::PathBuf, time::Duration};

use clap::Args;
use tokio::signal::unix::{SignalKind, signal};
use tracer_common::{
    config::{ENABLE_CONNECT, ENABLE_EXEC, ENABLE_OPEN, PROTECT_ONLY},
    protect::InodeKey,
};

use self::{
    output::{Alert, Format, Out},
    procs::Procs,
    scan::{Agent, KeyFile},
};
use crate::{
    error::UsageError,
    event::{Detail, Event, Peer},
    loader::{Loaded, Options},
    reader::{DRAIN_EVERY, Reader},
    sink,
};

#[derive(Args, Debug)]
pub(crate) struct ProtectArgs {
    /// Print what is protected, the agents found, the allow-list and whether enforcement is
    /// available here, then exit.
    #[arg(long)]
    pub check: bool,
    /// Deny the reported accesses with EPERM (BPF LSM); exit 2 where the kernel cannot.
    #[arg(long)]
    pub enforce: bool,
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Write events to FILE instead of stdout.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Stop after this long (e.g. 30s, 5m) instead of at SIGINT/SIGTERM.
    #[arg(long, value_parser = super::parse_duration)]
    pub duration: Option<Duration>,
    /// Also allow this executable to read keys (repeatable; root-owned, not group/other writable).
    #[arg(long, value_name = "PATH")]
    pub allow: Vec<PathBuf>,
    /// Allow only the executables given with --allow, not OpenSSH's defaults.
    #[arg(long)]
    pub no_default_allow: bool,
    /// Also scan DIR/.ssh for keys (repeatable; the homes of /etc/passwd always are).
    #[arg(long, value_name = "DIR")]
    pub home: Vec<PathBuf>,
    /// The ssh-agent executable whose listening sockets are agents (repeatable; default
    /// /usr/bin/ssh-agent when it exists).
    #[arg(long, value_name = "PATH")]
    pub agent_exe: Vec<PathBuf>,
    /// Also report connects to an agent from another audit session than the agent's.
    #[arg(long)]
    pub agent_session: bool,
    /// How often keys and agents are scanned again.
    #[arg(long, value_parser = super::parse_duration, default_value = "2s")]
    pub rescan: Duration,
}

/// Everything protected right now.
struct Watch {
    keys: Vec<KeyFile>,
    agents: Vec<Agent>,
    allowed: Vec<(PathBuf, InodeKey)>,
}

struct Settings {
    homes: Vec<PathBuf>,
    allow: Vec<PathBuf>,
    agent_exes: Vec<InodeKey>,
    sshd_exes: Vec<InodeKey>,
}

impl Settings {
    fn new(args: &ProtectArgs) -> anyhow::Result<Self> {
        let mut allow = Vec::new();
        if !args.no_default_allow {
            allow.extend(scan::allowed(&[]).map_err(UsageError)?.into_iter().map(|(p, _)| p));
        }
        allow.extend(args.allow.iter().cloned());
        if allow.is_empty() {
            return Err(UsageError("--no-default-allow without --allow: nothing may read a key".into()).into());
        }
        // Validated now: a bad --allow is an error before anything is loaded.
        scan::allowed(&allow).map_err(UsageError)?;
        let mut agent_exes = Vec::new();
        let default_agent = [PathBuf::from("/usr/bin/ssh-agent")];
        let agents = if args.agent_exe.is_empty() {
            if default_agent[0].exists() { &default_agent[..] } else { &[] }
        } else {
            &args.agent_exe[..]
        };
        for p in agents {
            agent_exes.push(crate::sshd_exe::vet(p, "--agent-exe").map_err(UsageError)?);
        }
        let sshd_exes = crate::sshd_exe::DEFAULT_SSHD_EXES
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| scan::inode_key(&m))
            .collect();
        Ok(Settings { homes: scan::homes(&args.home), allow, agent_exes, sshd_exes })
    }

    fn scan(&self) -> Watch {
        Watch {
            keys: scan::keys(&self.homes),
            agents: scan::agents(&self.agent_exes, &self.sshd_exes),
            // A binary replaced by an upgrade is a new inode; one that fails the vetting now is dropped.
            allowed: self.allow.iter().filter_map(|p| scan::allowed(std::slice::from_ref(p)).ok()).flatten().collect(),
        }
    }
}

impl Watch {
    fn install(&self, l: &mut Loaded) -> anyhow::Result<()> {
        let keys: Vec<InodeKey> = self.keys.iter().map(|k| k.key).collect();
        let agents: Vec<InodeKey> = self.agents.iter().map(|a| a.key).collect();
        let allowed: Vec<InodeKey> = self.allowed.iter().map(|(_, k)| *k).collect();
        // Allowed first: a key never appears before its readers are known.
        l.set_inodes("ALLOWED_EXES", &allowed)?;
        l.set_inodes("PROTECTED", &keys)?;
        l.set_inodes("AGENT_SOCKS", &agents)?;
        // The enforcing program judges connects in the kernel: it needs each agent's owner.
        let owners: Vec<(InodeKey, u64)> =
            self.agents.iter().map(|a| (a.key, u64::from(a.uid) << 32 | u64::from(a.auid))).collect();
        l.set_agent_owners(&owners)?;
        Ok(())
    }
}

pub(crate) async fn run(args: ProtectArgs) -> anyhow::Result<i32> {
    if args.rescan.is_zero() {
        return Err(UsageError("--rescan: must be longer than 0".into()).into());
    }
    let settings = Settings::new(&args)?;
    if args.check {
        return check(&settings);
    }
    let out = sink::open_output(args.output.as_deref()).map_err(|e| {
        UsageError(format!(
            "cannot write {}: {e}",
            args.output.as_ref().map(|p| p.display().to_string()).unwrap_or_default()
        ))
    })?;
    let mut out = Out::new(args.format, out);
    let opts = Options {
        enabled: ENABLE_EXEC | ENABLE_OPEN | ENABLE_CONNECT | PROTECT_ONLY,
        ring_bytes: 8 << 20,
        ..Default::default()
    };
    let mut loaded = crate::error::load_or_usage_error(&opts)?;
    let mut watch = settings.scan();
    watch.install(&mut loaded)?;
    if args.enforce {
        // Nothing half-applied: without enforcement the command stops here; alert mode is
        // the same command without --enforce.
        if let Err(why) = enforce(&mut loaded) {
            return Err(UsageError(format!("--enforce: {why}; alert mode: run without --enforce")).into());
        }
    }
    eprintln!(
        "tracer: protecting {} keys and {} agents; {} allowed executables; {}",
        watch.keys.len(),
        watch.agents.len(),
        watch.allowed.len(),
        if args.enforce { "enforcing" } else { "alert mode" }
    );
    let mut reader = Reader::new(&mut loaded, true)?;
    let mut judge = Judge { procs: Procs::default(), agent_session: args.agent_session };
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let deadline = tokio::time::sleep(args.duration.unwrap_or(Duration::from_secs(u64::MAX / 4)));
    tokio::pin!(deadline);
    let mut rescan = tokio::time::interval(args.rescan);
    rescan.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut drain_tick = tokio::time::interval(DRAIN_EVERY);
    drain_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failed: Option<std::io::Error> = None;
    let mut drain = |reader: &mut Reader, watch: &Watch, judge: &mut Judge, out: &mut Out| {
        reader.drain_each(|ev| {
            if let Some(a) = judge.event(&ev, watch)
                && let Err(e) = out.alert(&a)
            {
                failed.get_or_insert(e);
            }
        });
    };
    loop {
        tokio::select! {
            r = reader.readable() => {
                r?;
                drain(&mut reader, &watch, &mut judge, &mut out);
            }
            _ = drain_tick.tick() => drain(&mut reader, &watch, &mut judge, &mut out),
            _ = rescan.tick() => {
                let now = settings.scan();
                if now.keys != watch.keys || now.agents != watch.agents || now.allowed != watch.allowed {
                    now.install(&mut loaded)?;
                    watch = now;
                }
            }
            _ = sigint.recv() => break,
            _ = sigterm.recv() => break,
            _ = &mut deadline => break,
        }
    }
    drain(&mut reader, &watch, &mut judge, &mut out);
    if let Some(e) = failed {
        return Err(anyhow::anyhow!("writing events: {e}"));
    }
    let c = reader.counts(&loaded)?;
    eprintln!("tracer: {c}");
    Ok(0)
}

/// Turns the kernel's candidates into alerts: every key read it sends (the kernel already
/// left out allowed executables), agent connects whose identity differs from the agent's.
struct Judge {
    procs: Procs,
    agent_session: bool,
}

impl Judge {
    fn event<'a>(&mut self, ev: &'a Event, watch: &Watch) -> Option<Alert<'a>> {
        let (key, target, owner, reason) = match &ev.detail {
            Detail::Exec(_) => {
                self.procs.exec(ev);
                return None;
            }
            Detail::Open(o) => {
                let k = find_key(&o.host_path, watch);
                let target =
                    k.map_or_else(|| o.host_path.clone(), |k| k.path.clone().into_os_string().into_encoded_bytes());
                ("ssh-key", target, k.map(|k| k.owner), "read by an executable not allowed".to_string())
            }
            Detail::Connect(c) => {
                let Peer::Unix { path } = &c.peer else { return None };
                let agent = match c.unix_file {
                    // The socket file the kernel saw at the call: the name the client gave is
                    // its own and may point to another agent (or nothing) by now.
                    Some(file) => watch.agents.iter().find(|a| a.key == file),
                    // A denied connect (never connected) or a kernel that could not say.
                    None => find_agent(ev.pid, path, watch, &self.procs),
                };
                let reason = match agent {
                    // A denial is always reported, whatever user space thinks of it.
                    Some(a) if ev.ret < 0 => self.agent_reason(ev, a).unwrap_or_else(|| "denied".into()),
                    Some(a) => self.agent_reason(ev, a)?,
                    None => "agent socket not identified".to_string(),
                };
                let target =
                    agent.map_or_else(|| path.clone(), |a| a.path.clone().into_os_string().into_encoded_bytes());
                ("ssh-agent", target, agent.map(|a| a.uid), reason)
            }
            Detail::Log(_)
            | Detail::Syscall(_)
            | Detail::Exit(_)
            | Detail::ConnectOutcome(_)
            | Detail::Dns(_)
            | Detail::Listen(_) => return None,
        };
        let p = self.procs.get(ev.pid).unwrap_or_default();
        // Failed calls reach user space only as denials of the enforcing programs.
        let denied = ev.ret < 0;
        Some(Alert { key, ev, target, owner, reason, denied, argv: p.argv, tree: self.procs.tree(ev.ppid) })
    }

    /// Why a connect to `a` is reported, or None when it is the agent owner's own.
    fn agent_reason(&self, ev: &Event, a: &Agent) -> Option<String> {
        let mut why = Vec::new();
        if a.forwarded {
            why.push("forwarded agent".to_string());
        }
        if ev.uid != a.uid {
            why.push(format!("uid {} is not the agent owner's {}", ev.uid, a.uid));
        }
        if ev.auid.raw() != a.auid {
            why.push(format!("login uid {} is not the agent owner's {}", ev.auid, id(a.auid)));
        }
        if self.agent_session && ev.ses.raw() != a.ses {
            why.push(format!("session {} is not the agent's {}", ev.ses, id(a.ses)));
        }
        (!why.is_empty()).then(|| why.join("; "))
    }
}

fn id(v: u32) -> String {
    if v == u32::MAX { "unset".into() } else { v.to_string() }
}

/// The protected key an opened path is (by inode: links and renames lead to it).
fn find_key<'a>(path: &[u8], watch: &'a Watch) -> Option<&'a KeyFile> {
    let m = std::fs::metadata(std::ffi::OsStr::from_bytes(path)).ok()?;
    let key = scan::inode_key(&m);
    watch.keys.iter().find(|k| k.key == key)
}

/// The agent a connect reached, from the socket name as the client gave it, when the kernel
/// gave no socket file (only a denied connect, which never connected). A relative name is
/// resolved against the process's working directory: /proc/PID/cwd while it runs, else the
/// one it had at exec (a short-lived client such as `ssh-add -l` is often gone before its
/// event is read).
fn find_agent<'a>(pid: u32, path: &[u8], watch: &'a Watch, procs: &Procs) -> Option<&'a Agent> {
    let name = PathBuf::from(std::ffi::OsStr::from_bytes(path));
    let found = |full: PathBuf| {
        let key = scan::inode_key(&std::fs::metadata(full).ok()?);
        watch.agents.iter().find(|a| a.key == key)
    };
    if name.is_absolute() {
        return found(name);
    }
    found(PathBuf::from(format!("/proc/{pid}/cwd")).join(&name)).or_else(|| {
        let cwd = procs.get(pid)?.cwd;
        found(PathBuf::from(std::ffi::OsStr::from_bytes(&cwd)).join(&name))
    })
}

/// Attaches the enforcing programs, or says why this kernel cannot run them.
fn enforce(loaded: &mut Loaded) -> Result<(), String> {
    if let Some(why) = lsm_inactive() {
        return Err(why);
    }
    loaded.attach_lsm().map_err(|e| {
        let mut msg = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            let s_text = s.to_string();
            if !msg.contains(&s_text) {
                msg = format!("{msg}: {s_text}");
            }
            src = s.source();
        }
        format!("the kernel refused the BPF LSM program: {msg}")
    })
}

/// Why BPF LSM is not active (from the kernel's list of LSMs), if it is not.
fn lsm_inactive() -> Option<String> {
    let path = "/sys/kernel/security/lsm";
    let lsm = std::fs::read_to_string(path).or_else(|_| {
        // securityfs may be unmounted (a minimal system): mount it where the kernel expects it.
        let c = |s: &str| std::ffi::CString::new(s).unwrap_or_default();
        let (fs, target) = (c("securityfs"), c("/sys/kernel/security"));
        // SAFETY: NUL-terminated strings that outlive the call; no mount data.
        unsafe { libc::mount(fs.as_ptr(), target.as_ptr(), fs.as_ptr(), 0, std::ptr::null()) };
        std::fs::read_to_string(path)
    });
    match lsm {
        Err(e) => Some(format!("cannot read the active LSMs (/sys/kernel/security/lsm: {e})")),
        Ok(l) if !l.trim().split(',').any(|m| m == "bpf") => {
            Some(format!("BPF LSM is not active (lsm={}; boot with lsm=...,bpf)", l.trim()))
        }
        Ok(_) => None,
    }
}

fn check(s: &Settings) -> anyhow::Result<i32> {
    let w = s.scan();
    println!("protected keys ({}):", w.keys.len());
    for k in &w.keys {
        println!("  {} (owner uid {}, inode {})", k.path.display(), k.owner, k.key.ino);
    }
    println!("agents ({}):", w.agents.len());
    for a in &w.agents {
        let kind = if a.forwarded { "forwarded by sshd" } else { "ssh-agent" };
        println!(
            "  {} ({kind}, pid {}, uid {}, auid {}, ses {})",
            a.path.display(),
            a.pid,
            a.uid,
            id(a.auid),
            id(a.ses)
        );
    }
    println!("allowed executables ({}):", w.allowed.len());
    for (p, k) in &w.allowed {
        println!("  {} (inode {})", p.display(), k.ino);
    }
    // Proved by loading: a kernel may list bpf among its LSMs and still refuse the programs.
    let status = match crate::loader::load(&Options { ring_bytes: 1 << 16, ..Default::default() }) {
        Ok(mut l) => enforce(&mut l),
        Err(e) => Err(format!("cannot load the programs: {e}")),
    };
    match status {
        Ok(()) => println!("enforcement: available (BPF LSM programs load and attach)"),
        Err(why) => println!("enforcement: unavailable: {why}"),
    }
    Ok(0)
}
