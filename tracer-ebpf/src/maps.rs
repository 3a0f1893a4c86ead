//! Every map the programs share, and the load-time globals.

use aya_ebpf::{
    bindings::BPF_F_NO_PREALLOC,
    macros::map,
    maps::{Array, HashMap, LruHashMap, PerCpuArray, PerCpuHashMap, ProgramArray, RingBuf},
};
use tracer_common::{
    agg::{AGG_MAX, AggKey},
    config::{Config, Offsets, TRACED_MAX},
    event::PATH_MAX,
    outcome::{PENDING_MAX, PendingConnect},
    protect::{AGENTS_MAX, ALLOWED_MAX, DENIED_MAX, InodeKey, PROTECTED_MAX},
    rules::{KRule, NameSpec, NrKey, RULE_NRS_MAX, RULES_MAX, RuleBits, RuleNr},
    sshlog::{ExeKey, SSH_SOCKS_MAX, SSHD_EXES_MAX, SockKey},
    syscall::NameRec,
    syscount::{STAT_MAX, SYSCOUNT_MAX, SyscountKey},
};

/// Bytes of one record under assembly (`record.rs`): two 64 KiB pieces and the fixed part.
pub(crate) const REC_CAP: usize = 2 * 0x10000 + 4096;

/// Cursors live in the map value, not in registers, and are accessed volatile: the verifier
/// does not track map contents, so loop iterations that advanced them by different amounts
/// reach the same state and are pruned instead of multiplying paths.
#[repr(C)]
pub(crate) struct Scratch {
    pub off: u32,
    pub pos: u32,
    /// Bytes this CPU put in the ring since it last woke the reader (`Rec::submit`).
    pub unsent: u32,
    /// A process whose exe user space has, as this CPU last saw `EXE_SENT`, while `EXE_GEN`
    /// is still `exe_gen` (`Rec::exe_known`).
    pub exe_tgid: u32,
    pub exe_gen: u32,
    pub _pad: u32,
    pub rec: [u8; REC_CAP],
    pub path: [u8; 2 * PATH_MAX],
}

/// Filled by the loader (`EbpfLoader::set_global`); read with `read_volatile` so the
/// compiler cannot fold the zero initialisers.
// SAFETY: the loader finds CONFIG by this name; no other symbol has it.
#[unsafe(no_mangle)]
pub(crate) static CONFIG: Config = Config {
    tracer_tgid: 0,
    filters: 0,
    enabled: 0,
    auid: 0,
    uid: 0,
    _pad: 0,
    comm: [0; 16],
    fork_parent_pid_off: 0,
    fork_child_pid_off: 0,
    exec_filename_off: 0,
    signal_handler_off: 0,
    signal_flags_off: 0,
    wakeup_bytes: 0,
    _pad2: 0,
};

// SAFETY: the loader finds OFFSETS by this name; no other symbol has it.
#[unsafe(no_mangle)]
pub(crate) static OFFSETS: Offsets = Offsets::UNKNOWN;

/// All records, in reservation order. Size set by the loader.
#[map]
pub(crate) static EVENTS: RingBuf = RingBuf::with_byte_size(1 << 23, 0);

/// Record assembly area, one entry per CPU (entries set to the CPU count at load). A plain
/// array because per-CPU values are limited to 32 KiB. Tracepoint programs do not nest on
/// a CPU (bpf_prog_active), so one area per CPU is enough.
#[map]
pub(crate) static SCRATCH: Array<Scratch> = Array::with_max_entries(1, 0);

/// The (vfsmount, dentry) of the namespace root as last seen by a root walk that found
/// "/": later events with the same root skip the walk (the common, unchrooted case).
#[map]
pub(crate) static HOST_ROOT: Array<[u64; 2]> = Array::with_max_entries(1, 0);

/// Kernel-side counters (`STAT_*`), summed by user space.
#[map]
pub(crate) static STATS: PerCpuArray<u64> = PerCpuArray::with_max_entries(STAT_MAX, 0);

