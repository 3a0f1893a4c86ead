//! exec: `sched_process_exec` for successes (argv read from the new mm, so it is complete
//! even if the caller's pages were never faulted in), syscall exit for failures.

use core::ffi::c_void;

use aya_ebpf::{helpers::generated::bpf_loop, macros::tracepoint, programs::TracePointContext};
use tracer_common::{
    config::ENABLE_EXEC,
    event::{EventKind, F_ARGV_TRUNCATED},
    exec::{ARGV_MAX, ExecBody, FAILED_ARGS_MAX},
};

use super::{
    Syscall, current_if, current_if_traced,
    nr::{NR_EXECVE, NR_EXECVEAT},
};
use crate::{
    kernel::{Kptr, conf, current_regs, load, off, read},
    record::{Rec, entry_only},
};

/// Failed execs only, at syscall exit: the caller's image is still there, so the filename
/// and argv it passed are read from its memory.
#[inline(always)]
pub(crate) fn on_failed(call: Syscall) {
    let _ = try_failed(call);
}

#[inline(always)]
fn try_failed(call: Syscall) -> Result<(), i64> {
    let cur = current_if(ENABLE_EXEC, call.rules).ok_or(-1i64)?;
    // execve(filename, argv, envp); execveat(dfd, filename, argv, envp, flags)
    let (filename, argv) =
        if call.nr == NR_EXECVEAT { (call.args[1], call.args[2]) } else { (call.args[0], call.args[1]) };
    let mut rec = Rec::new::<ExecBody>().ok_or(-1i64)?;
    rec.fill(EventKind::Exec, &cur, call.nr, call.ret, false);
    rec.set_args(call.args);
    let filename_len = rec.push_user_str(filename);
    let cwd_len = exec_cwd(&mut rec, cur.task);
    let mut walk = ArgWalk { argv, start: rec.off(), done: 0, cut: 0, count: 0 };
    // One verified callback per argument instead of a loop the verifier unrolls.
    // SAFETY: push_arg is the callback bpf_loop expects and ctx is our live &mut ArgWalk; bpf_loop calls it
    // synchronously.
    unsafe { bpf_loop(FAILED_ARGS_MAX, push_arg as *mut c_void, (&mut walk as *mut ArgWalk).cast(), 0) };
    if walk.done == 0 || walk.cut != 0 {
        rec.header().flags |= F_ARGV_TRUNCATED;
    }
    let argv_len = rec.off() - walk.start;
    // Arguments past the space are still counted: argc is known when the NULL was reached.
    let argc = (walk.done != 0).then_some(walk.count);
    if call.rules {
        rec.push_rules();
    }
    submit(rec, filename_len, cwd_len, argv_len, argc);
    Ok(())
}

/// The working directory, except in a report's record (`entry_only`: no part of its entry).
#[inline(always)]
fn exec_cwd(rec: &mut Rec, task: Kptr) -> u16 {
    if entry_only() { 0 } else { rec.push_cwd(task).unwrap_or(0) }
}

#[inline(always)]
fn submit(mut rec: Rec, filename_len: u16, cwd_len: u16, argv_len: u32, argc: Option<u32>) {
    let body = rec.body::<ExecBody>();
    body.filename_len = filename_len;
    body.cwd_len = cwd_len;
    body.argv_len = argv_len;
    body.argc = argc.unwrap_or(0);
    body.argc_known = u32::from(argc.is_some());
    rec.submit();
}

#[repr(C)]
struct ArgWalk {
    argv: u64,
    /// Record offset where argv began.
    start: u32,
    /// 1 once argv's terminating NULL was reached.
    done: u32,
    /// 1 when an argument was cut (PATH_MAX bytes or more) or could not be read.
    cut: u32,
    /// Arguments seen (copied or not).
    count: u32,
}

/// Appends argv[i] (NUL included) to the record; returns 1 to stop.
#[inline(never)]
extern "C" fn push_arg(i: u64, ctx: *mut c_void) -> i64 {
    // SAFETY: bpf_loop passes back the &mut ArgWalk try_failed gave it, alive for the whole loop.
    let w = unsafe { &mut *(ctx as *mut ArgWalk) };
    let Some(mut rec) = Rec::resume() else {
        return 1;
    };
    let p = read_user_u64(w.argv + 8 * i);
    if p == 0 {
        w.done = 1;
        return 1;
    }
    w.count += 1;
    if rec.off().wrapping_sub(w.start) >= (ARGV_MAX - tracer_common::event::PATH_MAX) as u32 {
        // No room: counted, not copied (the walk goes on to the NULL for argc).
        w.cut = 1;
        return 0;
    }
    let n = rec.push_user_arg(p);
    if n == 0 || n >= tracer_common::event::PATH_MAX as u32 {
        w.cut = 1;
    }
    0
}

