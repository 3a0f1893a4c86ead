//! `raw_syscalls:sys_enter` and `sys_exit`: every system call of every task passes here,
//! so each program first decides by number, before any filter work.

use aya_ebpf::{macros::raw_tracepoint, programs::RawTracePointContext};
use tracer_common::config::{
    ENABLE_CONNECT, ENABLE_DNS, ENABLE_EXEC, ENABLE_LISTEN, ENABLE_OPEN, ENABLE_SSHLOG, ENABLE_SYSCOUNT,
};

use super::{Syscall, connect, dns, entry, exec, listen, nr::*, open, sshlog, sshpeer, syscount};
pub(crate) use crate::kernel::args_of;
use crate::{
    kernel::{compat, conf, current_regs, load, off},
    maps::EXITS,
};

#[raw_tracepoint(tracepoint = "sys_enter")]
pub(crate) fn raw_sys_enter(ctx: RawTracePointContext) -> i32 {
    let nr: i64 = ctx.arg(1);
    let enabled = conf!(enabled);
    if nr < 0 {
        return 0;
    }
    let nr = nr as u32;
    if enabled & ENABLE_SSHLOG != 0 && (nr == NR_WRITE || nr == NR_SENDTO) && !compat() {
        sshlog::on_enter(nr, args_of(current_regs()));
    }
    0
}

#[raw_tracepoint(tracepoint = "sys_exit")]
pub(crate) fn raw_sys_exit(ctx: RawTracePointContext) -> i32 {
    let ret: i64 = ctx.arg(1);
    let Ok(nr) = load::<i64>(current_regs(), off!(regs_orig_ax)) else {
        return 0;
    };
    let nr = nr as u32;
    // A new child returns from clone/fork too (ret 0): one call, counted in the parent.
    let child_return = ret == 0 && matches!(nr, NR_CLONE | NR_FORK | NR_VFORK | NR_CLONE3);
    // Read once: counting needs it for every call, the events below for theirs.
    let mut is_compat = None;
    if conf!(enabled) & ENABLE_SYSCOUNT != 0 && !child_return {
        let c = compat();
        is_compat = Some(c);
        let (entered, entered_compat) = entry::entered(nr, c, ret);
        syscount::count(entered, entered_compat);
    }
    let family = match nr {
        NR_OPEN | NR_CREAT | NR_OPENAT | NR_OPENAT2 => ENABLE_OPEN,
        NR_CONNECT => ENABLE_CONNECT,
        // The guard's source remembers the sockets a trusted sshd accepts.
        NR_ACCEPT | NR_ACCEPT4 if ret >= 0 => ENABLE_SSHLOG,
        // Successful execs are reported by sched_process_exec, from the new image.
        NR_EXECVE | NR_EXECVEAT if ret < 0 => ENABLE_EXEC,
        // `tracer ci`: DNS messages (probes/dns.rs checks the socket).
        NR_READ | NR_WRITE | NR_SENDTO | NR_RECVFROM if ret > 0 => ENABLE_DNS,
        NR_LISTEN if ret == 0 => ENABLE_LISTEN,
        _ => return 0,
    };
    if conf!(enabled) & family == 0 || is_compat.unwrap_or_else(compat) {
        return 0;
    }
    // Each family is its own program (below), reached by a tail call: the verifier checks
    // them one by one, and the loader has them checked at once, one core each (most of
    // start→attached is this verification). A family not loaded is a failed tail call.
    // SAFETY: EXITS holds only the family programs below, all of this program's type and
    // context; a failed call returns here.
    unsafe { EXITS.tail_call(&ctx, family.trailing_zeros()) };
    0
}

/// A family's part of `raw_sys_exit`, tail-called in slot `family.trailing_zeros()` of
/// `EXITS`, with the same context.
#[inline(always)]
fn family_exit(ctx: &RawTracePointContext, family: u32) -> i32 {
    // The saved registers as the task's (BTF-typed, read by plain loads), not the
    // tracepoint's untyped argument: the same pt_regs.
    let regs = current_regs();
    let ret: i64 = ctx.arg(1);
    if let Ok(nr) = load::<i64>(regs, off!(regs_orig_ax)) {
        on_exit(Syscall { nr: nr as u32, args: args_of(regs), regs, ret, rules: false }, family);
    }
    0
}

#[raw_tracepoint(tracepoint = "sys_exit")]
pub(crate) fn exit_open(ctx: RawTracePointContext) -> i32 {
    family_exit(&ctx, ENABLE_OPEN)
}

#[raw_tracepoint(tracepoint = "sys_exit")]
pub(crate) fn exit_connect(ctx: RawTracePointContext) -> i32 {
    family_exit(&ctx, ENABLE_CONNECT)
}

#[raw_tracepoint(tracepoint = "sys_exit")]
pub(crate) fn exit_accept(ctx: RawTracePointContext) -> i32 {
    family_exit(&ctx, ENABLE_SSHLOG)
}

#[raw_tracepoint(tracepoint = "sys_exit")]
pub(crate) fn exit_exec(ctx: RawTracePointContext) -> i32 {
    family_exit(&ctx, ENABLE_EXEC)
}

#[raw_tracepoint(tracepoint = "sys_exit")]
pub(crate) fn exit_dns(ctx: RawTracePointContext) -> i32 {
    family_exit(&ctx, ENABLE_DNS)
}

#[raw_tracepoint(tracepoint = "sys_exit")]
pub(crate) fn exit_listen(ctx: RawTracePointContext) -> i32 {
    family_exit(&ctx, ENABLE_LISTEN)
}

/// A watched syscall's exit, whichever hook saw it (this tracepoint or an fexit trampoline).
#[inline(always)]
pub(crate) fn on_exit(call: Syscall, family: u32) {
    match family {
        ENABLE_OPEN => open::on_exit(call),
        ENABLE_CONNECT => connect::on_exit(call),
        ENABLE_SSHLOG => sshpeer::on_accept(call),
        ENABLE_DNS => dns::on_exit(call),
        ENABLE_LISTEN => listen::on_exit(call),
        // Successful execs are reported by sched_process_exec.
        _ if call.ret < 0 => exec::on_failed(call),
        _ => {}
    }
}
