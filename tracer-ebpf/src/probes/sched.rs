//! Process lifetime: fork adds children of followed processes to `TRACED`; exit forgets
//! them and the exe-sent mark so a reused pid starts clean.

use core::intrinsics::{AtomicOrdering, atomic_xadd};

use aya_ebpf::{helpers::bpf_get_current_pid_tgid, macros::tracepoint, programs::TracePointContext};
use tracer_common::config::{ENABLE_SYSCOUNT, FILTER_PID, FOLLOW_TRACER_CHILDREN};

use super::{
    nr::{NR_EXIT, NR_EXIT_GROUP, NR_IA32_EXIT, NR_IA32_EXIT_GROUP},
    syscount,
};
use crate::{
    kernel::{compat, conf, current_regs, load, off},
    maps::{EXE_GEN, EXE_SENT, TRACED},
};

#[tracepoint]
pub(crate) fn sched_process_fork(ctx: TracePointContext) -> u32 {
    let filters = conf!(filters);
    if filters & FILTER_PID == 0 {
        return 0;
    }
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    let follow =
        TRACED.get_ptr(tgid).is_some() || (filters & FOLLOW_TRACER_CHILDREN != 0 && tgid == conf!(tracer_tgid));
    if !follow {
        return 0;
    }
    // SAFETY: the offset comes from the tracepoint's tracefs format (read at load); read_at uses
    // bpf_probe_read, which fails rather than faults.
    if let Ok(child) = unsafe { ctx.read_at::<i32>(conf!(fork_child_pid_off) as usize) } {
        let _ = TRACED.insert(child as u32, 1, 0);
    }
    0
}

#[tracepoint]
pub(crate) fn sched_process_exit(_ctx: TracePointContext) -> u32 {
    // exit and exit_group never reach syscall exit: count the one this task is in.
    if conf!(enabled) & ENABLE_SYSCOUNT != 0
        && let Ok(nr) = load::<i64>(current_regs(), off!(regs_orig_ax))
    {
        let nr = nr as u32;
        if compat() {
            if nr == NR_IA32_EXIT || nr == NR_IA32_EXIT_GROUP {
                syscount::count(nr, true);
            }
        } else if nr == NR_EXIT || nr == NR_EXIT_GROUP {
            syscount::count(nr, false);
        }
    }
    // Before TRACED forgets the task.
    super::exit::on_exit();
    let pid_tgid = bpf_get_current_pid_tgid();
    let tid = pid_tgid as u32;
    let tgid = (pid_tgid >> 32) as u32;
    if conf!(filters) & FILTER_PID != 0 && tid != tgid {
        let _ = TRACED.remove(tid);
    }
    if tid == tgid {
        let _ = EXE_SENT.remove(tgid);
        if let Some(g) = EXE_GEN.get_ptr_mut(0) {
            // SAFETY: EXE_GEN's only entry, a u32 in the map; every CPU changes it by atomic adds only.
            unsafe { atomic_xadd::<u32, u32, { AtomicOrdering::Relaxed }>(g, 1) };
        }
    }
    0
}
