//! Loads the kernel programs with this kernel's offsets and the user's filters, and
//! attaches them. Everything that can be wrong with the machine is checked here first so
//! the user gets one clear error instead of a verifier dump.

use std::{collections::HashMap, path::PathBuf, time::Instant};

use aya::{
    Ebpf, EbpfLoader,
    maps::{HashMap as BpfHashMap, MapData, PerCpuArray, PerCpuHashMap, RingBuf},
    programs::Lsm,
};
use thiserror::Error;
use tracer_common::{
    agg::{AGG_MAX, AggKey},
    config::*,
    outcome::PENDING_MAX,
    protect::{AGENTS_MAX, ALLOWED_MAX, DENIED_MAX, PROTECTED_MAX},
    rules::{RULE_NRS_MAX, RULES_MAX},
    sshlog::{ExeKey, SSH_SOCKS_MAX},
    syscount::{STAT_AGG_FULL, STAT_LOST, STAT_SYSCOUNT_FULL, SYSCOUNT_MAX, SYSCOUNT_NR_MAX, SyscountKey},
};

use crate::{btf::Btf, fexit_probe, offsets, tracefs};

mod programs;

static PROGRAMS: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/tracer"));

#[derive(Debug, Error)]
pub(crate) enum LoadError {
    #[error("the tracer must run as root (it loads eBPF programs); try sudo")]
    NotRoot,
    #[error("kernel BTF not found at /sys/kernel/btf/vmlinux (needs CONFIG_DEBUG_INFO_BTF=y)")]
    NoBtf,
    #[error("kernel BTF unusable: {0}")]
    Btf(String),
    #[error(transparent)]
    Tracefs(#[from] tracefs::TracefsError),
    #[error("tracepoint {0} is missing from this kernel")]
    MissingTracepoint(String),
    #[error("loading the eBPF programs: {0}")]
    Load(#[from] aya::EbpfError),
    #[error("program {name}: {source}")]
    Program { name: String, source: aya::programs::ProgramError },
    #[error("map {0}: {1}")]
    Map(&'static str, aya::maps::MapError),
    #[error("{0}")]
    Other(String),
}

/// What to load and how to filter, as given on the command line.
#[derive(Clone, Debug, Default)]
pub(crate) struct Options {
    pub auid: Option<u32>,
    pub uid: Option<u32>,
    pub pids: Vec<u32>,
    /// `--comm` values (at most `COMMS_MAX`).
    pub comms: Vec<String>,
    /// Follow the children the tracer forks (`-- CMD`).
    pub follow_children: bool,
    pub enabled: u32,
    pub ring_bytes: u32,
    /// Pending bytes that wake the reader (0: every record; see `Config::wakeup_bytes`).
    pub wakeup_bytes: u32,
    /// The trusted sshd executables (`ENABLE_SSHLOG`), vetted by `sshd_exe::trusted`.
    pub sshd_exes: Vec<ExeKey>,
    /// `trace --rules`: the compiled rule set (`ENABLE_RULES`): the kernel tables, and the
    /// user-side remainder `stream.rs` finishes the decision with.
    pub rules: Option<std::sync::Arc<tracer_rules::Compiled>>,
}

pub(crate) struct Loaded {
    pub ebpf: Ebpf,
    pub warnings: Vec<String>,
    /// `--auid`: the kernel counts its syscalls in the per-CPU array `SYSCOUNT_ONE`.
    auid: Option<u32>,
    /// `trace --rules`: the rule set whose kernel tables were loaded.
    pub rules: Option<std::sync::Arc<tracer_rules::Compiled>>,
    /// `TRACER_PROG_STATS`: the kernel counts the programs' runs and run time while held.
    prog_stats: Option<std::os::fd::OwnedFd>,
}

/// Kernel-side counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct KernelStats {
    pub lost: u64,
    pub syscount_full: u64,
    /// `AGGREGATE`: records sent one by one because the kernel's entry table was full.
    pub agg_full: u64,
}

pub(crate) fn check_environment() -> Result<PathBuf, LoadError> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Err(LoadError::NotRoot);
    }
    if !std::path::Path::new("/sys/kernel/btf/vmlinux").exists() {
        return Err(LoadError::NoBtf);
    }
    Ok(tracefs::ensure_mounted()?)
}

