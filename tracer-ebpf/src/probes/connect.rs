//! connect(2): AF_INET, AF_INET6 and AF_UNIX peers with the result.

use aya_ebpf::helpers::bpf_probe_read_user;
use tracer_common::{
    config::{ENABLE_CONNECT, PROTECT_ONLY},
    connect::{AF_INET, AF_INET6, AF_UNIX, ConnectBody},
    event::EventKind,
};

use super::{Syscall, current_if, protect};
use crate::{
    kernel::conf,
    record::{Rec, entry_only},
};

const SUN_PATH_MAX: u64 = 108;

#[inline(always)]
pub(crate) fn on_exit(call: Syscall) {
    let _ = try_exit(call);
}

#[inline(always)]
fn try_exit(call: Syscall) -> Result<(), i64> {
    let cur = current_if(ENABLE_CONNECT, call.rules).ok_or(-1i64)?;
    let [fd, uaddr, addrlen, _] = call.args;
    // SAFETY: bpf_probe_read_user copies from any user address into our local (a bad address is an error).
    let family = unsafe { bpf_probe_read_user(uaddr as *const u16) };
    // A call a rule selected is reported whatever its address (auditd logs it too).
    let family: u16 = if call.rules { family.unwrap_or(0) } else { family.map_err(i64::from)? };
    if !call.rules && family != AF_INET && family != AF_INET6 && family != AF_UNIX {
        return Ok(());
    }
    // Read now, from the socket: the name the client gave may point elsewhere by the time
    // user space reads the event (`tracer protect` identifies the agent by this).
    let mut unix_file =
        if family == AF_UNIX && call.ret >= 0 { protect::unix_file(cur.task, fd as i64).ok() } else { None };
    if conf!(enabled) & PROTECT_ONLY != 0 && (family != AF_UNIX || !protect::agent_connect(&mut unix_file, call.ret)) {
        return Ok(());
    }
    let mut rec = Rec::new::<ConnectBody>().ok_or(-1i64)?;
    rec.fill(EventKind::Connect, &cur, call.nr, call.ret, false);
    rec.set_args(call.args);
    let mut path_len = 0u16;
    let mut port = 0u16;
    let mut addr = [0u8; 16];
    if family == AF_INET {
        // sockaddr_in: family, port (big endian), addr[4]
        // SAFETY: as above.
        let raw: [u8; 8] = unsafe { bpf_probe_read_user(uaddr as *const [u8; 8]) }.unwrap_or([0; 8]);
        port = u16::from_be_bytes([raw[2], raw[3]]);
        addr[..4].copy_from_slice(&raw[4..8]);
    } else if family == AF_INET6 {
        // sockaddr_in6: family, port (big endian), flowinfo, addr[16]
        // SAFETY: as above.
        let raw: [u8; 24] = unsafe { bpf_probe_read_user(uaddr as *const [u8; 24]) }.unwrap_or([0; 24]);
        port = u16::from_be_bytes([raw[2], raw[3]]);
        addr.copy_from_slice(&raw[8..24]);
    } else if addrlen > 2 {
        let n = if addrlen - 2 > SUN_PATH_MAX { SUN_PATH_MAX } else { addrlen - 2 };
        path_len = rec.push_user(uaddr + 2, n as u32 & 127) as u16;
    }
    let body = rec.body::<ConnectBody>();
    if !entry_only() {
        body.fd = fd as i32;
    }
    body.family = family;
    body.port = port;
    body.addr = addr;
    body.path_len = path_len;
    body.unix_file = unix_file.unwrap_or_default();
    if call.rules {
        rec.push_rules();
    }
    rec.submit();
    Ok(())
}