/// `raw_sys_exit`'s families (`probes/syscalls.rs`), slot = the family bit's index.
#[map]
pub(crate) static EXITS: ProgramArray = ProgramArray::with_max_entries(32, 0);

/// Processes followed by `--pid` / `-- CMD`: tgids and tids added at fork, removed at exit.
/// Not preallocated: 65 536 entries made at start cost ~2 ms of start→attached; an entry
/// is allocated once per traced fork instead.
#[map]
pub(crate) static TRACED: HashMap<u32, u32> = HashMap::with_max_entries(TRACED_MAX, BPF_F_NO_PREALLOC);

/// `--comm` values (the kernel's 16-byte comm, NUL-padded): a task passes when its comm is one.
#[map]
pub(crate) static COMMS: HashMap<[u8; 16], u32> = HashMap::with_max_entries(tracer_common::config::COMMS_MAX, 0);

/// Processes whose exe path user space already has (sent once per exec image).
#[map]
pub(crate) static EXE_SENT: LruHashMap<u32, u32> = LruHashMap::with_max_entries(16384, 0);

/// Bumped each time a process leaves `EXE_SENT` (at its exit): what a CPU remembers of
/// `EXE_SENT` (`Scratch::exe_tgid`) holds while this is unchanged.
#[map]
pub(crate) static EXE_GEN: Array<u32> = Array::with_max_entries(1, 0);

/// Syscall nr -> calls of the one login UID `--auid` selected (cheaper than the hash).
#[map]
pub(crate) static SYSCOUNT_ONE: PerCpuArray<u64> =
    PerCpuArray::with_max_entries(tracer_common::syscount::SYSCOUNT_NR_MAX, 0);

/// pid_tgid -> the number an exec was entered with (`SYSCOUNT_COMPAT` for i386), taken at
/// its exit, where the kernel has rewritten it (`probes/entry.rs`). LRU: an exec that fails
/// after `task_rename` leaves an entry that ages out.
#[map]
pub(crate) static EXEC_ENTRY: LruHashMap<u64, u32> = LruHashMap::with_max_entries(4096, 0);

/// pid_tgid -> a bit stack of the 32-bit signal frames delivered and not yet returned from
/// (1 = `sigreturn` frame, 0 = `rt_sigreturn`; a leading 1 marks the bottom).
#[map]
pub(crate) static SIGFRAMES32: LruHashMap<u64, u64> = LruHashMap::with_max_entries(4096, 0);

/// (auid, syscall nr) -> calls, for `tracer report`. Not preallocated (16 384 entries times
/// the CPUs took ~11 ms of start→attached); an entry is allocated once per new pair.
#[map]
pub(crate) static SYSCOUNT: PerCpuHashMap<SyscountKey, u64> =
    PerCpuHashMap::with_max_entries(SYSCOUNT_MAX, BPF_F_NO_PREALLOC);

/// `tracer report` (`AGGREGATE`): report entry -> its occurrences. One shared counter per
/// entry (atomic adds): a per-CPU map would allocate entries x CPUs at creation. Not
/// preallocated either: an entry is allocated once, when the entry is first seen.
#[map]
pub(crate) static AGG: HashMap<AggKey, u64> = HashMap::with_max_entries(AGG_MAX, BPF_F_NO_PREALLOC);

/// The trusted sshd executables, (inode, device) -> 1; filled by the loader.
#[map]
pub(crate) static SSHD_EXES: HashMap<ExeKey, u32> = HashMap::with_max_entries(SSHD_EXES_MAX, 0);

/// Sockets a trusted sshd accepted as root. LRU: closed connections age out; a live one is
/// refreshed by every message of its processes (a lookup), and sshd drops a connection still
/// unauthenticated after LoginGraceTime, so evicting it takes this many newer connections
/// within that time.
#[map]
pub(crate) static SSH_SOCKS: LruHashMap<SockKey, u32> = LruHashMap::with_max_entries(SSH_SOCKS_MAX, 0);