pub(crate) fn load(opts: &Options) -> Result<Loaded, LoadError> {
    let start = Instant::now();
    let tracefs = check_environment()?;
    // aya's loader parses the kernel BTF when made (we give it none: the object has no
    // CO-RE relocations); made on another core while ours is parsed, it costs no wall time.
    let aya_loader = std::thread::spawn(EbpfLoader::new);
    let btf = Btf::from_sys_fs().map_err(|e| LoadError::Btf(e.to_string()))?;
    let forget: Vec<String> = std::env::var("TRACER_FORGET_FIELDS")
        .map(|v| v.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect())
        .unwrap_or_default();
    let (offsets, missing) = offsets::resolve(&btf, &forget).map_err(LoadError::Btf)?;
    let debug = std::env::var_os("TRACER_DEBUG").is_some();
    if debug {
        eprintln!("tracer: BTF offsets resolved at {:?}", start.elapsed());
    }
    let warnings: Vec<String> =
        missing.iter().map(|f| format!("kernel lacks {f}: the values it feeds are reported as unknown")).collect();

    let cpus = aya::util::nr_cpus().map_err(|(what, e)| LoadError::Other(format!("{what}: {e}")))? as u32;
    // Each CPU wakes the reader after its share of the batch (at least 4 KiB of records, so
    // a many-core machine is not woken every few records).
    let wakeup = opts.wakeup_bytes.min(opts.ring_bytes / 4);
    let wakeup = (wakeup / cpus.max(1)).max(wakeup.min(4096));
    let mut cfg = Config {
        tracer_tgid: std::process::id(),
        enabled: opts.enabled,
        wakeup_bytes: wakeup,
        fork_parent_pid_off: tracefs::field_offset(&tracefs, "sched", "sched_process_fork", "parent_pid")?,
        fork_child_pid_off: tracefs::field_offset(&tracefs, "sched", "sched_process_fork", "child_pid")?,
        exec_filename_off: tracefs::field_offset(&tracefs, "sched", "sched_process_exec", "filename")?,
        signal_handler_off: tracefs::field_offset(&tracefs, "signal", "signal_deliver", "sa_handler")?,
        signal_flags_off: tracefs::field_offset(&tracefs, "signal", "signal_deliver", "sa_flags")?,
        ..Default::default()
    };
    if let Some(a) = opts.auid {
        cfg.filters |= FILTER_AUID;
        cfg.auid = a;
    }
    if let Some(u) = opts.uid {
        cfg.filters |= FILTER_UID;
        cfg.uid = u;
    }
    if !opts.pids.is_empty() || opts.follow_children {
        cfg.filters |= FILTER_PID;
    }
    if opts.follow_children {
        cfg.filters |= FOLLOW_TRACER_CHILDREN;
    }
    if !opts.comms.is_empty() {
        cfg.filters |= FILTER_COMM;
    }

    // aya probes the kernel's BPF features once, at its first load: here, while its
    // loader is still being made.
    let _ = aya::features();
    let mut aya_loader = aya_loader.join().map_err(|_| LoadError::Other("aya's loader panicked".into()))?;
    if debug {
        eprintln!("tracer: aya loader made at {:?}", start.elapsed());
    }
    let mut ebpf = aya_loader
        // No CO-RE relocations in the object (rustc emits none): no kernel BTF for aya.
        .btf(None)
        .override_global("CONFIG", &cfg, true)
        .override_global("OFFSETS", &offsets, true)
        .map_max_entries("SCRATCH", cpus)
        .map_max_entries("EVENTS", opts.ring_bytes)
        // Per-CPU hash maps and preallocated hash maps are allocated in full at creation
        // (16 384 per-CPU entries took ~20 ms here, 65 536 hash entries ~2 ms): sized only
        // where they are used (an LRU map needs an entry per CPU at least).
        .map_max_entries("SYSCOUNT", sized(opts.enabled & ENABLE_SYSCOUNT, SYSCOUNT_MAX, 1))
        .map_max_entries("AGG", sized(opts.enabled & AGGREGATE, AGG_MAX, 1))
        .map_max_entries("SSH_SOCKS", sized(opts.enabled & ENABLE_SSHLOG, SSH_SOCKS_MAX, cpus))
        .map_max_entries("PENDING_CONNECTS", sized(opts.enabled & ENABLE_CONNECT_OUTCOME, PENDING_MAX, cpus))
        .map_max_entries("RULE_NRS", sized(opts.enabled & ENABLE_RULES, RULE_NRS_MAX, 1))
        .map_max_entries("RULES", sized(opts.enabled & ENABLE_RULES, RULES_MAX as u32, 1))
        .map_max_entries("DENIED", sized(opts.enabled & PROTECT_ONLY, DENIED_MAX, cpus))
        .map_max_entries("PROTECTED", sized(opts.enabled & PROTECT_ONLY, PROTECTED_MAX, 1))
        .map_max_entries("ALLOWED_EXES", sized(opts.enabled & PROTECT_ONLY, ALLOWED_MAX, 1))
        .map_max_entries("AGENT_SOCKS", sized(opts.enabled & PROTECT_ONLY, AGENTS_MAX, 1))
        .map_max_entries("AGENT_OWNERS", sized(opts.enabled & PROTECT_ONLY, AGENTS_MAX, 1))
        .load(PROGRAMS)?;
    if debug {
        eprintln!("tracer: object loaded at {:?}", start.elapsed());
    }

    if !opts.pids.is_empty() {
        let mut traced: BpfHashMap<_, u32, u32> =
            BpfHashMap::try_from(ebpf.map_mut("TRACED").unwrap()).map_err(|e| LoadError::Map("TRACED", e))?;
        for pid in &opts.pids {
            traced.insert(pid, 1, 0).map_err(|e| LoadError::Map("TRACED", e))?;
        }
    }
    if !opts.comms.is_empty() {
        let mut comms: BpfHashMap<_, [u8; 16], u32> =
            BpfHashMap::try_from(ebpf.map_mut("COMMS").unwrap()).map_err(|e| LoadError::Map("COMMS", e))?;
        for c in &opts.comms {
            let mut key = [0u8; 16];
            let n = c.len().min(15);
            key[..n].copy_from_slice(&c.as_bytes()[..n]);
            comms.insert(key, 1, 0).map_err(|e| LoadError::Map("COMMS", e))?;
        }
    }
    if !opts.sshd_exes.is_empty() {
        let mut exes: BpfHashMap<_, ExeKey, u32> =
            BpfHashMap::try_from(ebpf.map_mut("SSHD_EXES").unwrap()).map_err(|e| LoadError::Map("SSHD_EXES", e))?;
        for key in &opts.sshd_exes {
            exes.insert(key, 1, 0).map_err(|e| LoadError::Map("SSHD_EXES", e))?;
        }
    }

    if let Some(rules) = &opts.rules {
        fill_rules(&mut ebpf, rules)?;
    }

    // Syscall exits: trampolines on the syscall wrappers when the kernel has them and no
    // syscall is to be counted (only the watched calls pay); else the raw tracepoint.
    let exit_families = ENABLE_EXEC | ENABLE_OPEN | ENABLE_CONNECT;
    // The guard's accept(2) hook lives on the raw tracepoint only; rules may name any call,
    // so every exit must reach the raw tracepoint; so must `tracer ci`'s DNS capture
    // (read/write/sendto/recvfrom) and listen(2).
    let want_fexit = opts.enabled & (ENABLE_SYSCOUNT | ENABLE_SSHLOG | ENABLE_RULES | ENABLE_DNS | ENABLE_LISTEN) == 0
        && opts.enabled & exit_families != 0
        && std::env::var_os("TRACER_NO_FEXIT").is_none()
        && fexit_probe::fexit_allowed(&btf, "__x64_sys_openat");
    // Our BTF is done with: free it before aya parses its own (peak RSS).
    drop(btf);
    let use_fexit = want_fexit
        && match programs::attach_fexit(&mut ebpf, opts.enabled) {
            Ok(()) => true,
            Err(e) => {
                if debug {
                    eprintln!("tracer: trampolines unavailable ({e}); using raw_syscalls:sys_exit");
                }
                false
            }
        };
    if debug {
        eprintln!(
            "tracer: syscall exits via {} at {:?}",
            if use_fexit { "fexit" } else { "raw tracepoint" },
            start.elapsed()
        );
    }
    programs::load_and_attach(&mut ebpf, &tracefs, opts.enabled, use_fexit, debug)?;
    // Counting costs two clock reads per program run: only when asked (the bench's profile).
    let prog_stats = match std::env::var_os("TRACER_PROG_STATS") {
        Some(_) => Some(
            aya::sys::enable_stats(aya::sys::Stats::RunTime)
                .map_err(|e| LoadError::Other(format!("TRACER_PROG_STATS: {e}")))?,
        ),
        None => None,
    };
    Ok(Loaded { ebpf, warnings, auid: opts.auid, rules: opts.rules.clone(), prog_stats })
}