#[inline(always)]
fn read_user_u64(addr: u64) -> u64 {
    // SAFETY: the helper copies from any user address (a bad one is an error, mapped to 0).
    unsafe { aya_ebpf::helpers::bpf_probe_read_user(addr as *const u64).unwrap_or(0) }
}

/// A successful exec a rule selected, at its syscall exit (`trace --rules`): the new image is
/// in place, so argv comes from its mm and the credentials are the post-exec ones audit
/// evaluates; the filename is the new executable (the exe path the record carries).
#[inline(always)]
pub(crate) fn on_success_exit(call: Syscall, compat: bool) {
    let _ = try_success_exit(call, compat);
}

#[inline(always)]
fn try_success_exit(call: Syscall, compat: bool) -> Result<(), i64> {
    let cur = current_if(ENABLE_EXEC, true).ok_or(-1i64)?;
    let mut rec = Rec::new::<ExecBody>().ok_or(-1i64)?;
    rec.fill(EventKind::Exec, &cur, call.nr, 0, true);
    rec.set_args(call.args);
    if compat {
        rec.header().flags |= tracer_common::event::F_COMPAT;
    }
    let cwd_len = rec.push_cwd(cur.task).unwrap_or(0);
    let argv_len = push_mm_argv(&mut rec, cur.task)?;
    let regs = current_regs();
    let argc = read::<u64>(regs, off!(regs_sp)).ok().map(read_user_u64).and_then(|n| u32::try_from(n).ok());
    rec.push_rules();
    submit(rec, 0, cwd_len, argv_len, argc);
    Ok(())
}

/// The current image's argv (mm arg_start..arg_end), cut at `ARGV_MAX`.
#[inline(always)]
fn push_mm_argv(rec: &mut Rec, task: Kptr) -> Result<u32, i64> {
    let mm = crate::kernel::read_ptr(task, off!(task_mm))?;
    let start: u64 = read(mm, off!(mm_arg_start))?;
    let end: u64 = read(mm, off!(mm_arg_end))?;
    let mut len = end.saturating_sub(start);
    if len > ARGV_MAX as u64 {
        len = ARGV_MAX as u64;
        rec.header().flags |= F_ARGV_TRUNCATED;
    }
    Ok(rec.push_user(start, len as u32))
}

#[tracepoint]
pub(crate) fn sched_process_exec(ctx: TracePointContext) -> u32 {
    let _ = try_sched_exec(&ctx);
    0
}

#[inline(always)]
fn try_sched_exec(ctx: &TracePointContext) -> Result<(), i64> {
    let cur = current_if_traced(ENABLE_EXEC).ok_or(-1i64)?;
    // execve or execveat: the saved orig_ax (the other registers were reset for the new
    // image, so there are no arguments to report).
    let regs = current_regs();
    let nr = load::<i64>(regs, off!(regs_orig_ax)).map(|n| n as u32).unwrap_or(NR_EXECVE);
    let mut rec = Rec::new::<ExecBody>().ok_or(-1i64)?;
    rec.fill(EventKind::Exec, &cur, nr, 0, true);
    // SAFETY: the offset comes from the tracepoint's tracefs format (read at load); read_at uses
    // bpf_probe_read, which fails rather than faults.
    let loc: u32 = unsafe { ctx.read_at::<u32>(conf!(exec_filename_off) as usize) }?;
    let filename = (ctx_ptr(ctx) as usize + (loc & 0xFFFF) as usize) as Kptr;
    let filename_len = rec.push_kernel_str(filename);
    let cwd_len = exec_cwd(&mut rec, cur.task);
    let argv_len = push_mm_argv(&mut rec, cur.task)?;
    // The new image's stack starts with argc (set up by the binary loader before this
    // tracepoint).
    let argc = read::<u64>(regs, off!(regs_sp)).ok().map(read_user_u64).and_then(|n| u32::try_from(n).ok());
    submit(rec, filename_len, cwd_len, argv_len, argc);
    Ok(())
}

#[inline(always)]
fn ctx_ptr(ctx: &TracePointContext) -> *const u8 {
    use aya_ebpf::EbpfContext;
    ctx.as_ptr() as *const u8
}
