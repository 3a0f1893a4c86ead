//! The number a syscall was entered with, where the kernel rewrites the saved one before
//! the exit hook reads it: audit records the entry number, so the counts must too. Neither
//! case needs a `sys_enter` hook (which every syscall would pay for):
//!
//! - `rt_sigreturn` restores the interrupted registers and sets `orig_ax` to -1. At exit a
//!   64-bit -1 can only be `rt_sigreturn`. A 32-bit one is `sigreturn` or `rt_sigreturn`,
//!   as the frame the kernel built says: `signal:signal_deliver` (once per handled signal)
//!   pushes the kind for 32-bit handlers (`SA_IA32_ABI`: rt if `SA_SIGINFO`) on a per-thread
//!   bit stack, and the -1 exit pops it (nested handlers return in reverse order; one left by
//!   a handler that jumped out sits below and is never popped).
//! - A successful exec rewrites `orig_ax` to the new image's `execve` (64-bit 59, i386 11)
//!   whether it was entered as `execveat` or from the other ABI. `task:task_rename` fires in
//!   every exec before that (`begin_new_exec` sets the comm before `SET_PERSONALITY`) and
//!   keeps the entry number; the successful exec's exit takes it.

use aya_ebpf::{helpers::bpf_get_current_pid_tgid, macros::tracepoint, programs::TracePointContext};
use tracer_common::{
    config::{ENABLE_RULES, ENABLE_SYSCOUNT},
    syscount::SYSCOUNT_COMPAT,
};

use super::nr::{
    NR_EXECVE, NR_EXECVEAT, NR_IA32_EXECVE, NR_IA32_EXECVEAT, NR_IA32_RT_SIGRETURN, NR_IA32_SIGRETURN, NR_RT_SIGRETURN,
};
use crate::{
    kernel::{compat, conf, current_regs, load, off},
    maps::{EXEC_ENTRY, SIGFRAMES32},
};

/// x86 `SA_IA32_ABI`: the handler was installed by a 32-bit sigaction (an ia32 frame).
const SA_IA32_ABI: u64 = 0x0200_0000;
const SA_SIGINFO: u64 = 4;

/// Every exec passes here (and `prctl(PR_SET_NAME)`, which is no exec: nothing kept).
#[tracepoint]
pub(crate) fn entry_exec(_ctx: TracePointContext) -> u32 {
    if conf!(enabled) & (ENABLE_SYSCOUNT | ENABLE_RULES) == 0 {
        return 0;
    }
    let regs = current_regs();
    let Ok(nr) = load::<i64>(regs, off!(regs_orig_ax)) else {
        return 0;
    };
    let nr = nr as u32;
    let c = compat();
    let exec = if c { nr == NR_IA32_EXECVE || nr == NR_IA32_EXECVEAT } else { nr == NR_EXECVE || nr == NR_EXECVEAT };
    if exec {
        let v = if c { nr | SYSCOUNT_COMPAT } else { nr };
        let _ = EXEC_ENTRY.insert(bpf_get_current_pid_tgid(), v, 0);
    }
    0
}

/// A handled signal about to get its frame: for a 32-bit handler, push rt (0) or not (1).
#[tracepoint]
pub(crate) fn entry_signal(ctx: TracePointContext) -> u32 {
    if conf!(enabled) & ENABLE_SYSCOUNT == 0 {
        return 0;
    }
    // SAFETY: the offsets come from the tracepoint's tracefs format (read at load); read_at uses
    // bpf_probe_read, which fails rather than faults.
    let read = |off: u32| unsafe { ctx.read_at::<u64>(off as usize) };
    let (Ok(handler), Ok(flags)) = (read(conf!(signal_handler_off)), read(conf!(signal_flags_off))) else {
        return 0;
    };
    // SIG_DFL (0) and SIG_IGN (1) build no frame.
    if handler <= 1 || flags & SA_IA32_ABI == 0 {
        return 0;
    }
    let key = bpf_get_current_pid_tgid();
    // SAFETY: copied out at once; only this thread writes its own key.
    let stack = unsafe { SIGFRAMES32.get(key) }.copied().unwrap_or(1);
    let bit = u64::from(flags & SA_SIGINFO == 0);
    let _ = SIGFRAMES32.insert(key, (stack << 1) | bit, 0);
    0
}

/// (number, 32-bit) the call seen at exit as `(nr, compat, ret)` was entered with.
#[inline(always)]
pub(crate) fn entered(nr: u32, compat: bool, ret: i64) -> (u32, bool) {
    if nr == u32::MAX {
        if !compat {
            return (NR_RT_SIGRETURN, false);
        }
        let key = bpf_get_current_pid_tgid();
        // SAFETY: copied out at once; only this thread writes its own key.
        let Some(stack) = unsafe { SIGFRAMES32.get(key) }.copied() else {
            return (NR_IA32_RT_SIGRETURN, true);
        };
        if stack >> 1 <= 1 {
            let _ = SIGFRAMES32.remove(key);
        } else {
            let _ = SIGFRAMES32.insert(key, stack >> 1, 0);
        }
        return (if stack & 1 != 0 { NR_IA32_SIGRETURN } else { NR_IA32_RT_SIGRETURN }, true);
    }
    if ret == 0 && nr == if compat { NR_IA32_EXECVE } else { NR_EXECVE } {
        let key = bpf_get_current_pid_tgid();
        // SAFETY: copied out at once; only this thread writes its own key.
        if let Some(v) = unsafe { EXEC_ENTRY.get(key) }.copied() {
            let _ = EXEC_ENTRY.remove(key);
            return (v & !SYSCOUNT_COMPAT, v & SYSCOUNT_COMPAT != 0);
        }
    }
    (nr, compat)
}
