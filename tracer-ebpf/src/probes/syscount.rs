//! Every system call of traced processes counted per (auid, nr) in the kernel, so
//! `tracer report` gets auditloginfo's "System calls made" without an event per call.

use tracer_common::{
    config::ENABLE_SYSCOUNT,
    event::AUID_UNSET,
    syscount::{STAT_SYSCOUNT_FULL, SYSCOUNT_COMPAT, SyscountKey},
};

use super::current_if_traced;
use crate::{
    kernel::loginuid,
    maps::{SYSCOUNT, stat_inc},
};

/// Called from `raw_sys_enter` for every system call while counting is on.
#[inline(always)]
pub fn count(nr: u32, compat: bool) {
    let Some(cur) = current_if_traced(ENABLE_SYSCOUNT) else {
        return;
    };
    let nr = if compat { nr | SYSCOUNT_COMPAT } else { nr };
    let key = SyscountKey { auid: loginuid(cur.task).unwrap_or(AUID_UNSET), nr };
    match SYSCOUNT.get_ptr_mut(&key) {
        Some(n) => unsafe { *n += 1 },
        None => {
            if SYSCOUNT.insert(&key, &1, 0).is_err() {
                stat_inc(STAT_SYSCOUNT_FULL);
            }
        }
    }
}
