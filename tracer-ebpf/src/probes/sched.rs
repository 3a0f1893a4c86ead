//! Process lifetime: fork adds children of followed processes to `TRACED`; exit forgets
//! them and the exe-sent mark so a reused pid starts clean.

use aya_ebpf::{helpers::bpf_get_current_pid_tgid, macros::tracepoint, programs::TracePointContext};
use tracer_common::config::{FILTER_PID, FOLLOW_TRACER_CHILDREN};

use crate::{
    kernel::conf,
    maps::{EXE_SENT, TRACED},
};

#[tracepoint]
pub fn sched_process_fork(ctx: TracePointContext) -> u32 {
    let filters = conf!(filters);
    if filters & FILTER_PID == 0 {
        return 0;
    }
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    let follow = TRACED.get_ptr(tgid).is_some()
        || (filters & FOLLOW_TRACER_CHILDREN != 0 && tgid == conf!(tracer_tgid));
    if !follow {
        return 0;
    }
    if let Ok(child) = unsafe { ctx.read_at::<i32>(conf!(fork_child_pid_off) as usize) } {
        let _ = TRACED.insert(child as u32, 1, 0);
    }
    0
}

#[tracepoint]
pub fn sched_process_exit(_ctx: TracePointContext) -> u32 {
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
