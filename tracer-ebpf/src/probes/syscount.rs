//! Every system call of traced processes counted per (auid, nr) in the kernel, so
//! `tracer report` gets auditloginfo's "System calls made" without an event per call.

use aya_ebpf::helpers::{bpf_get_current_pid_tgid, bpf_get_current_uid_gid};
use tracer_common::{
    config::{ENABLE_SYSCOUNT, FILTER_AUID, FILTER_UID},
    event::AUID_UNSET,
    syscount::{STAT_SYSCOUNT_FULL, SYSCOUNT_COMPAT, SYSCOUNT_NR_MAX, SyscountKey},
};

use crate::{
    kernel::{conf, current_task, loginuid, traced},
    maps::{SYSCOUNT, SYSCOUNT_ONE, stat_inc},
};

/// Called at syscall exit for every system call while counting is on, like audit, whose
/// rules are evaluated at exit (the write that sets the loginuid counts for the new one);
/// exit and exit_group, which never return, are counted by `sched_process_exit`.
#[inline(always)]
pub(crate) fn count(nr: u32, compat: bool) {
    if conf!(enabled) & ENABLE_SYSCOUNT == 0 {
        return;
    }
    // This runs on every syscall: the uid helper (a user-namespace mapping) only when the
    // uid filter needs it.
    let task = current_task();
    let uid_gid = if conf!(filters) & FILTER_UID != 0 { bpf_get_current_uid_gid() } else { 0 };
    if !traced(task, bpf_get_current_pid_tgid(), uid_gid) {
        return;
    }
    // One login UID asked for (--auid): the filter already matched it, so a per-CPU array
    // indexed by number does, without a hash lookup on every system call.
    if conf!(filters) & FILTER_AUID != 0
        && !compat
        && nr < SYSCOUNT_NR_MAX
        && let Some(n) = SYSCOUNT_ONE.get_ptr_mut(nr)
    {
        // SAFETY: get_ptr_mut returned this CPU's slot of a per-CPU array: valid, aligned, not shared with
        // another CPU.
        unsafe { *n += 1 };
        return;
    }
    let nr = if compat { nr | SYSCOUNT_COMPAT } else { nr };
    let key = SyscountKey { auid: loginuid(task).unwrap_or(AUID_UNSET), nr };
    match SYSCOUNT.get_ptr_mut(key) {
        // SAFETY: as above, for the per-CPU hash's value.
        Some(n) => unsafe { *n += 1 },
        None => {
            if SYSCOUNT.insert(key, 1, 0).is_err() {
                stat_inc(STAT_SYSCOUNT_FULL);
            }
        }
    }
}
