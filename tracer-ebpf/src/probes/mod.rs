//! One module per hook family.

pub mod connect;
pub mod exec;
pub mod open;
pub mod sched;
pub mod sshlog;
pub mod syscount;

use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, bpf_get_current_uid_gid},
    programs::TracePointContext,
};

use crate::kernel::{Kptr, conf, current_task, traced};

/// The current task's identity, when it passes the filters and `family` is enabled.
pub struct Current {
    pub task: Kptr,
    pub pid_tgid: u64,
    pub uid_gid: u64,
}

#[inline(always)]
pub fn current_if_traced(family: u32) -> Option<Current> {
    if conf!(enabled) & family == 0 {
        return None;
    }
    let task = current_task();
    let pid_tgid = bpf_get_current_pid_tgid();
    let uid_gid = bpf_get_current_uid_gid();
    traced(task, pid_tgid, uid_gid).then_some(Current { task, pid_tgid, uid_gid })
}

/// Argument `i` of a `syscalls:sys_enter_*` tracepoint (8-byte slots after the nr).
#[inline(always)]
pub fn sys_arg(ctx: &TracePointContext, i: usize) -> u64 {
    unsafe { ctx.read_at::<u64>(16 + 8 * i).unwrap_or(0) }
}

/// Return value of a `syscalls:sys_exit_*` tracepoint.
#[inline(always)]
pub fn sys_ret(ctx: &TracePointContext) -> i64 {
    unsafe { ctx.read_at::<i64>(16).unwrap_or(0) }
}
