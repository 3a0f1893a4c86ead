//! Every system call of traced processes counted per (auid, nr) in the kernel, so
//! `tracer report` gets auditloginfo's "System calls made" without an event per call.

use aya_ebpf::{macros::tracepoint, programs::TracePointContext};
use tracer_common::{
    config::ENABLE_SYSCOUNT,
    event::AUID_UNSET,
    syscount::{STAT_SYSCOUNT_FULL, SyscountKey},
};

use super::current_if_traced;
use crate::{
    kernel::loginuid,
    maps::{SYSCOUNT, stat_inc},
};

/// `raw_syscalls:sys_enter`: `long id` at offset 8.
#[tracepoint]
pub fn raw_sys_enter(ctx: TracePointContext) -> u32 {
    let Some(cur) = current_if_traced(ENABLE_SYSCOUNT) else {
        return 0;
    };
    let nr = unsafe { ctx.read_at::<i64>(8) }.unwrap_or(-1);
    if nr < 0 {
        return 0;
    }
    let key = SyscountKey { auid: loginuid(cur.task).unwrap_or(AUID_UNSET), nr: nr as u32 };
    match SYSCOUNT.get_ptr_mut(&key) {
        Some(n) => unsafe { *n += 1 },
        None => {
            if SYSCOUNT.insert(&key, &1, 0).is_err() {
                stat_inc(STAT_SYSCOUNT_FULL);
            }
        }
    }
    0
}
