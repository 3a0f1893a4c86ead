//! Syscall exits through BPF trampolines on the x86_64 syscall wrappers (`__x64_sys_*`,
//! never inlined: they are the syscall table): only the watched calls pay, where the raw
//! `sys_exit` tracepoint puts every system call of every task on the slow path. Used by
//! `trace` when the kernel has trampolines; `raw_sys_exit` is the fallback and serves
//! `report`, which counts every call anyway.

use aya_ebpf::{macros::fexit, programs::FExitContext};
use tracer_common::config::{ENABLE_CONNECT, ENABLE_EXEC, ENABLE_OPEN};

use super::{
    Syscall,
    nr::*,
    syscalls::{args_of, on_exit},
};
use crate::kernel::{Kptr, conf};

#[inline(always)]
fn on_fexit(ctx: &FExitContext, nr: u32, family: u32) -> i32 {
    if conf!(enabled) & family == 0 {
        return 0;
    }
    // The wrapper's only argument is the saved user registers; then its return value.
    let regs: *const u8 = ctx.arg(0);
    let ret: i64 = ctx.arg(1);
    on_exit(Syscall { nr, args: args_of(regs as Kptr), regs: regs as Kptr, ret, rules: false }, family);
    0
}

#[fexit(function = "__x64_sys_open")]
pub(crate) fn fexit_open(ctx: FExitContext) -> i32 {
    on_fexit(&ctx, NR_OPEN, ENABLE_OPEN)
}

#[fexit(function = "__x64_sys_creat")]
pub(crate) fn fexit_creat(ctx: FExitContext) -> i32 {
    on_fexit(&ctx, NR_CREAT, ENABLE_OPEN)
}

#[fexit(function = "__x64_sys_openat")]
pub(crate) fn fexit_openat(ctx: FExitContext) -> i32 {
    on_fexit(&ctx, NR_OPENAT, ENABLE_OPEN)
}

#[fexit(function = "__x64_sys_openat2")]
pub(crate) fn fexit_openat2(ctx: FExitContext) -> i32 {
    on_fexit(&ctx, NR_OPENAT2, ENABLE_OPEN)
}

#[fexit(function = "__x64_sys_connect")]
pub(crate) fn fexit_connect(ctx: FExitContext) -> i32 {
    on_fexit(&ctx, NR_CONNECT, ENABLE_CONNECT)
}

#[fexit(function = "__x64_sys_execve")]
pub(crate) fn fexit_execve(ctx: FExitContext) -> i32 {
    on_fexit(&ctx, NR_EXECVE, ENABLE_EXEC)
}

#[fexit(function = "__x64_sys_execveat")]
pub(crate) fn fexit_execveat(ctx: FExitContext) -> i32 {
    on_fexit(&ctx, NR_EXECVEAT, ENABLE_EXEC)
}