/// A map's entries: `full` when the feature using it is on, else `unused`.
const fn sized(on: u32, full: u32, unused: u32) -> u32 {
    if on != 0 { full } else { unused }
}

/// RULE_NRS and RULES from the compiled rule set, before anything is attached.
fn fill_rules(ebpf: &mut Ebpf, rules: &tracer_rules::Compiled) -> Result<(), LoadError> {
    use tracer_common::rules::{KRule, NrKey, RuleNr};
    if rules.rules.len() > RULES_MAX {
        return Err(LoadError::Other(format!("{} rules: the kernel tables hold {}", rules.rules.len(), RULES_MAX)));
    }
    let mut nrs: BpfHashMap<_, NrKey, RuleNr> =
        BpfHashMap::try_from(ebpf.map_mut("RULE_NRS").unwrap()).map_err(|e| LoadError::Map("RULE_NRS", e))?;
    for (k, v) in &rules.nrs {
        nrs.insert(k, v, 0).map_err(|e| LoadError::Map("RULE_NRS", e))?;
    }
    let mut table: aya::maps::Array<_, KRule> =
        aya::maps::Array::try_from(ebpf.map_mut("RULES").unwrap()).map_err(|e| LoadError::Map("RULES", e))?;
    for (i, r) in rules.rules.iter().enumerate() {
        table.set(i as u32, r, 0).map_err(|e| LoadError::Map("RULES", e))?;
    }
    Ok(())
}

