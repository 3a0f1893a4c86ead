//! Load-time settings passed to the kernel programs as read-only globals.

pub use crate::offsets::{OFFSET_UNKNOWN, Offsets};

/// `Config::filters` bits: which in-kernel filters are active.
pub const FILTER_AUID: u32 = 1 << 0;
pub const FILTER_UID: u32 = 1 << 1;
pub const FILTER_PID: u32 = 1 << 2;
pub const FILTER_COMM: u32 = 1 << 3;
/// Children forked by the tracer itself join the traced set (`tracer trace -- CMD`).
pub const FOLLOW_TRACER_CHILDREN: u32 = 1 << 4;

/// `Config::enabled` bits: which event families are produced.
pub const ENABLE_EXEC: u32 = 1 << 0;
pub const ENABLE_OPEN: u32 = 1 << 1;
pub const ENABLE_CONNECT: u32 = 1 << 2;
/// Count every system call per (auid, nr) in the kernel; no event crosses.
pub const ENABLE_SYSCOUNT: u32 = 1 << 3;
/// Capture what sshd writes to syslog or stderr (the guard's failure source).
pub const ENABLE_SSHLOG: u32 = 1 << 4;
/// Records carry only what reports use (ids, login, comm, root, the call's details): no
/// ppid, creds, mount namespace or exe, four fewer pointer chases per event.
pub const LEAN_RECORDS: u32 = 1 << 5;
/// Opens carry the working directory even for absolute names (audit's CWD record).
pub const WANT_CWD: u32 = 1 << 6;
/// `tracer protect`: opens are reported only when they read a protected file (`PROTECTED`)
/// from an executable not in `ALLOWED_EXES`, connects only when they reach an agent socket
/// (`AGENT_SOCKS`); every other open and connect costs a lookup, not an event.
pub const PROTECT_ONLY: u32 = 1 << 7;
/// `trace --rules`: every syscall exit is looked up in `RULE_NRS` and evaluated against
/// `RULES` (`tracer_common::rules`); only calls a rule may select become records.
pub const ENABLE_RULES: u32 = 1 << 8;
/// `tracer report`: a record whose report entry the kernel has seen is counted in `AGG`
/// instead of sent (`tracer_common::agg`).
pub const AGGREGATE: u32 = 1 << 9;
/// Report each traced process's end with its exit status (`tracer ci`).
pub const ENABLE_EXIT: u32 = 1 << 10;
/// Follow traced TCP connects to their end: established or failed (`tracer ci`).
pub const ENABLE_CONNECT_OUTCOME: u32 = 1 << 11;
/// DNS messages to and from port 53 (`tracer ci`); needs the raw syscall-exit hook.
pub const ENABLE_DNS: u32 = 1 << 12;
/// Successful listen(2) calls on IPv4/IPv6 sockets (`tracer ci`); raw syscall-exit hook.
pub const ENABLE_LISTEN: u32 = 1 << 13;

/// Most `--comm` values (entries of the COMMS map).
pub const COMMS_MAX: u32 = 64;

/// Most processes followed by `--pid` / `-- CMD` (entries of the TRACED map).
pub const TRACED_MAX: u32 = 65536;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// The tracer's own tgid: never reported.
    pub tracer_tgid: u32,
    pub filters: u32,
    pub enabled: u32,
    pub auid: u32,
    pub uid: u32,
    pub _pad: u32,
    /// Unused: `--comm` values are in the COMMS map (kept so the layout does not move).
    pub comm: [u8; 16],
    /// Tracepoint field offsets read from tracefs `format` files at load time.
    pub fork_parent_pid_off: u32,
    pub fork_child_pid_off: u32,
    pub exec_filename_off: u32,
    /// `signal:signal_deliver`'s sa_handler and sa_flags (32-bit sigreturn kinds).
    pub signal_handler_off: u32,
    pub signal_flags_off: u32,
    /// Wake the reader only once a CPU has put this many bytes in the ring since it last
    /// woke it (0: on every record); the loader gives each CPU its share of the batch.
    /// Batching wakeups keeps a busy traced program from paying a context switch per event;
    /// the reader also drains on a short timer, so nothing waits long.
    pub wakeup_bytes: u32,
    pub _pad2: u32,
}

// SAFETY: Config is #[repr(C)], only u32 and u8 fields with explicit padding: every bit
// pattern is a valid value and there are no implicit padding bytes.
#[cfg(feature = "user")]
unsafe impl aya::Pod for Config {}
