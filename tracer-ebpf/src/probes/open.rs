//! open, openat, openat2, creat: arguments stashed per thread at entry, one record at exit
//! with the result. Relative names carry the host path of their base directory.

use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, bpf_get_current_uid_gid},
    macros::tracepoint,
    programs::TracePointContext,
};
use tracer_common::{
    config::ENABLE_OPEN,
    event::{EventKind, F_BASE_UNKNOWN},
    open::OpenBody,
    syscount::STAT_STASH_FULL,
};

use super::{current_if_traced, sys_arg, sys_ret};
use crate::{
    kernel::current_task,
    maps::{OPEN_ARGS, stat_inc},
    record::Rec,
};

const AT_FDCWD: i64 = -100;
const NR_OPEN: u32 = 2;
const NR_CREAT: u32 = 85;
const NR_OPENAT: u32 = 257;
const NR_OPENAT2: u32 = 437;
/// creat(2) is open(O_CREAT | O_WRONLY | O_TRUNC).
const CREAT_FLAGS: u64 = 0o100 | 0o1 | 0o1000;

#[repr(C)]
#[derive(Clone, Copy)]
pub struct OpenArgs {
    filename: u64,
    dfd: i64,
    flags: u64,
    mode: u64,
    nr: u32,
    _pad: u32,
}

#[inline(always)]
fn stash(filename: u64, dfd: i64, flags: u64, mode: u64, nr: u32) {
    let Some(cur) = current_if_traced(ENABLE_OPEN) else {
        return;
    };
    let args = OpenArgs { filename, dfd, flags, mode, nr, _pad: 0 };
    if OPEN_ARGS.insert(cur.pid_tgid, args, 0).is_err() {
        stat_inc(STAT_STASH_FULL);
    }
}

#[tracepoint]
pub fn sys_enter_open(ctx: TracePointContext) -> u32 {
    stash(sys_arg(&ctx, 0), AT_FDCWD, sys_arg(&ctx, 1), sys_arg(&ctx, 2), NR_OPEN);
    0
}

#[tracepoint]
pub fn sys_enter_creat(ctx: TracePointContext) -> u32 {
    stash(sys_arg(&ctx, 0), AT_FDCWD, CREAT_FLAGS, sys_arg(&ctx, 1), NR_CREAT);
    0
}

#[tracepoint]
pub fn sys_enter_openat(ctx: TracePointContext) -> u32 {
    let dfd = sys_arg(&ctx, 0) as i32 as i64;
    stash(sys_arg(&ctx, 1), dfd, sys_arg(&ctx, 2), sys_arg(&ctx, 3), NR_OPENAT);
    0
}

#[tracepoint]
pub fn sys_enter_openat2(ctx: TracePointContext) -> u32 {
    let dfd = sys_arg(&ctx, 0) as i32 as i64;
    // struct open_how { u64 flags; u64 mode; u64 resolve; }
    let how = sys_arg(&ctx, 2);
    let flags = unsafe { aya_ebpf::helpers::bpf_probe_read_user(how as *const u64) }.unwrap_or(0);
    let mode =
        unsafe { aya_ebpf::helpers::bpf_probe_read_user((how + 8) as *const u64) }.unwrap_or(0);
    stash(sys_arg(&ctx, 1), dfd, flags, mode, NR_OPENAT2);
    0
}

#[tracepoint]
pub fn sys_exit_open(ctx: TracePointContext) -> u32 {
    let _ = try_exit(&ctx);
    0
}

#[tracepoint]
pub fn sys_exit_creat(ctx: TracePointContext) -> u32 {
    let _ = try_exit(&ctx);
    0
}

#[tracepoint]
pub fn sys_exit_openat(ctx: TracePointContext) -> u32 {
    let _ = try_exit(&ctx);
    0
}

#[tracepoint]
pub fn sys_exit_openat2(ctx: TracePointContext) -> u32 {
    let _ = try_exit(&ctx);
    0
}

#[inline(always)]
fn try_exit(ctx: &TracePointContext) -> Result<(), i64> {
    let pid_tgid = bpf_get_current_pid_tgid();
    let args = unsafe { OPEN_ARGS.get(pid_tgid) }.copied().ok_or(-1i64)?;
    let _ = OPEN_ARGS.remove(pid_tgid);
    let ret = sys_ret(ctx);
    let task = current_task();
    let mut rec = Rec::new::<OpenBody>().ok_or(-1i64)?;
    rec.fill(EventKind::Open, task, pid_tgid, bpf_get_current_uid_gid(), args.nr, ret, false);
    let at = rec.off();
    let path_len = rec.push_user_str(args.filename);
    let mut base_len = 0;
    if path_len == 0 || rec.byte_at(at) != b'/' {
        let base = if args.dfd == AT_FDCWD {
            rec.push_cwd(task)
        } else {
            rec.push_fd_path(task, args.dfd as i32)
        };
        match base {
            Ok(len) => base_len = len,
            Err(_) => rec.header().flags |= F_BASE_UNKNOWN,
        }
    }
    let body = rec.body::<OpenBody>();
    body.flags = args.flags as u32;
    body.mode = args.mode as u32;
    body.dfd = args.dfd as i32;
    body.path_len = path_len;
    body.base_len = base_len;
    rec.submit();
    Ok(())
}