impl Loaded {
    /// Replaces the trusted sshd executables the kernel compares with.
    pub(crate) fn set_sshd_exes(&mut self, keys: &[ExeKey]) -> Result<(), LoadError> {
        self.set_inodes("SSHD_EXES", keys)
    }

    /// Replaces the (inode, device) set held by the hash map `name` (`SSHD_EXES`, and
    /// `tracer protect`'s `PROTECTED`, `ALLOWED_EXES`, `AGENT_SOCKS`).
    pub(crate) fn set_inodes(&mut self, name: &'static str, keys: &[ExeKey]) -> Result<(), LoadError> {
        let map = self.ebpf.map_mut(name).ok_or(LoadError::Other(format!("no {name} map")))?;
        let mut set: BpfHashMap<_, ExeKey, u32> = BpfHashMap::try_from(map).map_err(|e| LoadError::Map(name, e))?;
        let stale: Vec<ExeKey> = set.keys().filter_map(Result::ok).filter(|k| !keys.contains(k)).collect();
        for k in keys {
            set.insert(k, 1, 0).map_err(|e| LoadError::Map(name, e))?;
        }
        for k in &stale {
            set.remove(k).map_err(|e| LoadError::Map(name, e))?;
        }
        Ok(())
    }

    /// Replaces `tracer protect`'s agent owners: socket file -> (uid << 32 | login uid).
    pub(crate) fn set_agent_owners(&mut self, owners: &[(ExeKey, u64)]) -> Result<(), LoadError> {
        let name = "AGENT_OWNERS";
        let map = self.ebpf.map_mut(name).ok_or(LoadError::Other(format!("no {name} map")))?;
        let mut set: BpfHashMap<_, ExeKey, u64> = BpfHashMap::try_from(map).map_err(|e| LoadError::Map(name, e))?;
        let stale: Vec<ExeKey> =
            set.keys().filter_map(Result::ok).filter(|k| !owners.iter().any(|(o, _)| o == k)).collect();
        for (k, v) in owners {
            set.insert(k, v, 0).map_err(|e| LoadError::Map(name, e))?;
        }
        for k in &stale {
            set.remove(k).map_err(|e| LoadError::Map(name, e))?;
        }
        Ok(())
    }

