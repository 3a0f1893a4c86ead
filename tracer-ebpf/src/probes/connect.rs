//! connect(2): AF_INET, AF_INET6 and AF_UNIX peers with the result.

use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, bpf_get_current_uid_gid, bpf_probe_read_user},
    macros::tracepoint,
    programs::TracePointContext,
};
use tracer_common::{
    config::ENABLE_CONNECT,
    connect::{AF_INET, AF_INET6, AF_UNIX, ConnectBody},
    event::EventKind,
    syscount::STAT_STASH_FULL,
};

use super::{current_if_traced, sys_arg, sys_ret};
use crate::{
    kernel::current_task,
    maps::{CONNECT_ARGS, stat_inc},
    record::Rec,
};

const NR_CONNECT: u32 = 42;
const SUN_PATH_MAX: u64 = 108;

#[repr(C)]
#[derive(Clone, Copy)]
pub struct ConnectArgs {
    fd: u64,
    addr: u64,
    addrlen: u64,
}

#[tracepoint]
pub fn sys_enter_connect(ctx: TracePointContext) -> u32 {
    let Some(cur) = current_if_traced(ENABLE_CONNECT) else {
        return 0;
    };
    let args = ConnectArgs { fd: sys_arg(&ctx, 0), addr: sys_arg(&ctx, 1), addrlen: sys_arg(&ctx, 2) };
    if CONNECT_ARGS.insert(cur.pid_tgid, args, 0).is_err() {
        stat_inc(STAT_STASH_FULL);
    }
    0
}

#[tracepoint]
pub fn sys_exit_connect(ctx: TracePointContext) -> u32 {
    let _ = try_exit(&ctx);
    0
}

#[inline(always)]
fn try_exit(ctx: &TracePointContext) -> Result<(), i64> {
    let pid_tgid = bpf_get_current_pid_tgid();
    let args = unsafe { CONNECT_ARGS.get(pid_tgid) }.copied().ok_or(-1i64)?;
    let _ = CONNECT_ARGS.remove(pid_tgid);
    let family: u16 = unsafe { bpf_probe_read_user(args.addr as *const u16) }.map_err(|e| e as i64)?;
    if family != AF_INET && family != AF_INET6 && family != AF_UNIX {
        return Ok(());
    }
    let ret = sys_ret(ctx);
    let task = current_task();
    let mut rec = Rec::new::<ConnectBody>().ok_or(-1i64)?;
    rec.fill(EventKind::Connect, task, pid_tgid, bpf_get_current_uid_gid(), NR_CONNECT, ret, false);
    let mut path_len = 0u16;
    let mut port = 0u16;
    let mut addr = [0u8; 16];
    if family == AF_INET {
        // sockaddr_in: family, port (be), addr[4]
        let raw: [u8; 8] = unsafe { bpf_probe_read_user(args.addr as *const [u8; 8]) }.unwrap_or([0; 8]);
        port = u16::from_be_bytes([raw[2], raw[3]]);
        addr[..4].copy_from_slice(&raw[4..8]);
    } else if family == AF_INET6 {
        // sockaddr_in6: family, port (be), flowinfo, addr[16]
        let raw: [u8; 24] = unsafe { bpf_probe_read_user(args.addr as *const [u8; 24]) }.unwrap_or([0; 24]);
        port = u16::from_be_bytes([raw[2], raw[3]]);
        addr.copy_from_slice(&raw[8..24]);
    } else if args.addrlen > 2 {
        let mut n = args.addrlen - 2;
        if n > SUN_PATH_MAX {
            n = SUN_PATH_MAX;
        }
        path_len = rec.push_user(args.addr + 2, n as u32 & 127) as u16;
    }
    let body = rec.body::<ConnectBody>();
    body.fd = args.fd as i32;
    body.family = family;
    body.port = port;
    body.addr = addr;
    body.path_len = path_len;
    rec.submit();
    Ok(())
}
