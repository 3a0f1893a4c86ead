//! exec: `sched_process_exec` for successes (argv read from the new mm, so it is complete
//! even if the caller's pages were never faulted in), `sys_exit_execve*` for failures.

use core::ffi::c_void;

use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, bpf_get_current_uid_gid, generated::bpf_loop},
    macros::tracepoint,
    programs::TracePointContext,
};
use tracer_common::{
    config::ENABLE_EXEC,
    event::{EventKind, F_ARGV_TRUNCATED},
    exec::{ARGV_MAX, ExecBody, FAILED_ARGS_MAX},
    syscount::STAT_STASH_FULL,
};

use super::{current_if_traced, sys_arg, sys_ret};
use crate::{
    kernel::{Kptr, conf, current_task, off, read},
    maps::{EXEC_ARGS, stat_inc},
    record::Rec,
};

const NR_EXECVE: u32 = 59;
const NR_EXECVEAT: u32 = 322;

#[repr(C)]
#[derive(Clone, Copy)]
pub struct ExecArgs {
    filename: u64,
    argv: u64,
    nr: u32,
    _pad: u32,
}

#[tracepoint]
pub fn sys_enter_execve(ctx: TracePointContext) -> u32 {
    stash(&ctx, NR_EXECVE, 0);
    0
}

#[tracepoint]
pub fn sys_enter_execveat(ctx: TracePointContext) -> u32 {
    stash(&ctx, NR_EXECVEAT, 1);
    0
}

#[inline(always)]
fn stash(ctx: &TracePointContext, nr: u32, first: usize) {
    let Some(cur) = current_if_traced(ENABLE_EXEC) else {
        return;
    };
    let args = ExecArgs {
        filename: sys_arg(ctx, first),
        argv: sys_arg(ctx, first + 1),
        nr,
        _pad: 0,
    };
    if EXEC_ARGS.insert(cur.pid_tgid, args, 0).is_err() {
        stat_inc(STAT_STASH_FULL);
    }
}

#[tracepoint]
pub fn sys_exit_execve(ctx: TracePointContext) -> u32 {
    let _ = try_exit(&ctx);
    0
}

#[tracepoint]
pub fn sys_exit_execveat(ctx: TracePointContext) -> u32 {
    let _ = try_exit(&ctx);
    0
}

/// Failed execs only: a successful one was reported by `sched_process_exec`.
#[inline(always)]
fn try_exit(ctx: &TracePointContext) -> Result<(), i64> {
    let pid_tgid = bpf_get_current_pid_tgid();
    let args = unsafe { EXEC_ARGS.get(pid_tgid) }.copied().ok_or(-1i64)?;
    let _ = EXEC_ARGS.remove(pid_tgid);
    let ret = sys_ret(ctx);
    if ret >= 0 {
        return Ok(());
    }
    let task = current_task();
    let mut rec = Rec::new::<ExecBody>().ok_or(-1i64)?;
    rec.fill(EventKind::Exec, task, pid_tgid, bpf_get_current_uid_gid(), args.nr, ret, false);
    let filename_len = rec.push_user_str(args.filename);
    let cwd_len = rec.push_cwd(task).unwrap_or(0);
    let mut walk = ArgWalk { argv: args.argv, start: rec.off(), done: 0 };
    // One verified callback per argument instead of a loop the verifier unrolls.
    unsafe { bpf_loop(FAILED_ARGS_MAX, push_arg as *mut c_void, (&mut walk as *mut ArgWalk).cast(), 0) };
    if walk.done == 0 {
        rec.header().flags |= F_ARGV_TRUNCATED;
    }
    let argv_len = rec.off() - walk.start;
    let body = rec.body::<ExecBody>();
    body.filename_len = filename_len;
    body.cwd_len = cwd_len;
    body.argv_len = argv_len;
    rec.submit();
    Ok(())
}

#[repr(C)]
struct ArgWalk {
    argv: u64,
    /// Record offset where argv began.
    start: u32,
    /// 1 once argv's terminating NULL was reached.
    done: u32,
}

/// Appends argv[i] (NUL included) to the record; returns 1 to stop.
#[inline(never)]
extern "C" fn push_arg(i: u64, ctx: *mut c_void) -> i64 {
    let w = unsafe { &mut *(ctx as *mut ArgWalk) };
    let Some(mut rec) = Rec::resume() else {
        return 1;
    };
    let p = read_user_u64(w.argv + 8 * i);
    if p == 0 {
        w.done = 1;
        return 1;
    }
    if rec.off().wrapping_sub(w.start) >= (ARGV_MAX - tracer_common::event::PATH_MAX) as u32 {
        return 1;
    }
    rec.push_user_arg(p);
    0
}

#[inline(always)]
fn read_user_u64(addr: u64) -> u64 {
    unsafe { aya_ebpf::helpers::bpf_probe_read_user(addr as *const u64).unwrap_or(0) }
}

#[tracepoint]
pub fn sched_process_exec(ctx: TracePointContext) -> u32 {
    let _ = try_sched_exec(&ctx);
    0
}

#[inline(always)]
fn try_sched_exec(ctx: &TracePointContext) -> Result<(), i64> {
    let cur = current_if_traced(ENABLE_EXEC).ok_or(-1i64)?;
    let nr = unsafe { EXEC_ARGS.get(cur.pid_tgid) }.map(|a| a.nr).unwrap_or(NR_EXECVE);
    let mut rec = Rec::new::<ExecBody>().ok_or(-1i64)?;
    rec.fill(EventKind::Exec, cur.task, cur.pid_tgid, cur.uid_gid, nr, 0, true);
    let loc: u32 = unsafe { ctx.read_at::<u32>(conf!(exec_filename_off) as usize) }?
        as u32;
    let filename = (ctx_ptr(ctx) as usize + (loc & 0xFFFF) as usize) as Kptr;
    let filename_len = rec.push_kernel_str(filename);
    let cwd_len = rec.push_cwd(cur.task).unwrap_or(0);
    let mm = crate::kernel::read_ptr(cur.task, off!(task_mm))?;
    let start: u64 = read(mm, off!(mm_arg_start))?;
    let end: u64 = read(mm, off!(mm_arg_end))?;
    let mut len = end.saturating_sub(start);
    if len > ARGV_MAX as u64 {
        len = ARGV_MAX as u64;
        rec.header().flags |= F_ARGV_TRUNCATED;
    }
    let argv_len = rec.push_user(start, len as u32);
    let body = rec.body::<ExecBody>();
    body.filename_len = filename_len;
    body.cwd_len = cwd_len;
    body.argv_len = argv_len;
    rec.submit();
    Ok(())
}

#[inline(always)]
fn ctx_ptr(ctx: &TracePointContext) -> *const u8 {
    use aya_ebpf::EbpfContext;
    ctx.as_ptr() as *const u8
}
