//! One module per hook family. System calls are watched through the two raw syscall
//! tracepoints (`syscalls.rs`): one cheap hook each way instead of a perf-buffer tracepoint
//! per syscall, and the arguments come from the pt_regs at exit, so nothing is stashed
//! between entry and exit.

pub(crate) mod connect;
pub(crate) mod dns;
pub(crate) mod enforce;
pub(crate) mod entry;
pub(crate) mod exec;
pub(crate) mod exit;
pub(crate) mod fexit;
pub(crate) mod listen;
pub(crate) mod nr;
pub(crate) mod open;
pub(crate) mod outcome;
pub(crate) mod protect;
pub(crate) mod rules;
pub(crate) mod sched;
pub(crate) mod sshlog;
pub(crate) mod sshpeer;
pub(crate) mod syscalls;
pub(crate) mod syscount;

use aya_ebpf::helpers::{bpf_get_current_pid_tgid, bpf_get_current_uid_gid};

use crate::kernel::{Current, conf, current_task, traced};

/// The current task's identity, when it passes the filters and `family` is enabled.
#[inline(always)]
pub(crate) fn current_if_traced(family: u32) -> Option<Current> {
    current_if(family, false)
}

/// `current_if_traced`, or for a call the rules selected (`rules`), whatever the family bit.
#[inline(always)]
pub(crate) fn current_if(family: u32, rules: bool) -> Option<Current> {
    let family = if rules { tracer_common::config::ENABLE_RULES } else { family };
    if conf!(enabled) & family == 0 {
        return None;
    }
    let task = current_task();
    let pid_tgid = bpf_get_current_pid_tgid();
    let uid_gid = bpf_get_current_uid_gid();
    traced(task, pid_tgid, uid_gid).then_some(Current { task, pid_tgid, uid_gid })
}

/// A system call as the raw tracepoints see it: number, first four arguments, result.
#[derive(Clone, Copy)]
pub(crate) struct Syscall {
    pub nr: u32,
    pub args: [u64; 4],
    /// The saved user registers (further arguments are read from them where needed).
    pub regs: crate::kernel::Kptr,
    pub ret: i64,
    /// Selected by `trace --rules` (`probes/rules.rs`): the record gets the candidate rules'
    /// trailer and is built whatever the family's own enable bit says.
    pub rules: bool,
}
