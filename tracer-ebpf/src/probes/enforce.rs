//! `tracer protect --enforce`: BPF LSM programs that deny with EPERM what the alert mode
//! reports, on the same maps and the same rules: opening a protected key from an executable
//! not allowed (any access mode), and connecting to an agent's socket from a uid or login uid
//! other than its owner's. A denied thread is left in `DENIED` so the syscall's exit reports
//! the denial as an ordinary open or connect event with ret -EPERM.

use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, bpf_get_current_uid_gid},
    macros::lsm,
    programs::LsmContext,
};

use tracer_common::protect::InodeKey;

use super::protect::{bound_file, protected_for};
use crate::{
    kernel::{Kptr, conf, current_task, loginuid},
    maps::{AGENT_OWNERS, DENIED},
};

const EPERM: i32 = 1;

/// Denies the call and leaves the thread in `DENIED` with what it reached (an agent's
/// socket file; zero for an open), which the syscall's exit reports.
#[inline(always)]
fn deny(reached: InodeKey) -> i32 {
    let tid = bpf_get_current_pid_tgid() as u32;
    let _ = DENIED.insert(tid, reached, 0);
    -EPERM
}

/// The tracer itself (its scan reads key headers) is never denied.
#[inline(always)]
fn is_tracer() -> bool {
    (bpf_get_current_pid_tgid() >> 32) as u32 == conf!(tracer_tgid)
}

#[lsm(hook = "file_open")]
pub(crate) fn lsm_file_open(ctx: LsmContext) -> i32 {
    // file_open(struct file *file), then the verdict of the programs before this one.
    let prev: i32 = ctx.arg(1);
    if prev != 0 {
        return prev;
    }
    let file: Kptr = ctx.arg(0);
    if is_tracer() || !protected_for(current_task(), file) {
        return 0;
    }
    deny(InodeKey::default())
}

#[lsm(hook = "unix_stream_connect")]
pub(crate) fn lsm_unix_connect(ctx: LsmContext) -> i32 {
    // unix_stream_connect(struct sock *sock, struct sock *other, struct sock *newsk), verdict.
    let prev: i32 = ctx.arg(3);
    if prev != 0 {
        return prev;
    }
    let other: Kptr = ctx.arg(1);
    let Ok(key) = bound_file(other) else {
        return 0;
    };
    // SAFETY: the value is a plain u64 copied out at once; the map is only written by user space.
    let Some(owner) = (unsafe { AGENT_OWNERS.get(key) }).copied() else {
        return 0;
    };
    if is_tracer() {
        return 0;
    }
    let uid = bpf_get_current_uid_gid() as u32;
    let auid = loginuid(current_task()).unwrap_or(u32::MAX);
    if uid == (owner >> 32) as u32 && auid == owner as u32 {
        return 0;
    }
    deny(key)
}