/// `tracer protect`: the private-key files, (inode, device) -> 1.
#[map]
pub(crate) static PROTECTED: HashMap<InodeKey, u32> = HashMap::with_max_entries(PROTECTED_MAX, 0);

/// `tracer protect`: executables allowed to read them, (inode, device) -> 1.
#[map]
pub(crate) static ALLOWED_EXES: HashMap<InodeKey, u32> = HashMap::with_max_entries(ALLOWED_MAX, 0);

/// `tracer protect`: the socket files agents listen on, (inode, device) -> 1.
#[map]
pub(crate) static AGENT_SOCKS: HashMap<InodeKey, u32> = HashMap::with_max_entries(AGENTS_MAX, 0);

/// `tracer protect --enforce`: agent socket -> its owner's (uid << 32 | login uid).
#[map]
pub(crate) static AGENT_OWNERS: HashMap<InodeKey, u64> = HashMap::with_max_entries(AGENTS_MAX, 0);

/// `tracer protect --enforce`: threads whose open or connect an LSM program just denied; the
/// syscall's exit reports it (with the name the call gave) and removes the entry.
#[map]
pub(crate) static DENIED: LruHashMap<u32, InodeKey> = LruHashMap::with_max_entries(DENIED_MAX, 0);

/// `trace --rules`: (ABI, syscall number) -> the rules that may select it and how to read
/// its names and permission class; filled by the loader from `tracer_rules::compile`.
#[map]
pub(crate) static RULE_NRS: HashMap<NrKey, RuleNr> = HashMap::with_max_entries(RULE_NRS_MAX, 0);

/// `trace --rules`: each rule's kernel conditions, index = rule index (file order).
#[map]
pub(crate) static RULES: Array<KRule> = Array::with_max_entries(RULES_MAX as u32, 0);

/// One call's facts as the rule walk compares them (`probes/rules.rs`), per CPU: too big
/// for the stack next to the record code, and the `bpf_loop` callback finds it here.
#[repr(C)]
pub(crate) struct RuleEval {
    /// Left operands indexed by `KF_*` code (ids, exit, success, a0..a3, arch).
    pub vals: [u32; 32],
    pub exe_ino: u64,
    pub exe_dev: u32,
    /// 1 when `exe_*` are known, 0 when the executable could not be read, 2 before it was.
    pub exe_known: u32,
    /// The call's audit permission class (`PERM_*`).
    pub perm: u32,
    /// Candidates found so far.
    pub ncand: u32,
    /// 1 when the first candidate is a decided `never`.
    pub first_never: u32,
    /// 1 when the call has names (`RuleNr::names`): without any, no user-side condition
    /// (all are about names and their objects) can hold.
    pub has_names: u32,
    /// The rules RULE_NRS names for this call.
    pub rules: RuleBits,
    /// The candidates: the record's `F_RULES` trailer.
    pub cand: RuleBits,
    /// The generic record's names (`probes/rules.rs` `name_step`): the call's arguments, where
    /// its names are, and what was pushed. Here, not on the stack: the walk callbacks below
    /// `name_step` would take the three frames past 512 bytes on 6.1.
    pub args: [u64; 4],
    pub specs: [NameSpec; 2],
    pub names: [NameRec; 2],
}

#[map]
pub(crate) static RULE_EVAL: PerCpuArray<RuleEval> = PerCpuArray::with_max_entries(1, 0);

#[inline(always)]
pub(crate) fn stat_inc(idx: u32) {
    if let Some(p) = STATS.get_ptr_mut(idx) {
        // SAFETY: get_ptr_mut returned this CPU's slot of a per-CPU array: valid, aligned, and no other
        // program runs on this CPU meanwhile.
        unsafe { *p += 1 };
    }
}

/// `tracer ci`: traced TCP connects in SYN_SENT, by `struct sock` address, until their
/// outcome (probes/outcome.rs).
#[map]
pub(crate) static PENDING_CONNECTS: LruHashMap<u64, PendingConnect> = LruHashMap::with_max_entries(PENDING_MAX, 0);
