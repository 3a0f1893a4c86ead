//! Process lifetime: fork adds children of followed processes to `TRACED`; exit forgets
//! them and the exe-sent mark so a reused pid starts clean.

use aya_ebpf::{
    helpers::{
        bpf_get_current_pid_tgid,
        generated::{bpf_get_current_task_btf, bpf_task_pt_regs},
    },
    macros::tracepoint,
    programs::TracePointContext,
};
use tracer_common::config::{ENABLE_SYSCOUNT, FILTER_PID, FOLLOW_TRACER_CHILDREN};

use super::{
    nr::{NR_EXIT, NR_EXIT_GROUP, NR_IA32_EXIT, NR_IA32_EXIT_GROUP},
    syscount,
};
use crate::{
    kernel::{Kptr, compat, conf, off, read},
    maps::{EXE_SENT, TRACED},
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
    if conf!(enabled) & ENABLE_SYSCOUNT != 0 {
        // SAFETY: the BTF task pointer of the current task is what bpf_task_pt_regs takes; regs is only read
        // through bpf_probe_read_kernel.
        let regs = unsafe { bpf_task_pt_regs(bpf_get_current_task_btf()) } as Kptr;
        if let Ok(nr) = read::<i64>(regs, off!(regs_orig_ax)) {
            let nr = nr as u32;
            if compat() {
                if nr == NR_IA32_EXIT || nr == NR_IA32_EXIT_GROUP {
                    syscount::count(nr, true);
                }
            } else if nr == NR_EXIT || nr == NR_EXIT_GROUP {
                syscount::count(nr, false);
            }
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
    }
    0
}