    /// `tracer protect --enforce`: loads and attaches the BPF LSM programs (program, hook).
    /// The error names the program the kernel refused.
    pub(crate) fn attach_lsm(&mut self) -> Result<(), LoadError> {
        let btf = aya::Btf::from_sys_fs().map_err(|e| LoadError::Btf(e.to_string()))?;
        for (func, hook) in [("lsm_file_open", "file_open"), ("lsm_unix_connect", "unix_stream_connect")] {
            let err = |source| LoadError::Program { name: format!("{func} (lsm/{hook})"), source };
            let p: &mut Lsm = self
                .ebpf
                .program_mut(func)
                .ok_or_else(|| LoadError::Other(format!("program {func} not in object")))?
                .try_into()
                .map_err(err)?;
            p.load(hook, &btf).map_err(err)?;
            p.attach().map_err(err)?;
        }
        Ok(())
    }

    /// `TRACER_PROG_STATS`: each program's runs and time in it, one line each on stderr.
    pub(crate) fn print_prog_stats(&self) {
        if self.prog_stats.is_none() {
            return;
        }
        for (name, p) in self.ebpf.programs() {
            if let Ok(info) = p.info()
                && info.run_count() > 0
            {
                eprintln!("tracer: program {name}: runs={} run_ns={}", info.run_count(), info.run_time().as_nanos());
            }
        }
    }

    pub(crate) fn take_ring(&mut self) -> Result<RingBuf<MapData>, LoadError> {
        let map = self.ebpf.take_map("EVENTS").ok_or(LoadError::Other("no EVENTS map".into()))?;
        RingBuf::try_from(map).map_err(|e| LoadError::Map("EVENTS", e))
    }

    pub(crate) fn stats(&self) -> Result<KernelStats, LoadError> {
        let arr: PerCpuArray<&MapData, u64> =
            PerCpuArray::try_from(self.ebpf.map("STATS").unwrap()).map_err(|e| LoadError::Map("STATS", e))?;
        let sum = |i: u32| -> Result<u64, LoadError> {
            Ok(arr.get(&i, 0).map_err(|e| LoadError::Map("STATS", e))?.iter().sum())
        };
        Ok(KernelStats {
            lost: sum(STAT_LOST)?,
            syscount_full: sum(STAT_SYSCOUNT_FULL)?,
            agg_full: sum(STAT_AGG_FULL)?,
        })
    }

    /// `AGGREGATE`: occurrences per report entry counted in the kernel (the first included).
    pub(crate) fn agg_counts(&self) -> Result<HashMap<AggKey, u64>, LoadError> {
        let map: BpfHashMap<&MapData, AggKey, u64> =
            BpfHashMap::try_from(self.ebpf.map("AGG").unwrap()).map_err(|e| LoadError::Map("AGG", e))?;
        map.iter().collect::<Result<_, _>>().map_err(|e| LoadError::Map("AGG", e))
    }

    /// Per-(auid, syscall nr) totals counted in the kernel.
    pub(crate) fn syscounts(&self) -> Result<HashMap<(u32, u32), u64>, LoadError> {
        let map: PerCpuHashMap<&MapData, SyscountKey, u64> =
            PerCpuHashMap::try_from(self.ebpf.map("SYSCOUNT").unwrap()).map_err(|e| LoadError::Map("SYSCOUNT", e))?;
        let mut out = HashMap::new();
        for item in &map {
            let (k, v) = item.map_err(|e| LoadError::Map("SYSCOUNT", e))?;
            *out.entry((k.auid, k.nr)).or_insert(0) += v.iter().sum::<u64>();
        }
        if let Some(auid) = self.auid {
            let one: PerCpuArray<&MapData, u64> = PerCpuArray::try_from(self.ebpf.map("SYSCOUNT_ONE").unwrap())
                .map_err(|e| LoadError::Map("SYSCOUNT_ONE", e))?;
            for nr in 0..SYSCOUNT_NR_MAX {
                let n: u64 = one.get(&nr, 0).map_err(|e| LoadError::Map("SYSCOUNT_ONE", e))?.iter().sum();
                if n > 0 {
                    *out.entry((auid, nr)).or_insert(0) += n;
                }
            }
        }
        Ok(out)
    }
}
